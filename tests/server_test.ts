/**
 * End-to-end tests of the real server process against a local upstream: tasks that fetch,
 * pause and complete through the automatic self-POST, manual delivery through `/call`,
 * and every error answer of the HTTP API.
 *
 * Each `Deno.test` starts one server and shares it across its steps.
 */
import { assert, assertEquals, assertExists, assertMatch } from "@std/assert";
import type { TaskView } from "../lib/service/task_types.ts";
import {
  assertErrorResponse,
  freePort,
  type ServerProcess,
  startServer,
  stepper,
} from "../testing/server_process.ts";
import { startUpstream, type Upstream } from "../testing/upstream.ts";

/** Renders a value as a JavaScript literal inside guest code. */
const lit = (value: unknown) => JSON.stringify(value);

/**
 * Creates a task whose single fetch the test answers itself: it stays paused (nothing
 * fetches for it) until the test POSTs `/call`, which completes it; the same fetch id a
 * second time is a 409 that changes nothing, and an unknown task is a 404.
 */
async function checkManualDelivery(
  server: ServerProcess,
  upstream: Upstream,
  create: Record<string, unknown>,
  path: string,
): Promise<void> {
  const code = `const response = await fetch(${lit(upstream.url(path))});
const body = await response.json();
({ status: response.status, doubled: body.value * 2 })`;
  const paused = await server.createTask({ ...create, code });
  assertEquals(paused.status, "paused");
  const request = paused.fetchRequest;
  if (!request) throw new Error(`no fetchRequest in ${JSON.stringify(paused)}`);
  assertEquals(request.url, upstream.url(path));
  assertEquals(request.method, "GET");

  // An automatic fetch would have been dispatched at the pause, before POST /task answered.
  // Run a task that does fetch automatically through the same upstream to completion, then
  // check that the manual task is still paused and nobody asked for its URL.
  const probe = await server.createTask({
    autoFetch: true,
    code: `(await (await fetch(${lit(upstream.url("/number/5"))})).json()).value`,
  });
  assertEquals((await server.waitForTask(probe.id)).result, 5);
  assertEquals((await server.task(paused.id)).status, "paused");
  assertEquals(upstream.requestsTo(path).length, 0, "nobody fetched the manual task's URL");

  const fetchResponse = {
    id: request.id,
    success: true,
    status: 200,
    statusText: "OK",
    headers: { "content-type": "application/json" },
    data: { value: 21 },
  };
  const delivered = await server.call(paused.id, fetchResponse);
  assertEquals(delivered.status, 200, delivered.text);
  const done = (delivered.body as { success: boolean; task: TaskView }).task;
  assertEquals(done.status, "completed");
  assertEquals(done.result, { status: 200, doubled: 42 });
  assertEquals(done.pauseCount, 1);

  const again = await server.call(paused.id, { ...fetchResponse, data: { value: 1 } });
  assertErrorResponse(again, 409);
  const after = await server.task(paused.id);
  assertEquals(after.status, "completed");
  assertEquals(after.result, { status: 200, doubled: 42 });
  assertEquals(after.updatedAt, done.updatedAt, "the rejected /call changed nothing");
  assertEquals(after.fetches.length, 1);
  assertEquals(upstream.requestsTo(path).length, 0, "the test's response was the only one");

  const unknown = await server.call("no-such-task", fetchResponse);
  assertErrorResponse(unknown, 404);
}

