/**
 * Scenario 8, durable timers.
 *
 * - Sleeping tasks: the real server holds N tasks, each sleeping an hour
 *   (`FlowState.sleep`); the RSS of the server and its engine processes is read before and
 *   after, and their CPU time (every thread) over an idle window while they all sleep. A sleeping task keeps no live VM, and the
 *   server has one host timer for all of them.
 * - Zero-delay timers: in one VM, the cost of a `setTimeout(fn, 0)` set in a loop (1,000 of
 *   them, minus the same code without timers) and of a chained
 *   `await new Promise((r) => setTimeout(r, 0))`; baseline: the same loops in plain Deno.
 * - End to end: `POST /task?wait` of a task setting 1,000 `setTimeout(fn, 0)` in a loop,
 *   with fsync on: one segment and one save.
 *
 * @module
 */
import { FetchVM } from "../lib/engine/fetch_vm.ts";
import type { BenchContext } from "./context.ts";
import { tempDir } from "./context.ts";
import { treeCpu, treeCpuDelta, treeRss } from "./proc.ts";
import { formatBytes, formatMs, type Row, type ScenarioResult } from "./report.ts";
import { getJson, type Health, postJson, type TaskViewLite } from "./client.ts";
import { delay as sleep, startServer } from "../testing/server_process.ts";
import { single, summarize } from "./stats.ts";

/** Timers per zero-delay measurement. */
const TIMERS = 1000;

const LOOP_CODE = (n: number) =>
  `let fired = 0;\nfor (let i = 0; i < ${n}; i++) setTimeout(() => fired++, 0);\n` +
  `await new Promise((resolve) => setTimeout(resolve, 0));\nfired`;
const CHAIN_CODE = (n: number) =>
  `for (let i = 0; i < ${n}; i++) await new Promise((resolve) => setTimeout(resolve, 0));\n${n}`;

/** Runs `code` to completion in one fresh VM; returns the time the first segment took, ms. */
async function timeVm(code: string): Promise<number> {
  using vm = new FetchVM({ variant: "sync" });
  await vm.initialize();
  const start = performance.now();
  const result = await vm.execute(code);
  const ms = performance.now() - start;
  if (result.type !== "completed") throw new Error(`Timer code did not complete: ${code}`);
  return ms;
}

