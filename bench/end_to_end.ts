/**
 * Scenario 4, end to end: tasks of 5 sequential fetches through the real server (auto
 * fetch, self-POST to `/call`, durable writes) at concurrency 1, 16 and 64, with fsync on
 * (the default) and off, against the same 5 fetches done directly by this Deno process.
 * Batches run interleaved: direct, fsync on, fsync off, rotated each round.
 *
 * Per-fetch latency is measured where the fetches land: the upstream records when each
 * fetch of a task arrives, and the gap between two consecutive arrivals is one full fetch
 * cycle (response → server → self-POST → engine → save → next outbound fetch; or, for the
 * baseline, response → client → next fetch). Task wall time / 5 is measured by the driver.
 *
 * The server's own request log gives the time spent handling each `/call`, and `/proc`
 * gives the server's CPU time per fetch cycle by thread kind; both feed the cost breakdown.
 *
 * @module
 */
import { type BenchContext, tempDir } from "./context.ts";
import { cpuDelta, cpuPer, type ThreadCpu, threadCpu } from "./proc.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { getJson, postJson, type TaskViewLite } from "./client.ts";
import { type ServerProcess, startServer } from "../testing/server_process.ts";
import { median, summarize } from "./stats.ts";
import type { SpawnedUpstream as Upstream } from "../testing/upstream.ts";

const FETCHES = 5;
const CONCURRENCY = [1, 16, 64] as const;

/** The task: 5 sequential fetches to the upstream; the result is 0+1+2+3+4 = 10. */
export const E2E_CODE = [
  "let sum = 0;",
  `for (let i = 0; i < ${FETCHES}; i++) {`,
  '  const response = await fetch(input.base + "/x?k=" + input.key + "&i=" + i);',
  "  const body = await response.json();",
  "  sum += body.n;",
  "}",
  "sum",
].join("\n");
const EXPECTED = (FETCHES * (FETCHES - 1)) / 2;

type Mode = "direct" | "fsync-on" | "fsync-off";
const MODES: readonly Mode[] = ["direct", "fsync-on", "fsync-off"];

/** The figures of one batch. */
interface Batch {
  mode: Mode;
  concurrency: number;
  tasks: number;
  wallMs: number;
  /** Gaps between consecutive fetch arrivals of one task at the upstream, ms. */
  gaps: number[];
  /** Task wall time / 5, ms. */
  perFetchWall: number[];
  /** Server only: `/call` handling times from its request log, ms. */
  callMs: number[];
  /** Server only: CPU time of the server process during the batch, ms. */
  cpu?: ThreadCpu;
  /** Baseline only: CPU time of this process during the batch, ms. */
  clientCpuMs?: number;
  /** CPU time of the upstream process during the batch, ms. */
  upstreamCpuMs: number;
  errors: number;
}

/**
 * A server under test, with what its log reports: `/call` handling times while
 * collecting, and the end of each task (the driver learns of completions from the log, so
 * it adds no polling load to the server).
 */
interface LoggedServer {
  server: ServerProcess;
  collect: number[] | null;
  onTaskEnd: ((taskId: string, status: string) => void) | null;
}

function onServerLine(target: LoggedServer): (line: string) => void {
  return (line) => {
    const isCall = line.includes('"path":"/call"');
    const isEnd = line.includes('"msg":"task completed"') || line.includes('"msg":"task error"');
    if (!isCall && !isEnd) return;
    try {
      const entry = JSON.parse(line) as { msg?: string; durationMs?: number; taskId?: string };
      if (isCall && target.collect && entry.msg === "request") {
        if (typeof entry.durationMs === "number") target.collect.push(entry.durationMs);
      } else if (isEnd && typeof entry.taskId === "string") {
        target.onTaskEnd?.(entry.taskId, entry.msg!.slice("task ".length));
      }
    } catch {
      // Not a log line.
    }
  };
}

function gapsOf(arrivals: Record<string, number[]>): number[] {
  const gaps: number[] = [];
  for (const times of Object.values(arrivals)) {
    for (let i = 1; i < times.length; i++) gaps.push(times[i]! - times[i - 1]!);
  }
  return gaps;
}