Deno.test("server process: tasks fetch from a real upstream, pause, resume and complete", async (t) => {
  const upstream = startUpstream();
  const server = await startServer();
  const step = stepper(t, server);
  try {
    await step(
      "a loop of 3 awaited fetches and a function completes with pauseCount 3, 3 fetches and the console lines",
      async () => {
        const code = `function double(n) { return n * 2; }
const values = [];
for (let i = 1; i <= 3; i++) {
  const response = await fetch(${lit(upstream.url("/number/"))} + i * 10);
  const body = await response.json();
  console.log("got " + body.value);
  values.push(double(body.value));
}
({ values, total: values.reduce((a, b) => a + b, 0) })`;
        const first = await server.createTask({ name: "loop", code });
        assertEquals(first.status, "paused");
        assertEquals(first.name, "loop");
        assertEquals(first.pauseCount, 1);
        assertEquals(first.fetchRequest?.url, upstream.url("/number/10"));

        const done = await server.waitForTask(first.id);
        assertEquals(done.status, "completed");
        assertEquals(done.result, { values: [20, 40, 60], total: 120 });
        assertEquals(done.pauseCount, 3);
        assertEquals(done.fetchRequest, undefined);
        assertEquals(done.fetches.map((f) => [f.url, f.method, f.status]), [
          [upstream.url("/number/10"), "GET", 200],
          [upstream.url("/number/20"), "GET", 200],
          [upstream.url("/number/30"), "GET", 200],
        ]);
        for (const fetch of done.fetches) assertExists(fetch.respondedAt);
        assertEquals(done.logs.map((l) => [l.level, l.message]), [
          ["log", "got 10"],
          ["log", "got 20"],
          ["log", "got 30"],
        ]);
      },
    );

    await step(
      "Promise.all of two fetches pauses with both in fetchRequests and completes",
      async () => {
        const urls = [upstream.url("/delay/50"), upstream.url("/number/2")];
        const code = `const [a, b] = await Promise.all([fetch(${lit(urls[0])}), fetch(${
          lit(urls[1])
        })]);
const [x, y] = await Promise.all([a.json(), b.json()]);
[x.delayed, y.value]`;
        const first = await server.createTask({ code });
        assertEquals(first.status, "paused");
        assertEquals(first.fetchRequests?.map((r) => r.url), urls);
        assertEquals(first.fetchRequest, first.fetchRequests?.[0]);
        const done = await server.waitForTask(first.id);
        assertEquals(done.status, "completed");
        assertEquals(done.result, [50, 2]);
        assertEquals(done.fetches.map((f) => f.status), [200, 200]);
      },
    );

    await step(
      "the named task tasks/aggregate.js sums a field of every URL's body given as input",
      async () => {
        const urls = [1, 2, 4].map((n) => upstream.url(`/number/${n}`));
        const first = await server.createTask({
          task: "aggregate",
          input: { urls, field: "value" },
        });
        assertEquals(first.name, "aggregate");
        const done = await server.waitForTask(first.id);
        assertEquals(done.status, "completed");
        assertEquals(done.result, { count: 3, sum: 7, failed: [] });
        assertEquals(done.pauseCount, 3);
        assertEquals(done.logs.map((l) => l.message), urls.map((u, i) => `${u}: ${[1, 2, 4][i]}`));
      },
    );

    await step(
      "outbound requests carry an Idempotency-Key equal to the fetch id, with method, headers and body",
      async () => {
        const code = `const response = await fetch(${lit(upstream.url("/echo"))} + "?tag=idem", {
  method: "POST", headers: { "x-test": "yes", "content-type": "text/plain" }, body: "hello" });
const body = await response.json();
[body.method, body.body, body.query.tag, body.count]`;
        const first = await server.createTask({ code });
        const done = await server.waitForTask(first.id);
        const seen = upstream.requestsTo("/echo").filter((r) => r.query.tag === "idem");
        assertEquals(seen.length, 1);
        assertEquals(done.result, ["POST", "hello", "idem", upstream.requestsTo("/echo").length]);
        const fetch = done.fetches[0];
        if (!fetch) throw new Error("no fetch listed");
        assertEquals(seen[0]!.headers["idempotency-key"], fetch.id);
        assertEquals(seen[0]!.headers["x-test"], "yes");
        assertEquals(fetch.method, "POST");
      },
    );

    await step(
      "a task with autoFetch false stays paused until the test posts /call; a second /call is 409, an unknown task 404",
      async () => {
        await checkManualDelivery(server, upstream, { autoFetch: false }, "/number/4001");
      },
    );

    await step(
      "a refused connection reaches the guest as a rejected fetch it can catch",
      async () => {
        const url = `http://127.0.0.1:${freePort()}/nothing`;
        const code = `let out;
try {
  await fetch(${lit(url)});
  out = "no error";
} catch (error) {
  out = { name: error.name, message: error.message };
}
out`;
        const first = await server.createTask({ code });
        const done = await server.waitForTask(first.id);
        assertEquals(done.status, "completed");
        const result = done.result as { name: string; message: string };
        assertEquals(result.name, "TypeError");
        assertMatch(result.message, /^fetch failed: /);
        assertEquals(done.fetches.length, 1);
        assertEquals(done.fetches[0]!.status, null);
        assert(done.fetches[0]!.error, "the failed fetch is listed with its error");
      },
    );

    await step("an upstream 404 resolves the fetch with ok false and the status", async () => {
      const code = `const response = await fetch(${lit(upstream.url("/status/404"))});
({ ok: response.ok, status: response.status, body: await response.json() })`;
      const first = await server.createTask({ code });
      const done = await server.waitForTask(first.id);
      assertEquals(done.status, "completed");
      assertEquals(done.result, { ok: false, status: 404, body: { status: 404 } });
      assertEquals(done.fetches[0]!.status, 404);
    });

    await step(
      "a guest exception after a fetch ends the task in error with name, message and kind",
      async () => {
        const code = `const body = await (await fetch(${lit(upstream.url("/number/1"))})).json();
if (body.value === 1) throw new RangeError("value was " + body.value);
"unreachable"`;
        const first = await server.createTask({ code });
        assertEquals(first.status, "paused");
        const done = await server.waitForTask(first.id);
        assertEquals(done.status, "error");
        assertEquals(done.error, {
          name: "RangeError",
          message: "value was 1",
          kind: "exception",
          stack: "    at <eval> (task.js:2:43)",
        });
        assertEquals(done.result, undefined);
      },
    );

    await step(
      "a guest exception before any fetch is answered by POST /task as an error task",
      async () => {
        const task = await server.createTask({ code: `throw new TypeError("early")` });
        assertEquals(task.status, "error");
        assertEquals(task.pauseCount, 0);
        assertEquals(task.error, {
          name: "TypeError",
          message: "early",
          kind: "exception",
          stack: "    at <eval> (task.js:1:20)",
        });
      },
    );

    await step(
      "GET /status lists tasks oldest first, filters by status and limits; /health counts them",
      async () => {
        const all = await server.request("/status");
        assertEquals(all.status, 200);
        const tasks = (all.body as { success: boolean; tasks: TaskView[] }).tasks;
        assert(tasks.length >= 8, `expected the tasks of the earlier steps, got ${tasks.length}`);
        const created = tasks.map((task) => task.createdAt);
        assertEquals(created, [...created].sort(), "oldest first");
        assertEquals(tasks[0]!.name, "loop");

        const errors = await server.request("/status?status=error");
        const errorTasks = (errors.body as { tasks: TaskView[] }).tasks;
        assertEquals(errorTasks.length, 2);
        assert(errorTasks.every((task) => task.status === "error"));

        const limited = await server.request("/status?status=completed&limit=2");
        assertEquals((limited.body as { tasks: TaskView[] }).tasks.map((task) => task.id), [
          ...tasks.filter((task) => task.status === "completed").slice(0, 2).map((task) => task.id),
        ]);

        const health = await server.request("/health");
        assertEquals(health.status, 200);
        const body = health.body as {
          success: boolean;
          status: string;
          tasks: Record<string, number>;
        };
        assertEquals(body.success, true);
        assertEquals(body.status, "ok");
        assertEquals(body.tasks.error, 2);
        assertEquals(Object.values(body.tasks).reduce((a, b) => a + b, 0), tasks.length);
      },
    );
  } finally {
    await server.close();
    await upstream.close();
  }
});

