/**
 * End-to-end tests of durable time and signals on the real server process, with a real
 * upstream and real SIGKILLs: retries that honour `Retry-After`, polling with sleeps, a
 * sleep interrupted by a kill, a `Promise.race` of a slow fetch and a timeout replayed after
 * a restart, signals sent before, during and after a restart, `POST /signal` errors, and a
 * task whose requests are partly performed by the server and partly by an outside worker.
 */
import { assert, assertEquals, assertGreaterOrEqual } from "@std/assert";
import type { TaskView } from "../lib/service/task_types.ts";
import {
  assertErrorResponse,
  delay,
  freePort,
  type ServerProcess,
  startServer,
  waitFor,
} from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";

const lit = (value: unknown) => JSON.stringify(value);

/** Runs `fn` with a new temporary states directory, removed afterwards. */
async function withStatesDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-timers-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `POST /signal`. */
function signal(server: ServerProcess, taskId: string, name: string, data?: unknown) {
  return server.request("/signal", { body: { taskId, name, data } });
}

/** Counts the journal entries of `type` in a task's journal file. */
async function journalCount(dir: string, id: string, type: string): Promise<number> {
  const text = await Deno.readTextFile(`${dir}/${id}.journal.jsonl`);
  return text.split("\n").filter((line) => line.startsWith(`{"type":${lit(type)}`)).length;
}

Deno.test("a retry loop honours Retry-After on a 429: it sleeps the advertised time between attempts and completes", async () => {
  await using upstream = startUpstream();
  await using server = await startServer();
  const url = upstream.url("/limited/retry?fail=2&retryAfter=1");
  const task = await server.createTask({
    id: "retry",
    code: `let response;
for (let attempt = 1; ; attempt++) {
  response = await fetch(${lit(url)});
  if (response.status !== 429 || attempt === 5) break;
  const seconds = Number(response.headers.get("retry-after") ?? "1");
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
}
({ status: response.status, body: await response.json() })`,
  });
  assertEquals(task.status, "paused");
  const done = await server.waitForTask("retry");
  assertEquals(done.result, { status: 200, body: { key: "retry", attempt: 3 } });
  const arrivals = upstream.requestsTo("/limited/retry").map((r) => r.receivedAt);
  assertEquals(arrivals.length, 3);
  assertGreaterOrEqual(arrivals[1]! - arrivals[0]!, 1000);
  assertGreaterOrEqual(arrivals[2]! - arrivals[1]!, 1000);
});

Deno.test("a poll-until-done loop sleeps between polls and completes with the job's answer; the view shows wakeAt while it sleeps", async () => {
  await using upstream = startUpstream();
  await using server = await startServer();
  const url = upstream.url("/job/build?after=3");
  await server.createTask({
    id: "poll",
    code: `let job;
let polls = 0;
do {
  if (polls++ > 0) await new Promise((resolve) => setTimeout(resolve, 300));
  job = await (await fetch(${lit(url)})).json();
} while (!job.done);
({ polls, attempt: job.attempt })`,
  });
  const sleeping = await waitFor(async () => {
    const view = await server.task("poll");
    return view.wakeAt !== undefined ? view : undefined;
  });
  assertEquals(sleeping.status, "paused");
  assert(!Number.isNaN(Date.parse(sleeping.wakeAt!)), `wakeAt ${sleeping.wakeAt} is a date`);
  const done = await server.waitForTask("poll");
  assertEquals(done.result, { polls: 3, attempt: 3 });
});

