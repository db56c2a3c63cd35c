/**
 * Crash loop: concurrent tasks of 3 to 10 fetches each (sequential, in loops, in
 * `Promise.all`, sleeping between fetches, waiting for a signal first) against an upstream
 * with random delays, while the server is killed with SIGKILL at random moments and
 * restarted on the same port and states directory. The signal of each signal-waiting task
 * is sent at a random moment, retried through the kills until the server takes it.
 *
 * Every task must end `completed` with the result an uninterrupted run gives (the upstream
 * answers a value derived from the URL only, so the result is computed here in advance),
 * every state file must parse, and the requests sent more than once (same
 * `Idempotency-Key` at the upstream) are counted.
 *
 * @module
 */
import {
  checkStatesDir,
  grepLogFile,
  Random,
  type ScenarioOptions,
  type ScenarioResult,
  type ServerProcess,
  sleep,
  startChaosServer,
} from "./support.ts";
import { startUpstream, valueFor } from "../testing/upstream.ts";

/** Shapes of generated tasks. */
type Kind = "seq" | "all" | "mixed" | "sleep" | "signal";

/** A generated task: its code, its input and the result an uninterrupted run gives. */
export interface CrashTask {
  id: string;
  kind: Kind;
  fetches: number;
  code: string;
  input: { base: string; tag: string; n: number };
  expected: unknown;
}

const CODE: Record<Kind, string> = {
  seq: `
const values = [];
for (let i = 0; i < input.n; i++) {
  const response = await fetch(input.base + "/v/" + input.tag + "/seq/" + i);
  values.push((await response.json()).value);
}
({ kind: "seq", values, sum: values.reduce((a, b) => a + b, 0) });`,
  all: `
const urls = Array.from({ length: input.n }, (_, i) => input.base + "/v/" + input.tag + "/all/" + i);
const bodies = await Promise.all(urls.map(async (url) => (await fetch(url)).json()));
({ kind: "all", values: bodies.map((body) => body.value) });`,
  mixed: `
const first = await (await fetch(input.base + "/v/" + input.tag + "/mixed/first")).json();
const values = [first.value];
let round = 0;
while (values.length < input.n) {
  const branch = values[values.length - 1] % 2 === 0 ? "even" : "odd";
  const width = Math.min(2, input.n - values.length);
  const urls = [];
  for (let j = 0; j < width; j++) {
    urls.push(input.base + "/v/" + input.tag + "/mixed/" + branch + "/" + round + "/" + j);
  }
  const pair = await Promise.all(urls.map((url) => fetch(url).then((response) => response.json())));
  for (const body of pair) values.push(body.value);
  round++;
}
({ kind: "mixed", values });`,
  sleep: `
const values = [];
for (let i = 0; i < input.n - 1; i++) {
  if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50 + (i % 3) * 150));
  values.push((await (await fetch(input.base + "/v/" + input.tag + "/sleep/" + i)).json()).value);
}
let timer;
const raced = await Promise.race([
  fetch(input.base + "/v/" + input.tag + "/sleep/race").then((r) => r.json()).then((b) => b.value),
  new Promise((resolve) => { timer = setTimeout(() => resolve("timeout"), 60000); }),
]);
clearTimeout(timer);
values.push(raced);
({ kind: "sleep", values });`,
  signal: `
const go = await FlowState.waitForSignal("go");
const values = [];
for (let i = 0; i < input.n; i++) {
  const response = await fetch(input.base + "/v/" + input.tag + "/signal/" + go + "/" + i);
  values.push((await response.json()).value);
}
({ kind: "signal", go, values });`,
};

