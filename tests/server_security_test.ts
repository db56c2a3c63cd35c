/**
 * End-to-end security tests of the real server process: the bearer token (and the
 * self-POST that must carry it), the startup warning without one, and the outbound policy
 * as a guest sees it (refused fetches reject, the guest can catch them).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import type { TaskView } from "../lib/service/task_types.ts";
import {
  assertErrorResponse,
  type ServerProcess,
  startServer,
  stepper,
} from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";

const TOKEN = "e2e-Secret_token.42";
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

/** Runs `code` to its end and returns the finished task. */
async function run(server: ServerProcess, code: string) {
  const task = await server.createTask({ code });
  return await server.waitForTask(task.id);
}

Deno.test("server process with FLOWSTATE_TOKEN: bearer auth, self-POST with the token, egress refusals", async (t) => {
  const upstream = startUpstream();
  const server = await startServer({ env: { FLOWSTATE_TOKEN: TOKEN }, token: TOKEN });
  const step = stepper(t, server);
  try {
    await step("with a token set the server logs no open-endpoints warning", async () => {
      await server.waitForLog((line) => line.msg === "listening");
      assertEquals(server.logs().filter((line) => line.level === "warn"), []);
    });

    await step(
      "/task and /status without or with a wrong token are 401, with the right one 200",
      async () => {
        const body = { code: "40 + 2" };
        for (const token of [null, "wrong-token", `${TOKEN}x`]) {
          assertErrorResponse(await server.request("/task", { body, token }), 401);
          assertErrorResponse(await server.request("/status", { token }), 401);
          assertErrorResponse(await server.request("/status?id=nope", { token }), 401);
          assertErrorResponse(await server.request("/call", { body: {}, token }), 401);
        }
        const basic = await server.request("/status", {
          token: null,
          headers: { authorization: `Basic ${btoa(`user:${TOKEN}`)}` },
        });
        assertErrorResponse(basic, 401);
        assertEquals((await server.request("/status", { token: null })).status, 401);

        const created = await server.request("/task", { body });
        assertEquals(created.status, 200, created.text);
        const task = (created.body as { task: TaskView }).task;
        assertEquals(task.result, 42);
        const status = await server.request(`/status?id=${task.id}`);
        assertEquals(status.status, 200);
        assertEquals((await server.request("/status")).status, 200);
      },
    );

    await step(
      "/health answers without a token, with liveness only; the token adds counts",
      async () => {
        const health = await server.request("/health", { token: null });
        assertEquals(health.status, 200);
        assertEquals(health.body, { success: true, status: "ok" });
        const wrong = await server.request("/health", { token: "wrong-token" });
        assertEquals(wrong.body, { success: true, status: "ok" });
        const full = await server.request("/health");
        const body = full.body as { version?: string; tasks?: Record<string, number> };
        assertEquals(typeof body.version, "string");
        assertEquals(typeof body.tasks?.completed, "number");
      },
    );

    await step(
      "a task with automatic fetch completes: the self-POST to /call carries the token",
      async () => {
        const code = `const body = await (await fetch(${lit(upstream.url("/number/9"))})).json();
body.value * 3`;
        const logsBefore = server.logs().length;
        const done = await run(server, code);
        assertEquals(done.status, "completed");
        assertEquals(done.result, 27);
        const calls = server.logs().slice(logsBefore).filter((line) =>
          line.msg === "request" && line.path === "/call"
        );
        assert(calls.some((line) => line.status === 200), "a self-POST succeeded");
        assertEquals(
          calls.filter((line) => line.status === 401).length,
          0,
          "no self-POST was refused",
        );
      },
    );

    await step(
      "a fetch to the metadata address 169.254.169.254 is refused as link-local and the guest catches it",
      async () => {
        const done = await run(server, fetchAndCatch("http://169.254.169.254/latest/meta-data"));
        assertEquals(done.status, "completed");
        const message = done.result as string;
        assertMatch(message, /refused/);
        assertMatch(message, /link-local/);
        assertMatch(message, /169\.254\.169\.254/);
      },
    );

    await step(
      "a redirect from the upstream to http://169.254.169.254/ is refused the same way",
      async () => {
        const url = `${upstream.url("/redirect")}?to=${
          encodeURIComponent("http://169.254.169.254/")
        }`;
        const before = upstream.requestsTo("/redirect").length;
        const done = await run(server, fetchAndCatch(url));
        assertEquals(done.status, "completed");
        const message = done.result as string;
        assertMatch(message, /refused/);
        assertMatch(message, /link-local/);
        assertMatch(message, /169\.254\.169\.254/);
        assertEquals(upstream.requestsTo("/redirect").length, before + 1, "the first hop was made");
      },
    );

    await step("a task fetching the server's own /task is refused", async () => {
      const before = server.logs().filter((line) => line.path === "/task").length;
      const url = `http://127.0.0.1:${server.port}/task`;
      const done = await run(
        server,
        fetchAndCatch(url, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${TOKEN}` },
          body: JSON.stringify({ code: "1" }),
        }),
      );
      assertEquals(done.status, "completed");
      const message = done.result as string;
      assertMatch(message, /refused/);
      assertMatch(message, /\/task/);
      const after = server.logs().filter((line) => line.path === "/task").length;
      assertEquals(after, before + 1, "only the test's own POST /task reached the server");
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});

Deno.test("server process without FLOWSTATE_TOKEN and with FETCH_DENY_PRIVATE=true: warns at startup and refuses loopback fetches", async (t) => {
  const upstream = startUpstream();
  const server = await startServer({ env: { FETCH_DENY_PRIVATE: "true" } });
  const step = stepper(t, server);
  try {
    await step("without a token the server logs a warning at startup", async () => {
      await server.waitForLog((line) => line.msg === "listening");
      const logs = server.logs();
      const warned = logs.findIndex((line) =>
        line.level === "warn" && /FLOWSTATE_TOKEN is not set/.test(line.msg)
      );
      const listening = logs.findIndex((line) => line.msg === "listening");
      assert(warned >= 0, "a warning names FLOWSTATE_TOKEN");
      assert(warned < listening, "the warning comes at startup, before listening");
      assertEquals((await server.request("/status")).status, 200, "and the API is open");
    });

    await step("a fetch to the 127.0.0.1 upstream is refused as loopback", async () => {
      const done = await run(server, fetchAndCatch(upstream.url("/number/1")));
      assertEquals(done.status, "completed");
      const message = done.result as string;
      assertMatch(message, /refused/);
      assertMatch(message, /loopback/);
      assertEquals(upstream.requestsTo("/number/1").length, 0, "nothing reached the upstream");
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});

Deno.test("server process with FETCH_DENY_PRIVATE=true and FETCH_ALLOW=127.0.0.1: the allowed upstream is fetched", async () => {
  const upstream = startUpstream();
  const server = await startServer({
    env: { FETCH_DENY_PRIVATE: "true", FETCH_ALLOW: "127.0.0.1" },
  });
  try {
    const done = await run(server, fetchAndCatch(upstream.url("/number/1")));
    assertEquals(done.status, "completed");
    assertEquals(done.result, "fetched: 200");
    assertEquals(upstream.requestsTo("/number/1").length, 1);

    const self = await run(
      server,
      fetchAndCatch(`http://127.0.0.1:${server.port}/call`, {
        method: "POST",
        body: "{}",
      }),
    );
    assertMatch(self.result as string, /refused/, "calls to the server itself stay refused");
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    await server.close();
    await upstream.close();
  }
});