Deno.test("SIGKILL mid-sleep: the restarted server wakes the task at its original due time and it completes", async () => {
  await withStatesDir(async (dir) => {
    const port = freePort();
    const first = await startServer({ statesDir: dir, port });
    let created: TaskView;
    try {
      created = await first.createTask({
        id: "sleeper",
        code: `const started = Date.now();
await new Promise((resolve) => setTimeout(resolve, 2500));
({ slept: Date.now() - started >= 2500 })`,
      });
      assertEquals(created.status, "paused");
      assert(created.wakeAt, "the paused task says when it wakes");
      await delay(500);
      assertEquals((await first.kill()).signal, "SIGKILL");
    } finally {
      await first.close();
    }
    const second = await startServer({ statesDir: dir, port });
    try {
      const done = await second.waitForTask("sleeper");
      assertEquals(done.status, "completed");
      assertEquals(done.result, { slept: true });
      assertGreaterOrEqual(Date.parse(done.updatedAt), Date.parse(created.wakeAt!));
    } finally {
      await second.close();
    }
  });
});

Deno.test("Promise.race of a slow fetch and a timeout: the timeout won, and after a SIGKILL the replay takes the same branch", async () => {
  await using upstream = startUpstream();
  await withStatesDir(async (dir) => {
    const port = freePort();
    const code = `const winner = await Promise.race([
  fetch(${lit(upstream.url("/hold/race"))}).then(() => "fetch"),
  new Promise((resolve) => setTimeout(() => resolve("timeout"), 300)),
]);
const go = await FlowState.waitForSignal("go");
({ winner, go })`;
    const first = await startServer({ statesDir: dir, port });
    try {
      await first.createTask({ id: "race", code });
      const waiting = await waitFor(async () => {
        const view = await first.task("race");
        return view.signalsAwaited ? view : undefined;
      });
      assertEquals(waiting.signalsAwaited, ["go"]);
      assertEquals(waiting.fetchRequests?.length, 1, "the slow fetch is still in flight");
      await first.kill();
    } finally {
      await first.close();
    }
    const second = await startServer({ statesDir: dir, port });
    try {
      assertEquals((await signal(second, "race", "go", 1)).status, 200);
      const stillWaiting = await second.task("race");
      assertEquals(stillWaiting.status, "paused", "the slow fetch keeps the task alive");
      upstream.release("race", "late");
      const done = await second.waitForTask("race");
      assertEquals(done.result, { winner: "timeout", go: 1 });
    } finally {
      await second.close();
    }
  });
});

