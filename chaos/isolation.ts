/**
 * Isolation under attack, CPU and memory, each on a server of its own:
 *
 * - CPU, with `TIME_LIMIT_MS=500` and `TIME_LIMIT_GRACE_MS=500`: built-ins QuickJS's
 *   interrupt handler does not stop (an `indexOf` over a huge array-like runs for a minute
 *   unstopped) must each end at the limit plus the grace as a task `error` of kind
 *   `timeout`, while a task paused on the same engines is unharmed and completes
 *   afterwards with the right result.
 * - Memory: tasks that grow their VM's memory by ~40 MiB each and pause must stay within
 *   `LIVE_VM_MB` of live VMs (the least recently used are dropped, and replay when resumed
 *   to the right result).
 *
 * Figures: the worst segment time against the limit, the outcome of each attack, the live
 * VM bytes and the peak RSS of the server and its engine processes against the budget.
 *
 * @module
 */
import { type ScenarioOptions, type ScenarioResult, startChaosServer } from "./support.ts";
import { startUpstream, type Upstream } from "../testing/upstream.ts";

const TIME_LIMIT_MS = 500;
const GRACE_MS = 500;
const LIVE_VM_MB = 96;
/** Slack on top of limit and grace for one attack (the answer, the new engine process). */
const ATTACK_SLACK_MS = 10_000;

/** Built-ins QuickJS's interrupt handler does not stop, on huge array-likes and strings. */
export const BUILTIN_ATTACKS: Readonly<Record<string, string>> = {
  indexOf: "[].indexOf.call({ length: 2 ** 30 }, 1)",
  includes: "[].includes.call({ length: 2 ** 30 }, 1)",
  lastIndexOf: "[].lastIndexOf.call({ length: 2 ** 30 }, 1)",
  reverse: "[].reverse.call({ length: 2 ** 30 })",
  copyWithin: "[].copyWithin.call({ length: 2 ** 30 }, 1, 0)",
  splice: "[].splice.call({ length: 2 ** 30 }, 0, 1)",
  shift: "[].shift.call({ length: 2 ** 30 })",
  sort: "[].sort.call({ length: 2 ** 30 })",
  every: "[].every.call({ length: 2 ** 30 }, () => true)",
  "string indexOf": '"a".repeat(2 ** 24).indexOf("a".repeat(4096) + "b")',
};

/** The attacks of the short form. */
const SHORT_ATTACKS = ["indexOf", "sort", "string indexOf"];

