import { assert, assertEquals, assertMatch } from "@std/assert";
import { startServer, waitFor } from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";
import type { TaskView } from "../lib/service/task_types.ts";

const TIME_LIMIT_MS = 500;
const GRACE_MS = 500;

/** Built-ins QuickJS's interrupt handler does not stop, on huge array-likes and strings. */
const ATTACKS: Record<string, string> = {
  indexOf: "[].indexOf.call({ length: 2 ** 30 }, 1)",
  includes: "[].includes.call({ length: 2 ** 30 }, 1)",
  lastIndexOf: "[].lastIndexOf.call({ length: 2 ** 30 }, 1)",
  reverse: "[].reverse.call({ length: 2 ** 30 })",
  copyWithin: "[].copyWithin.call({ length: 2 ** 30 }, 1, 0)",
  splice: "[].splice.call({ length: 2 ** 30 }, 0, 1)",
  shift: "[].shift.call({ length: 2 ** 30 })",
  sort: "[].sort.call({ length: 2 ** 30 })",
  every: "[].every.call({ length: 2 ** 30 }, () => true)",
  stringIndexOf: '"a".repeat(2 ** 24).indexOf("a".repeat(4096) + "b")',
};

/** The process ids of `pid`'s children (Linux). */
async function children(pid: number): Promise<number[]> {
  const found: number[] = [];
  for await (const thread of Deno.readDir(`/proc/${pid}/task`)) {
    const text = await Deno.readTextFile(`/proc/${pid}/task/${thread.name}/children`)
      .catch(() => "");
    found.push(...text.split(" ").filter((s) => s !== "").map(Number));
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

Deno.test("every built-in the interrupt cannot stop ends at the time limit plus the grace; a paused task on the same engine is unharmed", async () => {
  await using server = await startServer({
    env: {
      TIME_LIMIT_MS: String(TIME_LIMIT_MS),
      TIME_LIMIT_GRACE_MS: String(GRACE_MS),
      WORKERS: "1",
      AUTO_FETCH: "false",
    },
  });
  const calm = await server.createTask({
    code: 'const r = await fetch("http://127.0.0.1:9/x"); r.status + 1',
  });
  assertEquals(calm.status, "paused");
  const outcomes: Record<string, string> = {};
  for (const [name, code] of Object.entries(ATTACKS)) {
    const started = performance.now();
    const task: TaskView = await server.createTask({ code });
    const elapsed = performance.now() - started;
    outcomes[name] = `${task.status}/${task.error?.kind}`;
    // Unstopped, each runs from seconds to minutes; the bound is far below that.
    assert(elapsed < 15_000, `${name} took ${elapsed} ms`);
  }
  assertEquals(outcomes, Object.fromEntries(Object.keys(ATTACKS).map((n) => [n, "error/timeout"])));
  const res = await server.call(calm.id, {
    id: calm.fetchRequest!.id,
    success: true,
    status: 200,
    headers: {},
    data: null,
  });
  assertEquals(res.status, 200, res.text);
  const done = await server.waitForTask(calm.id);
  assertEquals([done.status, done.result], ["completed", 201]);
});

Deno.test("an engine process stuck in a built-in dies with its server", async () => {
  await using server = await startServer({ env: { WORKERS: "1", TIME_LIMIT_MS: "60000" } });
  const serverPid = server.pid!;
  const engines = await waitFor(async () => {
    const pids = await children(serverPid);
    return pids.length > 0 ? pids : null;
  });
  const cpuTicks = async () =>
    Number((await Deno.readTextFile(`/proc/${engines[0]}/stat`)).split(" ")[13]);
  await server.waitForLog((line) => line.msg === "listening");
  const idle = await cpuTicks();
  const request = server.request("/task", { body: { code: ATTACKS.indexOf } }).catch(() => null);
  // The segment is running once the engine burns CPU; kill the server meanwhile.
  await waitFor(async () => await cpuTicks() > idle + 50);
  await server.kill();
  await request;
  await waitFor(() => engines.every((pid) => !alive(pid)), {
    timeoutMs: 5_000,
    message: "the orphaned engine process to end",
  });
});

Deno.test("a task whose segments use more CPU time in all than TASK_CPU_BUDGET_MS fails with kind timeout", async () => {
  const upstream = startUpstream();
  try {
    await using server = await startServer({ env: { TASK_CPU_BUDGET_MS: "300" } });
    // Each segment burns some tens of milliseconds; 40 of them are far over 300 ms.
    const code = `let x = 0;
for (let i = 0; i < 40; i++) {
  for (let j = 0; j < 2e6; j++) x += j % 7;
  await fetch(${JSON.stringify(upstream.url("/number/1"))});
}
x`;
    const task = await server.createTask({ code });
    const done = await server.waitForTask(task.id, ["completed", "error"], 60_000);
    assertEquals(done.status, "error", JSON.stringify(done));
    assertEquals(done.error?.kind, "timeout");
    assertMatch(done.error!.message, /more than its budget of 300 ms/);
    assert(done.pauseCount < 40, `it ran ${done.pauseCount} segments`);
  } finally {
    await upstream.close();
  }
});

Deno.test("a task whose server stopped during a segment past its time limit is failed at the next start, not run again", async () => {
  await using server = await startServer({
    // A long grace: the server is killed while the segment overruns, before the watchdog.
    env: { TIME_LIMIT_MS: "300", TIME_LIMIT_GRACE_MS: "60000", WORKERS: "1" },
  });
  void server.request("/task", { body: { id: "hog", code: ATTACKS.indexOf } }).catch(() => {});
  await server.waitForLog((line) => line.msg === "segment past its time limit");
  // The mark is saved right after the log line; give the write a moment to land.
  await waitFor(async () => {
    const record = JSON.parse(await Deno.readTextFile(`${server.statesDir}/hog.json`));
    return record.overrunAt !== undefined;
  });
  await server.kill();
  await server.restart();
  const task = await server.waitForTask("hog");
  assertEquals([task.status, task.error?.kind], ["error", "timeout"]);
  assertMatch(task.error!.message, /it is not run again/);
  assert(!server.logs().some((line) => line.msg === "task recovering"), server.tail());
});

Deno.test("SIGTERM does not wait for a stuck segment past the grace; the task stays running on disk", async () => {
  await using server = await startServer({
    env: { TIME_LIMIT_MS: "60000", TIME_LIMIT_GRACE_MS: "300", WORKERS: "1" },
  });
  const serverPid = server.pid!;
  const [engine] = await waitFor(async () => {
    const pids = await children(serverPid);
    return pids.length > 0 ? pids : null;
  });
  const cpuTicks = async () =>
    Number((await Deno.readTextFile(`/proc/${engine}/stat`)).split(" ")[13]);
  await server.waitForLog((line) => line.msg === "listening");
  const idle = await cpuTicks();
  const request = server.request("/task", { body: { id: "stuck", code: ATTACKS.indexOf } })
    .catch(() => null);
  await waitFor(async () => await cpuTicks() > idle + 30);
  const started = performance.now();
  const status = await server.stop();
  const elapsed = performance.now() - started;
  await request;
  assertEquals(status.code, 0);
  // The built-in alone runs for tens of seconds; the 60 s limit does not hold the stop.
  assert(elapsed < 15_000, `the stop took ${elapsed} ms`);
  const record = JSON.parse(await Deno.readTextFile(`${server.statesDir}/stuck.json`));
  assertEquals(record.status, "running");
});

Deno.test("console output is capped per task by MAX_LOG_BYTES and its copy to the server log by GUEST_LOG_RATE", async () => {
  const upstream = startUpstream();
  try {
    await using server = await startServer({
      env: { MAX_LOG_BYTES: "20000", GUEST_LOG_RATE: "5" },
    });
    // 5 segments of 200 lines of 1,000 characters: 1 MB asked for, 20 KB kept.
    const code = `for (let s = 0; s < 5; s++) {
  for (let i = 0; i < 200; i++) console.log(s + ":" + i + " " + "x".repeat(1000));
  await fetch(${JSON.stringify(upstream.url("/number/1"))});
}
"printed"`;
    const task = await server.createTask({ code });
    const done = await server.waitForTask(task.id);
    assertEquals([done.status, done.result], ["completed", "printed"]);
    assert(done.logs.length > 0 && done.logs.length < 20, `${done.logs.length} lines kept`);
    const record = JSON.parse(await Deno.readTextFile(`${server.statesDir}/${task.id}.json`));
    assert(record.logBytes <= 20_000, `logBytes ${record.logBytes}`);
    assertEquals(record.logCount + record.droppedLogLines, 1000);
    const journal = await Deno.stat(`${server.statesDir}/${task.id}.journal.jsonl`);
    assert(journal.size < 100_000, `the journal is ${journal.size} bytes`);
    const copied = server.logs().filter((line) => line.msg === "guest console").length;
    assert(copied < 20, `${copied} console lines copied to the server log`);
  } finally {
    await upstream.close();
  }
});

Deno.test("a task fetching many large bodies at once completes within a small FETCH_INFLIGHT_MB", async () => {
  const body = "y".repeat(1024 * 1024);
  const big = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(body, { headers: { "content-type": "text/plain" } }),
  );
  try {
    await using server = await startServer({
      env: { FETCH_INFLIGHT_MB: "3", FETCH_TASK_INFLIGHT_MB: "2" },
    });
    const url = `http://127.0.0.1:${big.addr.port}/big`;
    // 12 × 1 MiB wanted at once: at most two are read and held at a time.
    const code = `const rs = await Promise.all(Array.from({ length: 12 }, (_, i) =>
  fetch(${JSON.stringify(url)} + "?i=" + i)));
let total = 0;
for (const r of rs) total += (await r.text()).length;
total`;
    const task = await server.createTask({ code });
    const done = await server.waitForTask(task.id, ["completed", "error"], 120_000);
    assertEquals([done.status, done.result], ["completed", 12 * body.length], JSON.stringify(done));
  } finally {
    await big.shutdown();
  }
});