/** The result an uninterrupted run of `kind` gives. */
function expectedResult(kind: Kind, tag: string, n: number): unknown {
  if (kind === "seq") {
    const values = Array.from({ length: n }, (_, i) => valueFor(`/v/${tag}/seq/${i}`));
    return { kind, values, sum: values.reduce((a, b) => a + b, 0) };
  }
  if (kind === "all") {
    return { kind, values: Array.from({ length: n }, (_, i) => valueFor(`/v/${tag}/all/${i}`)) };
  }
  if (kind === "sleep") {
    const values = Array.from({ length: n - 1 }, (_, i) => valueFor(`/v/${tag}/sleep/${i}`));
    return { kind, values: [...values, valueFor(`/v/${tag}/sleep/race`)] };
  }
  if (kind === "signal") {
    const values = Array.from({ length: n }, (_, i) => valueFor(`/v/${tag}/signal/${tag}/${i}`));
    return { kind, go: tag, values };
  }
  const values = [valueFor(`/v/${tag}/mixed/first`)];
  for (let round = 0; values.length < n; round++) {
    const branch = values[values.length - 1]! % 2 === 0 ? "even" : "odd";
    const width = Math.min(2, n - values.length);
    for (let j = 0; j < width; j++) {
      values.push(valueFor(`/v/${tag}/mixed/${branch}/${round}/${j}`));
    }
  }
  return { kind, values };
}

/** `count` tasks of 3 to 10 fetches, kinds in turn. */
export function generateTasks(count: number, base: string, rng: Random): CrashTask[] {
  const kinds: Kind[] = ["seq", "all", "mixed", "sleep", "signal"];
  const runTag = rng.int(0, 0xffffff).toString(16);
  return Array.from({ length: count }, (_, i) => {
    const kind = kinds[i % kinds.length]!;
    const n = rng.int(3, 10);
    const tag = `r${runTag}-t${i}`;
    return {
      id: `crash-${runTag}-${String(i).padStart(3, "0")}`,
      kind,
      fetches: n,
      code: CODE[kind],
      input: { base, tag, n },
      expected: expectedResult(kind, tag, n),
    };
  });
}

interface TaskView {
  id: string;
  status: string;
  result?: unknown;
  error?: { name: string; message: string; kind: string };
}

