/**
 * End-to-end tests of the lifecycle routes on the real server process against a local
 * upstream: cancel (paused, with a fetch in flight), retry after an upstream outage, fork
 * at each fetch of a five-fetch task with and without an edited response, delete, and
 * each of them interrupted by SIGKILL.
 */
import { assert, assertEquals, assertExists } from "@std/assert";
import type { TaskDetailView, TaskView } from "../lib/service/task_types.ts";
import {
  assertErrorResponse,
  freePort,
  type HttpResult,
  type ServerProcess,
  startServer,
  stepper,
} from "../testing/server_process.ts";
import { startUpstream, type Upstream } from "../testing/upstream.ts";

const lit = (value: unknown) => JSON.stringify(value);

/** The task of a `{ success: true, task }` answer; throws on anything else. */
function taskOf(res: HttpResult): TaskView {
  if (res.status !== 200) throw new Error(`Expected 200, got ${res.status} ${res.text}`);
  return (res.body as { task: TaskView }).task;
}

/** The files of the states directory. */
async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

/** Code that fetches `/number/0` ... `/number/4` in turn and sums them, weighted. */
function fiveFetches(upstream: Upstream): string {
  return `const values = [];
for (let i = 0; i < 5; i++) {
  const response = await fetch(${lit(upstream.url("/number/"))} + i);
  values.push((await response.json()).value);
}
({ values, weighted: values.reduce((sum, value, i) => sum + value * (i + 1), 0) })`;
}

/** Runs `code` with autoFetch off, answering fetch `i` with `values[i]` through `/call`. */
async function runByHand(
  server: ServerProcess,
  code: string,
  values: number[],
): Promise<TaskDetailView> {
  let task = await server.createTask({ code, autoFetch: false });
  for (const value of values) {
    assertEquals(task.status, "paused");
    const body = JSON.stringify({ value });
    task = taskOf(
      await server.call(task.id, {
        id: task.fetchRequest!.id,
        success: true,
        status: 200,
        headers: { "content-type": "application/json" },
        data: { value },
        body,
      }),
    );
  }
  return await server.waitForTask(task.id);
}