Deno.test("signals sent before, during and after a restart are each delivered once, in order", async () => {
  await withStatesDir(async (dir) => {
    const port = freePort();
    // The sleep outlasts the first signal's round trip even on a loaded machine.
    const code = `await FlowState.sleep(1500);
const a = await FlowState.waitForSignal("a");
const b = await FlowState.waitForSignal("b");
const c = await FlowState.waitForSignal("c", { timeoutMs: 60000 });
[a, b, c]`;
    const first = await startServer({ statesDir: dir, port });
    try {
      await first.createTask({ id: "signals", code });
      const early = await signal(first, "signals", "a", { n: 1 });
      assertEquals(early.status, 200);
      const view = (early.body as { task: TaskView }).task;
      assertEquals(view.signalsAwaited, undefined, "not waiting yet: the signal is kept");
      await first.kill();
    } finally {
      await first.close();
    }
    // While the server is down, a client retries until the new server answers.
    const during = (async () => {
      for (;;) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/signal`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ taskId: "signals", name: "b", data: "two" }),
          });
          const body = await res.json();
          if (res.status === 200) return body;
          if (res.status !== 503) throw new Error(`POST /signal answered ${res.status}`);
        } catch (error) {
          if (!(error instanceof TypeError)) throw error;
        }
        await delay(50);
      }
    })();
    await delay(300);
    const second = await startServer({ statesDir: dir, port });
    try {
      await during;
      const waiting = await second.waitForTask("signals", ["paused"]);
      assertEquals(waiting.status, "paused");
      await waitFor(async () => (await second.task("signals")).signalsAwaited?.[0] === "c");
      assertEquals((await signal(second, "signals", "c", [3])).status, 200);
      const done = await second.waitForTask("signals");
      assertEquals(done.result, [{ n: 1 }, "two", [3]]);
      assertEquals(await journalCount(dir, "signals", "signal"), 3);
      assertErrorResponse(await signal(second, "signals", "a"), 409);
      // The timeline of the view: the sleep's timer fired at or after it was due, the
      // signals in the order they arrived, with their data.
      const detail = await second.task("signals");
      assertEquals(detail.signals?.map((s) => [s.name, s.data]), [
        ["a", { n: 1 }],
        ["b", "two"],
        ["c", [3]],
      ]);
      assertEquals(detail.timers?.length, 1);
      const [sleep] = detail.timers!;
      assert(sleep?.firedAt && sleep.dueAt && sleep.firedAt >= sleep.dueAt, lit(sleep));
      assert(detail.signals!.every((s) => s.receivedAt >= detail.createdAt));
      assertEquals(detail.retriedAt, undefined, "never retried");
    } finally {
      await second.close();
    }
  });
});

Deno.test("POST /signal refuses an unknown task with 404 and a malformed body with 400", async () => {
  await using server = await startServer();
  assertErrorResponse(await signal(server, "nobody", "go"), 404);
  assertErrorResponse(await server.request("/signal", { body: { taskId: "x" } }), 400);
  assertErrorResponse(
    await server.request("/signal", { body: { taskId: "x", name: "go", extra: 1 } }),
    400,
  );
});

Deno.test("a mixed task: the server performs one request, an outside worker the one marked external, listed in full", async () => {
  await using upstream = startUpstream();
  await using server = await startServer();
  await server.createTask({
    id: "mixed",
    code: `const auto = await (await fetch(${lit(upstream.url("/number/5"))})).json();
const external = await fetch("https://worker.invalid/sign", {
  method: "POST",
  headers: { "x-purpose": "approval" },
  body: JSON.stringify({ amount: auto.value }),
  external: true,
});
({ auto: auto.value, external: await external.json() })`,
  });
  const paused = await waitFor(async () => {
    const view = await server.task("mixed");
    return view.fetchRequests?.[0]?.external ? view : undefined;
  });
  const request = paused.fetchRequests![0]!;
  assertEquals(request.method, "POST");
  assertEquals(request.url, "https://worker.invalid/sign");
  assertEquals(request.headers?.["x-purpose"], "approval");
  assertEquals(request.body, '{"amount":5}');
  const answered = await server.call("mixed", {
    id: request.id,
    success: true,
    status: 200,
    data: { signed: true },
  });
  assertEquals(answered.status, 200);
  const done = await server.waitForTask("mixed");
  assertEquals(done.result, { auto: 5, external: { signed: true } });
  assertEquals(upstream.requestsTo("/number/5").length, 1);
});

Deno.test("setInterval cleared after n ticks completes the task with the ticks counted", async () => {
  await using server = await startServer();
  await server.createTask({
    id: "ticks",
    code: `const seen = [];
await new Promise((resolve) => {
  const id = setInterval(() => {
    seen.push(seen.length);
    if (seen.length === 5) {
      clearInterval(id);
      resolve();
    }
  }, 50);
});
seen`,
  });
  const done = await server.waitForTask("ticks");
  assertEquals(done.result, [0, 1, 2, 3, 4]);
});

Deno.test("a cancelled sleeping task is not woken when its timer falls due", async () => {
  await using server = await startServer();
  await server.createTask({
    id: "nap",
    code: `await new Promise((resolve) => setTimeout(resolve, 300)); "woke"`,
  });
  const cancelled = await server.request("/cancel", { body: { taskId: "nap" } });
  assertEquals(cancelled.status, 200);
  assertEquals((cancelled.body as { task: TaskView }).task.wakeAt, undefined);
  await delay(600);
  const view = await server.task("nap");
  assertEquals(view.status, "cancelled");
  assertEquals(await journalCount(server.statesDir, "nap", "timer"), 0);
});