/** Runs the crash loop. */
export async function runCrashLoop(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const rng = new Random(options.seed ?? 1);
  const taskCount = options.short ? 10 : 50;
  const killTarget = options.short ? 5 : 20;
  const problems: string[] = [];
  const upstream = startUpstream({ minDelayMs: 10, maxDelayMs: 300 });
  let server: ServerProcess | null = null;
  try {
    server = await startChaosServer({ label: "crash" });
    const srv = server;
    const tasks = generateTasks(taskCount, upstream.origin, rng);
    const views = new Map<string, TaskView>();
    const fetchTotal = tasks.reduce((sum, task) => sum + task.fetches, 0);
    log(`crash loop: ${taskCount} tasks (${fetchTotal} fetches), ${killTarget} kills`);

    let stopPolling = false;
    const poller = (async () => {
      while (!stopPolling) {
        try {
          const reply = await srv.request("/status?limit=10000", { timeoutMs: 5_000 });
          const list = (reply.body as { tasks?: TaskView[] } | undefined)?.tasks ?? [];
          for (const view of list) views.set(view.id, view);
        } catch {
          // down: being killed
        }
        await sleep(150);
      }
    })();
    const isDone = (id: string) => {
      const status = views.get(id)?.status;
      return status === "completed" || status === "error";
    };

    const deadline = Date.now() + (options.short ? 60_000 : 180_000);
    let createFailures = 0;
    let created = 0;
    let signalsSent = 0;
    /** Sends the task's signal at a random moment, retrying through kills (a retry of a
     * signal already taken is kept unused or refused with 409: both are fine). */
    const sendSignal = async (task: CrashTask) => {
      await sleep(rng.int(0, 1500));
      const reply = await srv.requestRetrying("/signal", {
        method: "POST",
        body: { taskId: task.id, name: "go", data: task.input.tag },
        deadline,
      }).catch((error) => ({ status: 0, body: String(error) }));
      if (reply.status === 200 || reply.status === 409) signalsSent++;
      else {
        problems.push(
          `POST /signal ${task.id} answered ${reply.status}: ${JSON.stringify(reply.body)}`,
        );
      }
    };
    const creation = Promise.all(tasks.map(async (task) => {
      // Stagger the submissions a little, so some land right after a restart.
      await sleep(rng.int(0, 300));
      for (;;) {
        const reply = await srv.requestRetrying("/task", {
          method: "POST",
          body: { id: task.id, name: task.kind, code: task.code, input: task.input },
          deadline,
        }).catch((error) => ({ status: 0, body: String(error) }));
        if (reply.status === 200 || reply.status === 409) {
          created++;
          if (task.kind === "signal") await sendSignal(task);
          return;
        }
        createFailures++;
        problems.push(
          `POST /task ${task.id} answered ${reply.status}: ${JSON.stringify(reply.body)}`,
        );
        return;
      }
    }));

    let kills = 0;
    let killsInFlight = 0;
    let downMs = 0;
    while (kills < killTarget) {
      // Random moments, some right after the restart (recovery in progress).
      await sleep(rng.next() < 0.25 ? rng.int(0, 60) : rng.int(60, 700));
      const inFlight = tasks.some((task) => !isDone(task.id));
      const before = performance.now();
      await srv.kill();
      kills++;
      if (inFlight) killsInFlight++;
      await srv.restart();
      downMs += performance.now() - before;
    }
    log(`crash loop: ${kills} kills done (${killsInFlight} with tasks in flight); waiting`);
    await creation;
    while (Date.now() < deadline && !tasks.every((task) => isDone(task.id))) await sleep(200);
    stopPolling = true;
    await poller;

    let completed = 0;
    let wrong = 0;
    for (const task of tasks) {
      const reply = await srv.request(`/status?id=${task.id}`);
      const view = (reply.body as { task?: TaskView } | undefined)?.task;
      if (reply.status !== 200 || !view) {
        problems.push(`task ${task.id}: GET /status answered ${reply.status} ${reply.text}`);
        continue;
      }
      if (view.status !== "completed") {
        problems.push(
          `task ${task.id} (${task.kind}, ${task.fetches} fetches) ended ${view.status}` +
            (view.error ? `: ${view.error.kind} ${view.error.name}: ${view.error.message}` : ""),
        );
        continue;
      }
      completed++;
      if (JSON.stringify(view.result) !== JSON.stringify(task.expected)) {
        wrong++;
        problems.push(
          `task ${task.id}: result ${JSON.stringify(view.result)}, expected ${
            JSON.stringify(task.expected)
          }`,
        );
      }
    }

    const duplicates = upstream.duplicates();
    await srv.shutdown();
    const states = await checkStatesDir(srv.statesDir);
    for (const line of states.unreadable) problems.push(`unreadable state: ${line}`);
    if (states.records !== taskCount) {
      problems.push(`${states.records} records on disk, expected ${taskCount}`);
    }
    if (states.foreign.length > 0) problems.push(`foreign files: ${states.foreign.join(", ")}`);
    const skippedLines = await grepLogFile(srv.logPath, /"msg":"state file skipped"/);
    for (const line of skippedLines.slice(0, 5)) problems.push(`server skipped a file: ${line}`);
    const errors = await grepLogFile(srv.logPath, /"level":"error"/);
    for (const line of errors.slice(0, 5)) problems.push(`server error log: ${line}`);
    const recoveries = (await grepLogFile(srv.logPath, /"msg":"task recovering"/)).length;

    return {
      name: "crash loop",
      durationMs: performance.now() - started,
      figures: {
        tasks: taskCount,
        fetches: fetchTotal,
        completed,
        "wrong results": wrong,
        kills,
        "kills with tasks in flight": killsInFlight,
        "mean restart, ms": Math.round(downMs / Math.max(1, kills)),
        "recoveries of running tasks": recoveries,
        "upstream requests": upstream.received,
        "keys sent more than once": duplicates.keys,
        "duplicate requests": duplicates.extraRequests,
        "state files parsed": states.records + states.journals,
        "journal lines parsed": states.journalLines,
        "uncommitted journal bytes": states.uncommittedBytes,
        "POST /task given up": createFailures,
        "tasks created": created,
        "signals delivered": signalsSent,
      },
      problems,
      skipped: [],
    };
  } finally {
    await server?.close();
    await upstream.close();
  }
}