/** The same loops in plain Deno, ms. */
async function timeNative(chained: boolean): Promise<number> {
  const start = performance.now();
  if (chained) {
    for (let i = 0; i < TIMERS; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  } else {
    let fired = 0;
    for (let i = 0; i < TIMERS; i++) setTimeout(() => fired++, 0);
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (fired !== TIMERS) throw new Error(`Native loop fired ${fired}`);
  }
  return performance.now() - start;
}

/** Runs scenario 8. */
export async function timers(ctx: BenchContext): Promise<ScenarioResult> {
  const rows: Row[] = [];
  const metrics: Record<string, number> = {};
  const notes: string[] = [];

  // Zero-delay timers in the engine.
  const rounds = ctx.quick ? 3 : 10;
  const loop: number[] = [];
  const chain: number[] = [];
  const nativeLoop: number[] = [];
  const nativeChain: number[] = [];
  await timeVm(LOOP_CODE(10)); // Warm-up.
  for (let i = 0; i < rounds; i++) {
    ctx.progress(`timers: zero-delay round ${i + 1}/${rounds}`);
    const empty = await timeVm(LOOP_CODE(0));
    loop.push((await timeVm(LOOP_CODE(TIMERS)) - empty) / TIMERS);
    chain.push((await timeVm(CHAIN_CODE(TIMERS)) - empty) / TIMERS);
    nativeLoop.push(await timeNative(false) / TIMERS);
    nativeChain.push(await timeNative(true) / TIMERS);
  }
  const loopS = summarize(loop);
  const chainS = summarize(chain);
  rows.push(
    {
      case: `engine: one setTimeout(fn, 0) of ${TIMERS} set in a loop`,
      unit: "ms",
      subject: loopS,
      baselineLabel: "plain Deno",
      baseline: summarize(nativeLoop),
    },
    {
      case: `engine: one chained await setTimeout(0) (${TIMERS} in a row)`,
      unit: "ms",
      subject: chainS,
      baselineLabel: "plain Deno",
      baseline: summarize(nativeChain),
    },
  );
  metrics["zeroDelay.loopPerTimerMs"] = loopS.median;
  metrics["zeroDelay.chainPerTimerMs"] = chainS.median;

  // The server: a task of 1,000 zero-delay timers, fsync on.
  const e2e: number[] = [];
  {
    const server = await startServer({ statesDir: await tempDir(ctx, "timers-e2e") });
    try {
      for (let i = 0; i < rounds; i++) {
        const start = performance.now();
        const { task } = await postJson<{ task: TaskViewLite }>(`${server.origin}/task`, {
          code: LOOP_CODE(TIMERS),
          wait: 30_000,
        });
        e2e.push(performance.now() - start);
        if (task.status !== "completed" || task.result !== TIMERS) {
          throw new Error(`The timer task ended ${JSON.stringify(task)}`);
        }
      }
    } finally {
      await server.close({ graceMs: 10_000 });
    }
  }
  const e2eS = summarize(e2e);
  rows.push({
    case: `server: POST /task to completed, ${TIMERS} setTimeout(fn, 0) in a loop (fsync on)`,
    unit: "ms",
    subject: e2eS,
  });
  metrics["zeroDelay.serverTaskMs"] = e2eS.median;

  // The server holding sleeping tasks.
  const total = ctx.quick ? 500 : 10_000;
  ctx.progress(`timers: server holding ${total} sleeping tasks`);
  const server = await startServer({
    statesDir: await tempDir(ctx, "sleeping"),
    env: { FSYNC: "false" },
  });
  let before: number;
  let after: number;
  let createMs: number;
  let idleCpuMs: number;
  let emptyCpuMs: number;
  const idleMs = ctx.quick ? 2000 : 10_000;
  let health: Health;
  let liveVms = NaN;
  try {
    await sleep(500);
    before = treeRss(server.pid!);
    const emptyBefore = treeCpu(server.pid!);
    await sleep(idleMs);
    emptyCpuMs = treeCpuDelta(emptyBefore, treeCpu(server.pid!));
    let next = 0;
    const start = performance.now();
    const worker = async () => {
      while (next < total) {
        const index = next++;
        const { task } = await postJson<{ task: TaskViewLite }>(`${server.origin}/task`, {
          id: `sleeper-${String(index).padStart(6, "0")}`,
          code: `await FlowState.sleep(3_600_000); "woke"`,
        });
        if (task.status !== "paused") throw new Error(`Task ${task.id} is ${task.status}`);
        if ((index + 1) % 1000 === 0) ctx.progress(`timers: ${index + 1}/${total} sleeping`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    createMs = performance.now() - start;
    await sleep(1000);
    after = treeRss(server.pid!);
    const cpuBefore = treeCpu(server.pid!);
    await sleep(idleMs);
    idleCpuMs = treeCpuDelta(cpuBefore, treeCpu(server.pid!));
    health = await getJson<Health>(`${server.origin}/health`);
    const metricsText = await (await fetch(`${server.origin}/metrics`)).text();
    const live = /^flowstate_live_vms\s+(\d+)/m.exec(metricsText);
    if (live) liveVms = Number(live[1]);
  } finally {
    await server.close({ graceMs: 10_000 });
  }
  if (health.tasks.paused !== total) {
    throw new Error(`The server holds ${health.tasks.paused} sleeping tasks, expected ${total}`);
  }
  rows.push(
    {
      case: `server + engines: RSS holding ${total} sleeping tasks`,
      unit: "bytes",
      subject: single(after),
      baselineLabel: "idle server",
      baseline: single(before),
    },
    {
      case: "server: RSS growth per sleeping task",
      unit: "bytes",
      subject: single((after - before) / total),
    },
    {
      case: `server + engines: CPU while ${total} tasks sleep (ms per s, all threads)`,
      unit: "ms",
      subject: single(idleCpuMs / (idleMs / 1000)),
      baselineLabel: "the same server holding no task",
      baseline: single(emptyCpuMs / (idleMs / 1000)),
    },
  );
  metrics["sleeping.count"] = total;
  metrics["sleeping.perTaskBytes"] = (after - before) / total;
  metrics["sleeping.idleCpuMsPerSecond"] = idleCpuMs / (idleMs / 1000);
  metrics["sleeping.emptyCpuMsPerSecond"] = emptyCpuMs / (idleMs / 1000);
  metrics["sleeping.liveVms"] = liveVms;
  notes.push(
    `Zero-delay timers fire inside the segment that set them (no pause, no save in between); ` +
      `the engine figures use the sync build and subtract the same code without timers. ` +
      `Plain Deno clamps nested timers to 4 ms (the HTML rule); FlowState does not clamp.`,
    `Server: ${total} tasks each in \`await FlowState.sleep(3_600_000)\`, created 16 at a time ` +
      `(FSYNC=false to shorten the setup) at ${(total / (createMs / 1000)).toFixed(0)} tasks/s; ` +
      `RSS ${formatBytes(before)} → ${formatBytes(after)}; live VMs afterwards: ${liveVms}; ` +
      `CPU over ${formatMs(idleMs)} of sleep: ${formatMs(idleCpuMs)}.`,
  );
  return {
    id: 8,
    key: "timers",
    title: "Durable timers: sleeping tasks and zero-delay timers",
    rows,
    notes,
    metrics,
    raw: {
      loop,
      chain,
      nativeLoop,
      nativeChain,
      e2e,
      server: { total, before, after, createMs, idleMs, idleCpuMs, emptyCpuMs, liveVms },
    },
  };
}