Deno.test("server process: AUTO_FETCH=false and every error answer of the API", async (t) => {
  const upstream = startUpstream();
  const server = await startServer({ env: { AUTO_FETCH: "false", MAX_BODY_BYTES: "1024" } });
  const step = stepper(t, server);
  try {
    await step(
      "with AUTO_FETCH=false a task stays paused until the test posts /call; a second /call is 409, an unknown task 404",
      async () => {
        await checkManualDelivery(server, upstream, {}, "/number/4002");
      },
    );

    await step("invalid JSON is 400", async () => {
      assertErrorResponse(await server.request("/task", { body: "{not json" }), 400);
    });

    await step("a body without code or task is 400", async () => {
      assertErrorResponse(await server.request("/task", { body: { name: "nothing" } }), 400);
    });

    await step("a body with both code and task is 400", async () => {
      const res = await server.request("/task", { body: { code: "1", task: "aggregate" } });
      assertErrorResponse(res, 400);
    });

    await step("a bad task id (../x) is 400 and writes nothing outside STATES_DIR", async () => {
      assertErrorResponse(await server.request("/task", { body: { id: "../x", code: "1" } }), 400);
      const entries = [];
      for await (const entry of Deno.readDir(server.statesDir)) entries.push(entry.name);
      assert(!entries.some((name) => name.includes("x.json")), entries.join(", "));
    });

    await step("a duplicate task id is 409", async () => {
      const first = await server.createTask({ id: "dup-1", code: "1 + 1" });
      assertEquals(first.status, "completed");
      assertEquals(first.result, 2);
      const again = await server.request("/task", { body: { id: "dup-1", code: "2 + 2" } });
      assertErrorResponse(again, 409);
      assertEquals((await server.task("dup-1")).result, 2);
    });

    await step("an unknown task definition is 400", async () => {
      assertErrorResponse(await server.request("/task", { body: { task: "no_such_task" } }), 400);
    });

    await step("a body over MAX_BODY_BYTES is 413", async () => {
      const code = `"${"x".repeat(2000)}"`;
      assertErrorResponse(await server.request("/task", { body: { code } }), 413);
    });

    await step("an unknown route is 404", async () => {
      assertErrorResponse(await server.request("/nope"), 404);
    });

    await step("a wrong method is 405 with Allow", async () => {
      const getTask = await server.request("/task");
      assertErrorResponse(getTask, 405);
      assertEquals(getTask.headers.get("allow"), "POST, DELETE");
      const postStatus = await server.request("/status", { method: "DELETE" });
      assertErrorResponse(postStatus, 405);
      assertMatch(postStatus.headers.get("allow") ?? "", /\bGET\b/);
    });

    await step("GET /status?id= of an unknown task is 404", async () => {
      assertErrorResponse(await server.request("/status?id=nope"), 404);
    });

    await step("GET /status?status=bogus is 400", async () => {
      assertErrorResponse(await server.request("/status?status=bogus"), 400);
    });

    await step("POST /call with a malformed fetchResponse is 400", async () => {
      const res = await server.request("/call", { body: { taskId: "dup-1", fetchResponse: {} } });
      assertErrorResponse(res, 400);
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});
