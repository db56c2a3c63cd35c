/**
 * End-to-end egress tests of the real server process run with the documented permissions
 * (no `--allow-sys`): the self-call guard knows the port the server really listens on
 * (`PORT=0`), a task reaching the server through a non-loopback address of this machine is
 * refused by the edge, and a name that cannot be resolved is refused (fail closed).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import type { TaskView } from "../lib/service/task_types.ts";
import { type ServerProcess, startServer, stepper } from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";

const TOKEN = "egress-Secret_token.7";
const lit = (value: unknown) => JSON.stringify(value);

/** Guest code that fetches `url` and returns the error message, or `"fetched: <status>"`. */
function fetchAndCatch(url: string, init?: Record<string, unknown>): string {
  const args = init === undefined ? lit(url) : `${lit(url)}, ${lit(init)}`;
  return `let out;
try {
  const response = await fetch(${args});
  out = "fetched: " + response.status;
} catch (error) {
  out = error.message;
}
out`;
}

async function run(server: ServerProcess, code: string): Promise<TaskView> {
  const task = await server.createTask({ code });
  return await server.waitForTask(task.id);
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function lanAddress(): string | undefined {
  return Deno.networkInterfaces().find((i) => i.family === "IPv4" && !i.address.startsWith("127."))
    ?.address;
}

Deno.test("server process with PORT=0 on all interfaces: self-calls are refused on the port it listens on and through its LAN address", async (t) => {
  const upstream = startUpstream();
  const server = await startServer({
    port: 0,
    env: { HOST: "0.0.0.0", FLOWSTATE_TOKEN: TOKEN },
    token: TOKEN,
  });
  const step = stepper(t, server);
  const tasksCreated = () => server.logs().filter((l) => l.path === "/task").length;
  try {
    await step("the server picked a port and automatic fetch reaches its own /call", async () => {
      assert(server.port > 0);
      const done = await run(server, fetchAndCatch(upstream.url("/number/1")));
      assertEquals(done.result, "fetched: 200");
    });

    await step("a task fetching /status on 127.0.0.1 and the real port is refused", async () => {
      const done = await run(
        server,
        fetchAndCatch(`http://127.0.0.1:${server.port}/status`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        }),
      );
      assertEquals(done.status, "completed");
      assertMatch(done.result as string, /refused: a task cannot call this server's own API/);
    });

    const lan = lanAddress();
    await t.step({
      name: "a task POSTing /task through the machine's LAN address is refused by the edge",
      ignore: lan === undefined,
      fn: async () => {
        const before = tasksCreated();
        const done = await run(
          server,
          fetchAndCatch(`http://${lan}:${server.port}/task`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
            body: JSON.stringify({ code: "1" }),
          }),
        );
        assertEquals(done.status, "completed");
        assertEquals(done.result, "fetched: 403");
        const refused = server.logs().filter((l) => l.path === "/task").slice(before);
        // The test's own POST /task (200) and the task's (403); no task was created by it.
        assertEquals(refused.map((l) => l.status).sort(), [200, 403]);
      },
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});

Deno.test("server process: a fetch to a name that does not resolve is refused, not attempted", async () => {
  const server = await startServer();
  try {
    const done = await run(server, fetchAndCatch("http://flowstate-test.invalid/x"));
    assertEquals(done.status, "completed");
    assertMatch(done.result as string, /refused: cannot resolve flowstate-test\.invalid/);
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    await server.close();
  }
});

Deno.test("server process: a hostile upstream's million-deep JSON never fails the task", async () => {
  const depth = 1_000_000;
  const deep = "[".repeat(depth) + "]".repeat(depth);
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(deep, { headers: { "content-type": "application/json" } }),
  );
  const server = await startServer();
  try {
    const url = `http://127.0.0.1:${upstream.addr.port}/deep`;
    const parsed = await run(
      server,
      `let out;
try {
  const response = await fetch(${lit(url)});
  await response.json();
  out = "parsed";
} catch (error) {
  out = "caught: " + error.name + ": " + error.message;
}
out`,
    );
    assertEquals(parsed.status, "completed", JSON.stringify(parsed.error));
    assertEquals(
      parsed.result,
      "caught: SyntaxError: Cannot parse the response body as JSON: nested deeper than 1000 levels",
    );
    const text = await run(server, `(await (await fetch(${lit(url)})).text()).length`);
    assertEquals(text.status, "completed", JSON.stringify(text.error));
    assertEquals(text.result, 2 * depth);
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    await server.close();
    await upstream.shutdown();
  }
});