Deno.test("POST /cancel ends a paused task in cancelled with its reason; later deliveries and a second cancel are 409", async (t) => {
  const upstream = startUpstream();
  const server = await startServer();
  const step = stepper(t, server);
  try {
    await step("a paused task is cancelled with its reason", async () => {
      const paused = await server.createTask({
        id: "to-cancel",
        autoFetch: false,
        code: `await fetch(${lit(upstream.url("/number/1"))}); "never"`,
      });
      assertEquals(paused.status, "paused");
      const cancelled = taskOf(
        await server.request("/cancel", { body: { taskId: "to-cancel", reason: "not needed" } }),
      );
      assertEquals(cancelled.status, "cancelled");
      assertEquals(cancelled.error, {
        name: "CancelledError",
        message: "not needed",
        kind: "cancelled",
      });
      assertEquals(cancelled.fetchRequest, undefined);
      const late = await server.call("to-cancel", {
        id: paused.fetchRequest!.id,
        success: true,
        status: 200,
        data: 1,
      });
      assertErrorResponse(late, 409);
      assertErrorResponse(await server.request("/cancel", { body: { taskId: "to-cancel" } }), 409);
      const health = (await server.request("/health")).body as { tasks: Record<string, number> };
      assertEquals(health.tasks.cancelled, 1);
    });

    await step("a finished task cannot be cancelled; an unknown one is 404", async () => {
      const done = await server.createTask({ code: "1 + 1" });
      assertEquals(done.status, "completed");
      assertErrorResponse(await server.request("/cancel", { body: { taskId: done.id } }), 409);
      assertErrorResponse(await server.request("/cancel", { body: { taskId: "nope" } }), 404);
    });

    await step(
      "cancelling with a fetch in flight aborts it; its late answer is dropped",
      async () => {
        const task = await server.createTask({
          id: "in-flight",
          code: `await fetch(${lit(upstream.url("/hold/cancel-me"))}); "never"`,
        });
        await upstream.waitForRequests("/hold/cancel-me");
        const cancelled = taskOf(await server.request("/cancel", { body: { taskId: task.id } }));
        assertEquals(cancelled.status, "cancelled");
        assertEquals(cancelled.error?.message, "Cancelled");
        await server.waitForLog((line) =>
          line.msg === "fetch cancelled" && line.taskId === task.id
        );
        upstream.release("cancel-me", 1);
        const after = await server.task(task.id);
        assertEquals(after.status, "cancelled");
        assertEquals(after.fetches.map((fetch) => fetch.status), [null]);
      },
    );

    await step("a cancelled task survives a restart as cancelled", async () => {
      await server.stop();
      const again = await startServer({ statesDir: server.statesDir });
      try {
        assertEquals((await again.task("to-cancel")).status, "cancelled");
        assertEquals((await again.task("in-flight")).status, "cancelled");
      } finally {
        await again.close();
      }
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});

Deno.test("a task that fails after a response keeps it; POST /retry after an upstream outage tries the failed fetch again and completes", async (t) => {
  const upstream = startUpstream();
  const downPort = freePort();
  const down = `http://127.0.0.1:${downPort}/back`;
  const server = await startServer();
  const step = stepper(t, server);
  let comeback: Deno.HttpServer | undefined;
  try {
    await step("the failed response is in the journal", async () => {
      const task = await server.createTask({
        id: "bad-answer",
        code: `const response = await fetch(${lit(upstream.url("/status/500"))});
if (!response.ok) throw new Error("upstream said " + response.status);`,
      });
      const failed = await server.waitForTask(task.id);
      assertEquals(failed.status, "error");
      assertEquals(failed.error?.message, "upstream said 500");
      assertEquals(failed.fetches.length, 1);
      assertEquals(failed.fetches[0]!.status, 500);
      assertExists(failed.fetches[0]!.respondedAt);
    });

    await step("the outage fails the task", async () => {
      const task = await server.createTask({
        id: "outage",
        code: `const first = await (await fetch(${lit(upstream.url("/number/7"))})).json();
const second = await (await fetch(${lit(down)})).json();
({ first: first.value, second })`,
      });
      const failed = await server.waitForTask(task.id);
      assertEquals(failed.status, "error");
      assertEquals(failed.error?.kind, "exception");
      assertEquals(failed.fetches.map((fetch) => fetch.status), [200, null]);
      assertExists(failed.fetches[1]!.error);
      assertErrorResponse(
        await server.request("/retry", { body: { taskId: "bad-answer-x" } }),
        404,
      );
      const paused = await server.createTask({
        autoFetch: false,
        code: `await fetch(${lit(upstream.url("/number/1"))})`,
      });
      assertErrorResponse(await server.request("/retry", { body: { taskId: paused.id } }), 409);
    });

    await step("the upstream comes back; the retry replays fetch 0 and completes", async () => {
      comeback = Deno.serve(
        { hostname: "127.0.0.1", port: downPort, onListen() {} },
        () => Response.json({ back: true }),
      );
      const retried = taskOf(await server.request("/retry", { body: { taskId: "outage" } }));
      assertEquals(retried.retries, 1);
      const done = await server.waitForTask("outage");
      assertEquals(done.status, "completed");
      assertEquals(done.result, { first: 7, second: { back: true } });
      assertEquals(done.retries, 1);
      assertEquals(done.error, undefined);
      assertEquals(done.fetches.map((fetch) => fetch.status), [200, 200]);
      assertEquals(upstream.requestsTo("/number/7").length, 1, "fetch 0 was replayed, not sent");
      assert(done.pauseCount >= 2, `pauseCount continues: ${done.pauseCount}`);
      assertErrorResponse(await server.request("/retry", { body: { taskId: "outage" } }), 409);
    });

    await step("a cancelled task is retried from where it stood", async () => {
      const task = await server.createTask({
        id: "cancel-retry",
        autoFetch: false,
        code: `const r = await fetch(${lit(upstream.url("/number/3"))}); (await r.json()).value`,
      });
      taskOf(await server.request("/cancel", { body: { taskId: task.id } }));
      const retried = taskOf(await server.request("/retry", { body: { taskId: task.id } }));
      assertEquals(retried.status, "paused");
      assertEquals(retried.fetchRequest?.id, task.fetchRequest?.id);
      const done = taskOf(
        await server.call(task.id, {
          id: task.fetchRequest!.id,
          success: true,
          status: 200,
          data: { value: 3 },
        }),
      );
      assertEquals([done.status, done.result], ["completed", 3]);
    });
  } finally {
    await comeback?.shutdown();
    await server.close();
    await upstream.close();
  }
});

Deno.test("POST /fork at each fetch of a five-fetch task, with and without an edited response, gives what an uninterrupted run with those responses gives", async (t) => {
  const upstream = startUpstream();
  const server = await startServer();
  const step = stepper(t, server);
  try {
    const code = fiveFetches(upstream);
    const original = await server.createTask({ id: "five", code });
    const done = await server.waitForTask(original.id);
    assertEquals(done.result, { values: [0, 1, 2, 3, 4], weighted: 40 });
    const sent = (i: number) => upstream.requestsTo(`/number/${i}`).length;

    for (let atFetch = 0; atFetch <= 5; atFetch++) {
      await step(`fork at fetch ${atFetch}`, async () => {
        const before = [0, 1, 2, 3, 4].map(sent);
        const fork = taskOf(
          await server.request("/fork", {
            body: { taskId: "five", id: `five-at-${atFetch}`, atFetch },
          }),
        );
        assertEquals(fork.forkedFrom, { taskId: "five", atFetch });
        const forked = await server.waitForTask(fork.id);
        assertEquals(forked.status, "completed");
        assertEquals(forked.result, done.result);
        // Fetches below atFetch were replayed; the others were sent again.
        assertEquals(
          [0, 1, 2, 3, 4].map((i) => sent(i) - before[i]!),
          [0, 1, 2, 3, 4].map((i) => i < atFetch ? 0 : 1),
        );
      });
    }

    for (let atFetch = 1; atFetch <= 5; atFetch++) {
      await step(`fork at fetch ${atFetch} with fetch ${atFetch - 1} answered 100`, async () => {
        const edited = atFetch - 1;
        const fork = taskOf(
          await server.request("/fork", {
            body: {
              taskId: "five",
              atFetch,
              responses: {
                [edited]: {
                  success: true,
                  status: 200,
                  headers: { "content-type": "application/json" },
                  body: '{"value":100}',
                  data: { value: 100 },
                },
              },
            },
          }),
        );
        const forked = await server.waitForTask(fork.id);
        const values = [0, 1, 2, 3, 4].map((i) => i === edited ? 100 : i);
        const reference = await runByHand(server, code, values);
        assertEquals(reference.result, {
          values,
          weighted: values.reduce((sum, value, i) => sum + value * (i + 1), 0),
        });
        assertEquals(forked.result, reference.result);
        assertEquals(forked.fetches[edited]!.bodyPreview, '{"value":100}');
      });
    }

    await step("the original is untouched; bad forks are refused", async () => {
      const after = await server.task("five");
      assertEquals(after.result, done.result);
      assertEquals(after.updatedAt, done.updatedAt);
      assertEquals(after.fetches, done.fetches);
      const refuse = async (body: Record<string, unknown>, status: number) =>
        assertErrorResponse(await server.request("/fork", { body }), status);
      await refuse({ taskId: "five", atFetch: 6 }, 400);
      await refuse({ taskId: "five", atFetch: 2, responses: { "2": { success: true } } }, 400);
      await refuse({ taskId: "five", id: "five" }, 409);
      await refuse({ taskId: "nope" }, 404);
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});

Deno.test("DELETE /task removes a finished task and its files; a running or paused one is 409", async (t) => {
  const server = await startServer();
  const step = stepper(t, server);
  try {
    await step("a completed task and its files are gone", async () => {
      const task = await server.createTask({ id: "short-lived", code: "21 * 2" });
      assertEquals(task.status, "completed");
      assert((await listDir(server.statesDir)).some((name) => name.startsWith("short-lived.")));
      const res = await server.request("/task?id=short-lived", { method: "DELETE" });
      assertEquals(taskOf(res).result, 42);
      assertEquals(
        (await listDir(server.statesDir)).filter((name) => name.startsWith("short-lived")),
        [],
      );
      assertErrorResponse(await server.request("/status?id=short-lived"), 404);
      assertErrorResponse(await server.request("/task?id=short-lived", { method: "DELETE" }), 404);
      // The id is free again.
      assertEquals((await server.createTask({ id: "short-lived", code: "1" })).result, 1);
    });

    await step("a paused task is 409 until it is cancelled", async () => {
      const paused = await server.createTask({
        id: "waiting",
        autoFetch: false,
        code: `await fetch("https://example.com/")`,
      });
      assertEquals(paused.status, "paused");
      assertErrorResponse(await server.request("/task?id=waiting", { method: "DELETE" }), 409);
      taskOf(await server.request("/cancel", { body: { taskId: "waiting" } }));
      taskOf(await server.request("/task?id=waiting", { method: "DELETE" }));
      assertEquals(
        (await listDir(server.statesDir)).filter((name) => name.startsWith("waiting")),
        [],
      );
    });

    await step("a deleted task stays deleted after a restart", async () => {
      await server.stop();
      const again = await startServer({ statesDir: server.statesDir });
      try {
        assertErrorResponse(await again.request("/status?id=waiting"), 404);
        assertEquals((await again.task("short-lived")).result, 1);
      } finally {
        await again.close();
      }
    });
  } finally {
    await server.close();
  }
});

Deno.test("SIGKILL during cancel, retry, fork and delete leaves each done or not done, never half", async () => {
  const upstream = startUpstream();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-lifecycle-kill-" });
  const downUrl = `http://127.0.0.1:${freePort()}/down`;
  const code = fiveFetches(upstream);
  try {
    for (const killAfterMs of [0, 2, 5, 10, 25]) {
      const port = freePort();
      const first = await startServer({ statesDir: dir, port });
      const suffix = `-${killAfterMs}`;
      try {
        await first.createTask({
          id: `c${suffix}`,
          autoFetch: false,
          code: `await fetch(${lit(upstream.url("/number/1"))})`,
        });
        await first.waitForTask(
          (await first.createTask({ id: `r${suffix}`, code: `await fetch(${lit(downUrl)})` })).id,
        );
        await first.waitForTask((await first.createTask({ id: `f${suffix}`, code })).id);
        await first.waitForTask((await first.createTask({ id: `d${suffix}`, code: "1" })).id);
        const sent = Promise.allSettled([
          first.request("/cancel", { body: { taskId: `c${suffix}` } }),
          first.request("/retry", { body: { taskId: `r${suffix}` } }),
          first.request("/fork", { body: { taskId: `f${suffix}`, id: `f2${suffix}`, atFetch: 2 } }),
          first.request(`/task?id=d${suffix}`, { method: "DELETE" }),
        ]);
        await new Promise((resolve) => setTimeout(resolve, killAfterMs));
        await first.kill();
        await sent;
      } finally {
        await first.close();
      }

      const second = await startServer({ statesDir: dir, port });
      try {
        const status = async (id: string) => {
          const res = await second.request(`/status?id=${id}`);
          return res.status === 404 ? "gone" : (res.body as { task: TaskView }).task.status;
        };
        // Cancel: paused (not done) or cancelled (done).
        const cancel = await status(`c${suffix}`);
        assert(["paused", "cancelled"].includes(cancel), `cancel: ${cancel}`);
        // Retry: not done (error, no retries) or done (ran again and failed again).
        const retried = await second.waitForTask(`r${suffix}`);
        assertEquals(retried.status, "error");
        assert([undefined, 1].includes(retried.retries), `retries: ${retried.retries}`);
        // Fork: absent, or a whole fork that completes like its original.
        const fork = await status(`f2${suffix}`);
        if (fork !== "gone") {
          const forked = await second.waitForTask(`f2${suffix}`);
          assertEquals(forked.result, { values: [0, 1, 2, 3, 4], weighted: 40 });
          assertEquals(forked.forkedFrom, { taskId: `f${suffix}`, atFetch: 2 });
        } else {
          const again = await second.request("/fork", {
            body: { taskId: `f${suffix}`, id: `f2${suffix}`, atFetch: 2 },
          });
          assertEquals(taskOf(again).forkedFrom, { taskId: `f${suffix}`, atFetch: 2 });
        }
        // Delete: the task whole (its detail reads) or gone with both files.
        const files = (await listDir(dir)).filter((name) => name.startsWith(`d${suffix}.`));
        if ((await status(`d${suffix}`)) === "gone") {
          assertEquals(files, []);
        } else {
          assertEquals(files, [`d${suffix}.journal.jsonl`, `d${suffix}.json`]);
          assertEquals((await second.task(`d${suffix}`)).result, 1);
        }
      } catch (error) {
        console.error(second.tail());
        throw error;
      } finally {
        await second.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    await upstream.close();
  }
});