async function runDirect(
  upstream: Upstream,
  label: string,
  concurrency: number,
  tasks: number,
): Promise<Batch> {
  const perFetchWall: number[] = [];
  let next = 0;
  const cpuBefore = threadCpu("self").total;
  const upBefore = threadCpu(upstream.pid).total;
  const start = performance.now();
  const worker = async () => {
    while (next < tasks) {
      const key = `${label}-${next++}`;
      const taskStart = performance.now();
      let sum = 0;
      for (let i = 0; i < FETCHES; i++) {
        const response = await fetch(`${upstream.origin}/x?k=${key}&i=${i}`);
        const body = await response.json() as { n: number };
        sum += body.n;
      }
      if (sum !== EXPECTED) throw new Error(`Direct task ${key} summed ${sum}`);
      perFetchWall.push((performance.now() - taskStart) / FETCHES);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallMs = performance.now() - start;
  const clientCpuMs = threadCpu("self").total - cpuBefore;
  const upstreamCpuMs = threadCpu(upstream.pid).total - upBefore;
  const gaps = gapsOf(await upstream.arrivals(`${label}-`));
  return {
    mode: "direct",
    concurrency,
    tasks,
    wallMs,
    gaps,
    perFetchWall,
    callMs: [],
    clientCpuMs,
    upstreamCpuMs,
    errors: 0,
  };
}

async function runServer(
  target: LoggedServer,
  mode: Mode,
  upstream: Upstream,
  label: string,
  concurrency: number,
  tasks: number,
): Promise<Batch> {
  const { server } = target;
  const launchedAt = new Map<string, number>();
  const perFetchWall: number[] = [];
  let launched = 0;
  let finished = 0;
  let errors = 0;
  let allDone!: () => void;
  const done = new Promise<void>((resolve) => allDone = resolve);
  const finish = () => {
    finished++;
    if (finished === tasks) allDone();
    else launch();
  };
  const launch = () => {
    while (launched - finished < concurrency && launched < tasks) {
      const key = `${label}-${launched++}`;
      launchedAt.set(key, performance.now());
      postJson(`${server.origin}/task`, {
        id: key,
        code: E2E_CODE,
        input: { base: upstream.origin, key },
      }).catch(() => {
        errors++;
        finish();
      });
    }
  };
  target.onTaskEnd = (taskId, status) => {
    const start = launchedAt.get(taskId);
    if (start === undefined) return;
    launchedAt.delete(taskId);
    if (status === "completed") perFetchWall.push((performance.now() - start) / FETCHES);
    else errors++;
    finish();
  };
  const callMs: number[] = [];
  target.collect = callMs;
  const cpuBefore = threadCpu(server.pid!);
  const upBefore = threadCpu(upstream.pid).total;
  const start = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${label}: only ${finished} of ${tasks} tasks finished in time`)),
      300_000,
    );
  });
  try {
    launch();
    await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
    target.onTaskEnd = null;
    target.collect = null;
  }
  const wallMs = performance.now() - start;
  const cpu = cpuDelta(cpuBefore, threadCpu(server.pid!));
  const upstreamCpuMs = threadCpu(upstream.pid).total - upBefore;

  const { tasks: views } = await getJson<{ tasks: TaskViewLite[] }>(
    `${server.origin}/status?status=completed&limit=10000`,
  );
  for (const view of views) {
    if (view.id.startsWith(`${label}-`) && view.result !== EXPECTED) errors++;
  }
  const gaps = gapsOf(await upstream.arrivals(`${label}-`));
  return {
    mode,
    concurrency,
    tasks,
    wallMs,
    gaps,
    perFetchWall,
    callMs,
    cpu,
    upstreamCpuMs,
    errors,
  };
}

/** Runs scenario 4. */
export async function endToEnd(ctx: BenchContext): Promise<ScenarioResult> {
  const rounds = ctx.quick ? 1 : 2;
  const tasksFor: Record<number, number> = ctx.quick
    ? { 1: 10, 16: 32, 64: 64 }
    : { 1: 50, 16: 320, 64: 640 };
  const servers: Partial<Record<Mode, LoggedServer>> = {};
  const batches: Batch[] = [];
  try {
    for (const mode of ["fsync-on", "fsync-off"] as const) {
      const target: LoggedServer = {
        server: undefined as unknown as ServerProcess,
        collect: null,
        onTaskEnd: null,
      };
      target.server = await startServer({
        statesDir: await tempDir(ctx, `e2e-${mode}`),
        env: { FSYNC: mode === "fsync-on" ? "true" : "false" },
        onLine: onServerLine(target),
      });
      servers[mode] = target;
    }
    // Warm-up: a few tasks through each path, not measured.
    await runDirect(ctx.upstream, "warm-direct", 4, 8);
    for (const mode of ["fsync-on", "fsync-off"] as const) {
      await runServer(servers[mode]!, mode, ctx.upstream, `warm-${mode}`, 4, 8);
    }
    for (let round = 0; round < rounds; round++) {
      for (const concurrency of CONCURRENCY) {
        const shift = (round + CONCURRENCY.indexOf(concurrency)) % MODES.length;
        const order = [...MODES.slice(shift), ...MODES.slice(0, shift)];
        for (const mode of order) {
          const label = `e2e-r${round}-c${concurrency}-${mode}`;
          ctx.progress(`end to end: round ${round + 1}/${rounds}, c=${concurrency}, ${mode}`);
          const tasks = tasksFor[concurrency]!;
          batches.push(
            mode === "direct"
              ? await runDirect(ctx.upstream, label, concurrency, tasks)
              : await runServer(servers[mode]!, mode, ctx.upstream, label, concurrency, tasks),
          );
        }
      }
    }
  } finally {
    for (const target of Object.values(servers)) await target?.server.close({ graceMs: 10_000 });
  }

  const rows: Row[] = [];
  const metrics: Record<string, number> = {};
  const raw: Record<string, unknown> = { rounds, tasksFor };
  const pick = (mode: Mode, c: number) =>
    batches.filter((b) => b.mode === mode && b.concurrency === c);
  let errors = 0;
  for (const concurrency of CONCURRENCY) {
    const direct = pick("direct", concurrency);
    const directGaps = summarize(direct.flatMap((b) => b.gaps));
    const directWall = summarize(direct.flatMap((b) => b.perFetchWall));
    const rate = (bs: Batch[]) => bs.map((b) => (b.tasks * FETCHES) / (b.wallMs / 1000));
    const directRate = summarize(rate(direct));
    metrics[`direct.c${concurrency}.gapMedianMs`] = directGaps.median;
    metrics[`direct.c${concurrency}.cyclesPerSecond`] = directRate.median;
    for (const mode of ["fsync-on", "fsync-off"] as const) {
      const bs = pick(mode, concurrency);
      errors += bs.reduce((n, b) => n + b.errors, 0);
      const gaps = summarize(bs.flatMap((b) => b.gaps));
      const wall = summarize(bs.flatMap((b) => b.perFetchWall));
      const cycles = summarize(rate(bs));
      const tag = `c=${concurrency}, ${mode}`;
      rows.push(
        {
          case: `${tag}: per-fetch latency (upstream arrivals)`,
          unit: "ms",
          subject: gaps,
          baselineLabel: "direct fetch",
          baseline: directGaps,
        },
        {
          case: `${tag}: task wall time / 5`,
          unit: "ms",
          subject: wall,
          baselineLabel: "direct fetch",
          baseline: directWall,
        },
        {
          case: `${tag}: fetch cycles/s`,
          unit: "per_s",
          subject: cycles,
          baselineLabel: "direct fetch",
          baseline: directRate,
        },
        {
          case: `${tag}: tasks/s`,
          unit: "per_s",
          subject: summarize(rate(bs).map((r) => r / FETCHES)),
          baselineLabel: "direct fetch",
          baseline: summarize(rate(direct).map((r) => r / FETCHES)),
        },
      );
      const key = `${mode}.c${concurrency}`;
      const cycleCount = bs.reduce((n, b) => n + b.tasks * FETCHES, 0);
      const cpu = bs.reduce<ThreadCpu | null>(
        (sum, b) =>
          sum
            ? {
              main: sum.main + b.cpu!.main,
              workers: sum.workers + b.cpu!.workers,
              v8: sum.v8 + b.cpu!.v8,
              io: sum.io + b.cpu!.io,
              other: sum.other + b.cpu!.other,
              total: sum.total + b.cpu!.total,
            }
            : { ...b.cpu! },
        null,
      )!;
      const cpuPerCycle = cpuPer(cpu, cycleCount);
      const upstreamPerCycle = bs.reduce((n, b) => n + b.upstreamCpuMs, 0) / cycleCount;
      metrics[`${key}.gapMedianMs`] = gaps.median;
      metrics[`${key}.gapP99Ms`] = gaps.p99;
      metrics[`${key}.wallMedianMs`] = wall.median;
      metrics[`${key}.cyclesPerSecond`] = cycles.median;
      metrics[`${key}.overheadMedianMs`] = gaps.median - directGaps.median;
      metrics[`${key}.callMedianMs`] = median(bs.flatMap((b) => b.callMs));
      metrics[`${key}.cpuMainPerCycleMs`] = cpuPerCycle.main;
      metrics[`${key}.cpuWorkersPerCycleMs`] = cpuPerCycle.workers;
      metrics[`${key}.cpuV8PerCycleMs`] = cpuPerCycle.v8;
      metrics[`${key}.cpuIoPerCycleMs`] = cpuPerCycle.io;
      metrics[`${key}.cpuOtherPerCycleMs`] = cpuPerCycle.other;
      metrics[`${key}.cpuTotalPerCycleMs`] = cpuPerCycle.total;
      metrics[`${key}.upstreamCpuPerCycleMs`] = upstreamPerCycle;
      raw[key] = {
        gaps,
        wall,
        cycles,
        call: summarize(bs.flatMap((b) => b.callMs)),
        cpuPerCycle,
        upstreamCpuPerCycleMs: upstreamPerCycle,
      };
    }
    const directCycles = direct.reduce((n, b) => n + b.tasks * FETCHES, 0);
    metrics[`direct.c${concurrency}.clientCpuPerCycleMs`] = direct.reduce((n, b) =>
      n + b.clientCpuMs!, 0) / directCycles;
    metrics[`direct.c${concurrency}.upstreamCpuPerCycleMs`] = direct.reduce((n, b) =>
      n + b.upstreamCpuMs, 0) / directCycles;
    raw[`direct.c${concurrency}`] = { gaps: directGaps, wall: directWall, cycles: directRate };
  }
  metrics.errors = errors;
  raw.batches = batches.map(({ gaps, perFetchWall, callMs, ...rest }) => ({
    ...rest,
    gaps: summarize(gaps),
    perFetchWall: summarize(perFetchWall),
    call: summarize(callMs),
  }));
  const best = Math.max(...CONCURRENCY.map((c) => metrics[`fsync-on.c${c}.cyclesPerSecond`]!));
  metrics["fsync-on.bestCyclesPerSecond"] = best;
  const notes = [
    `${rounds} round(s); tasks per batch: ${
      CONCURRENCY.map((c) => `c=${c}: ${tasksFor[c]}`).join(", ")
    }; batches interleaved (direct, fsync on, fsync off, order rotated).`,
    "Per-fetch latency: gap between consecutive arrivals of one task's fetches at the " +
    "upstream. Task wall time: from sending POST /task (server) or the first fetch " +
    "(direct) to the task's end, as seen by the driver; the driver learns that a server " +
    "task ended from the server's log (default LOG_LEVEL=info), so it adds no requests.",
    "Rates: batch fetch cycles (or tasks) / batch wall time.",
    `Tasks that did not complete with the expected result: ${errors}.`,
  ];
  return {
    id: 4,
    key: "end_to_end",
    title: "End to end (5 sequential fetches per task)",
    rows,
    notes,
    metrics,
    raw,
  };
}