/** Resident bytes of `pid` and its children (the engine processes), Linux. */
async function treeRss(pid: number): Promise<number> {
  const rss = async (id: number) => {
    const status = await Deno.readTextFile(`/proc/${id}/status`).catch(() => "");
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  };
  let total = await rss(pid);
  for await (const thread of Deno.readDir(`/proc/${pid}/task`)) {
    const text = await Deno.readTextFile(`/proc/${pid}/task/${thread.name}/children`)
      .catch(() => "");
    for (const child of text.split(" ").filter((s) => s !== "")) total += await rss(Number(child));
  }
  return total;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

/** Runs the scenario. */
export async function runIsolation(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const problems: string[] = [];
  const figures: Record<string, string | number> = {};
  const upstream = startUpstream();
  try {
    await attackCpu(options, upstream, problems, figures);
    await fillMemory(options, upstream, problems, figures);
  } catch (error) {
    problems.push(`the scenario failed: ${error instanceof Error ? error.stack : String(error)}`);
  } finally {
    await upstream.close();
  }
  return {
    name: "isolation (CPU and memory)",
    durationMs: performance.now() - started,
    figures,
    problems,
    skipped: [],
  };
}

/** The built-in attacks against a 500 ms limit, beside a calm paused task. */
async function attackCpu(
  options: ScenarioOptions,
  upstream: Upstream,
  problems: string[],
  figures: Record<string, string | number>,
): Promise<void> {
  const log = options.log ?? (() => {});
  const srv = await startChaosServer({
    label: "isolation-cpu",
    env: { TIME_LIMIT_MS: String(TIME_LIMIT_MS), TIME_LIMIT_GRACE_MS: String(GRACE_MS) },
  });
  try {
    const calm = await srv.createTask({
      code: `const r = await fetch(${JSON.stringify(upstream.url("/hold/calm"))});
(await r.json()).value + 1`,
    });
    const attacks = options.short ? SHORT_ATTACKS : Object.keys(BUILTIN_ATTACKS);
    let worst = 0;
    const outcomes: string[] = [];
    for (const name of attacks) {
      const begun = performance.now();
      const res = await srv.request("/task", { body: { code: BUILTIN_ATTACKS[name] } });
      const elapsed = performance.now() - begun;
      worst = Math.max(worst, elapsed);
      const task = (res.body as { task?: { status: string; error?: { kind: string } } }).task;
      const outcome = `${task?.status}/${task?.error?.kind}`;
      outcomes.push(`${name} ${outcome} ${Math.round(elapsed)} ms`);
      log(`  ${name}: ${outcome} in ${Math.round(elapsed)} ms`);
      if (outcome !== "error/timeout") {
        problems.push(`${name} ended ${outcome}, expected a timeout`);
      }
      if (elapsed > TIME_LIMIT_MS + GRACE_MS + ATTACK_SLACK_MS) {
        problems.push(`${name} held its engine for ${Math.round(elapsed)} ms`);
      }
    }
    figures["attacks"] = attacks.length;
    figures["outcomes"] = outcomes.join("; ");
    figures["slowest attack answer (POST /task) vs limit + grace"] = `${Math.round(worst)} ms vs ${
      TIME_LIMIT_MS + GRACE_MS
    } ms`;
    upstream.release("calm", 41);
    const calmDone = await srv.waitForTask(calm.id);
    if (calmDone.status !== "completed" || calmDone.result !== 42) {
      problems.push(`the calm task ended ${JSON.stringify(calmDone)}`);
    }
  } finally {
    await srv.close();
  }
}

/** More paused VMs of ~40 MiB each than `LIVE_VM_MB` holds; all complete afterwards. */
async function fillMemory(
  options: ScenarioOptions,
  upstream: Upstream,
  problems: string[],
  figures: Record<string, string | number>,
): Promise<void> {
  const srv = await startChaosServer({
    label: "isolation-memory",
    env: { LIVE_VM_MB: String(LIVE_VM_MB), WORKERS: "2" },
  });
  let peakRss = 0;
  let sampling = true;
  let sampler: Promise<void> = Promise.resolve();
  try {
    const pid = srv.pid!;
    const idleRss = await treeRss(pid);
    figures["RSS idle (server and engines)"] = mib(idleRss);
    sampler = (async () => {
      while (sampling) {
        peakRss = Math.max(peakRss, await treeRss(pid));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const count = options.short ? 6 : 12;
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const task = await srv.createTask({
        // 40 strings of 1 MiB (one long `repeat` is itself a built-in the limit cannot stop).
        code: `let a = []; for (let i = 0; i < 40; i++) a.push("x".repeat(1 << 20) + i); a = null;
const r = await fetch(${JSON.stringify(upstream.url(`/hold/big-${i}`))});
(await r.json()).value * 2`,
      });
      if (task.status !== "paused") problems.push(`big task ${i} is ${task.status}`);
      ids.push(task.id);
    }
    const metrics = (await srv.request("/metrics")).text;
    const liveBytes = Number(/^flowstate_live_vm_bytes (\d+)/m.exec(metrics)?.[1] ?? NaN);
    figures["paused VMs, ~40 MiB each"] = count;
    figures["live VM bytes vs LIVE_VM_MB"] = `${mib(liveBytes)} vs ${LIVE_VM_MB} MiB`;
    if (!(liveBytes <= LIVE_VM_MB * 1024 * 1024)) {
      problems.push(`live VMs hold ${liveBytes} bytes, over LIVE_VM_MB=${LIVE_VM_MB}`);
    }
    for (let i = 0; i < count; i++) upstream.release(`big-${i}`, i);
    for (const [i, id] of ids.entries()) {
      const done = await srv.waitForTask(id);
      if (done.status !== "completed" || done.result !== i * 2) {
        problems.push(`big task ${i} ended ${JSON.stringify(done)}`);
      }
    }
    sampling = false;
    await sampler;
    figures["peak RSS (server and engines) vs idle + LIVE_VM_MB"] = `${mib(peakRss)} vs ${
      mib(idleRss + LIVE_VM_MB * 1024 * 1024)
    }`;
  } finally {
    sampling = false;
    await sampler;
    await srv.close();
  }
}
