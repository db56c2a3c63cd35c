/**
 * The server's log against a real process: guest console lines at their own level,
 * warnings and errors on stderr, a request id per request, and the pretty format.
 */
import { assert, assertEquals } from "@std/assert";
import { startServer, stepper } from "../testing/server_process.ts";

Deno.test("guest console lines are logged at their own level, warnings and errors on stderr", async (t) => {
  const server = await startServer({ env: { LOG_LEVEL: "debug" } });
  const step = stepper(t, server);
  try {
    await step("each console method maps to a level", async () => {
      await server.createTask({
        id: "noisy",
        code: `console.debug("d"); console.log("l"); console.info("i");
console.warn("w"); console.error("e"); 1`,
      });
      const guest = await server.waitForLog((line) =>
        line.msg === "guest console" && line.message === "e"
      ).then(() => server.logs().filter((line) => line.msg === "guest console"));
      assertEquals(
        guest.map((line) => [line.console, line.level, line.message]),
        [
          ["debug", "debug", "d"],
          ["log", "info", "l"],
          ["info", "info", "i"],
          ["warn", "warn", "w"],
          ["error", "error", "e"],
        ],
      );
    });

    await step("warn and error lines are on stderr, the others on stdout", async () => {
      await server.waitForLog((line) => line.msg === "task completed");
      const stdout = server.lines.map((line) => JSON.parse(line) as { level: string });
      const stderr = server.stderr.trim().split("\n").filter((line) => line.startsWith("{")).map((
        line,
      ) => JSON.parse(line) as { level: string });
      assert(stdout.length > 0 && stderr.length > 0);
      assert(stdout.every((line) => line.level === "debug" || line.level === "info"));
      assert(stderr.every((line) => line.level === "warn" || line.level === "error"));
    });

    await step("a request's id is its response header and is in its request line", async () => {
      const res = await server.request("/status?id=noisy");
      const id = res.headers.get("x-request-id");
      assert(id !== null);
      const line = await server.waitForLog((l) => l.msg === "request" && l.requestId === id);
      assertEquals([line.path, line.status], ["/status", 200]);
    });
  } finally {
    await server.close();
  }
});

Deno.test("LOG_FORMAT=pretty writes one text line per event for humans", async () => {
  const server = await startServer({ env: { LOG_FORMAT: "pretty" } });
  try {
    await server.request("/health");
    await server.stop();
    const listening = server.lines.find((line) => / INFO {2}listening version=/.test(line)) ?? "";
    assert(listening, server.tail());
    assert(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}listening version=\S+ hostname=127\.0\.0\.1 port=\d+/.test(
        listening,
      ),
      listening,
    );
    assert(
      server.lines.some((line) =>
        / INFO {2}request requestId=\S+ method=GET path=\/health status=200 /.test(line)
      ),
    );
    assert(server.stderr.includes(" WARN  FLOWSTATE_TOKEN is not set"), server.stderr);
  } finally {
    await server.close();
  }
});
