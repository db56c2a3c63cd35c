/**
 * Scenario 1, engine hot resume: the cost of one fetch when the task's VM stays live.
 *
 * The guest runs a loop of N awaited fetches; the host answers each with
 * `vm.deliver(response)` (the server's hot path) or `vm.resume(state, response)`, timing
 * every call. Baseline, interleaved round by round: a native async function doing the same
 * loop over already-resolved promises. A third path sends each response through the
 * server's `WorkerPool` (an engine process, JSON frames over its stdin and stdout), which adds the
 * messaging cost the server pays on every hot resume. A fourth runs tasks shaped like the
 * end-to-end ones (5 fetches, a fresh VM per task) through the pool, as the server does.
 * Beside them, VM creation alone: copied from the build's image (the default) against the
 * long way, a new runtime and context with the prelude evaluated.
 *
 * @module
 */
import { WorkerPool } from "../lib/service/executor.ts";
import { FetchVM } from "../lib/engine/fetch_vm.ts";
import { createLiveVM, disposeLiveVM } from "../lib/engine/live_vm.ts";
import { HostCalls } from "../lib/engine/host_calls.ts";
import { entropyKey, randomEntropy } from "../lib/engine/vm_state.ts";
import type { FetchResponse, Variant } from "../lib/engine/types.ts";
import type { BenchContext } from "./context.ts";
import { E2E_CODE } from "./end_to_end.ts";
import { formatMs, type Row, type ScenarioResult } from "./report.ts";
import { median, summarize } from "./stats.ts";

const VARIANTS: readonly Variant[] = ["asyncify", "sync"];

/** The guest: N sequential fetches, each body read as JSON. */
export function loopCode(n: number, url = "http://127.0.0.1/item"): string {
  return [
    "let sum = 0;",
    `for (let i = 0; i < ${n}; i++) {`,
    `  const response = await fetch("${url}?i=" + i);`,
    "  const body = await response.json();",
    "  sum += body.n;",
    "}",
    "sum",
  ].join("\n");
}

/** The response the host delivers for fetch `i`: a small JSON document. */
export function fetchResponse(id: string, i: number): FetchResponse {
  return {
    id,
    success: true,
    status: 200,
    statusText: "OK",
    headers: { "content-type": "application/json" },
    data: { n: i, ok: true, source: "upstream", tags: ["a", "b", "c"] },
    url: `http://127.0.0.1/item?i=${i}`,
    timestamp: Date.now(),
  };
}

/** Runs the loop on one live VM, timing every delivery (ms) into `times[i]`. */
async function vmRun(
  variant: Variant,
  n: number,
  mode: "deliver" | "resume",
  times: number[][],
): Promise<void> {
  const vm = new FetchVM({ variant });
  try {
    let result = await vm.execute(loopCode(n));
    for (let i = 0; i < n; i++) {
      if (result.type !== "paused") throw new Error(`Expected a pause at fetch ${i}`);
      const response = fetchResponse(result.fetchRequest!.id, i);
      const start = performance.now();
      result = mode === "deliver"
        ? await vm.deliver(response)
        : await vm.resume(result.state!, response);
      (times[i] ??= []).push(performance.now() - start);
    }
    if (result.type !== "completed" || result.result !== (n * (n - 1)) / 2) {
      throw new Error(`The guest loop ended with ${JSON.stringify(result.result)}`);
    }
  } finally {
    vm.dispose();
  }
}

/** The baseline: the same loop natively, over already-resolved promises. */
async function nativeRun(n: number, times: number[]): Promise<void> {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    const data = { n: i, ok: true, source: "upstream", tags: ["a", "b", "c"] };
    const response = await Promise.resolve({ status: 200, json: () => Promise.resolve(data) });
    const body = await response.json();
    sum += body.n;
    times.push(performance.now() - start);
  }
  if (sum !== (n * (n - 1)) / 2) throw new Error("The native loop miscounted");
}

/** Runs the loop through the server's engine pool: a frame to an engine process and back. */
async function poolRun(pool: WorkerPool, variant: Variant, n: number, times: number[]) {
  const taskId = `hot-${crypto.randomUUID()}`;
  const options = { variant };
  let outcome = await pool.execute(taskId, loopCode(n), options);
  let journalLength = 0;
  for (let i = 0; i < n; i++) {
    if (!outcome.ok || outcome.type !== "paused") {
      throw new Error(`The pooled loop did not pause at fetch ${i}: ${JSON.stringify(outcome)}`);
    }
    journalLength += outcome.newJournal.length;
    const response = fetchResponse(outcome.pending[0]!.id, i);
    const start = performance.now();
    outcome = await pool.resume(
      taskId,
      journalLength,
      { type: "response", response },
      () => Promise.reject(new Error("The live VM was lost: a cold resume happened")),
      options,
    );
    times.push(performance.now() - start);
  }
  if (!outcome.ok || outcome.type !== "completed") {
    throw new Error(`The pooled loop did not complete: ${JSON.stringify(outcome)}`);
  }
}

/** Creates and frees `count` VMs, timing each creation (ms) into `times`. */
async function vmCreation(
  variant: Variant,
  fromImage: boolean,
  count: number,
  times: number[],
): Promise<void> {
  const calls = new HostCalls(entropyKey(randomEntropy()));
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    const live = await createLiveVM({
      variant,
      fromImage,
      memoryLimitBytes: 64 * 1024 * 1024,
      maxStackBytes: 256 * 1024,
      shouldInterrupt: () => false,
      taskId: `create-${i}`,
      seed: i,
      host: {
        record: () => "",
        abortRequest: () => {},
        log: () => {},
        setTimer: () => 0,
        clearTimer: () => {},
        calls,
      },
    });
    times.push(performance.now() - start);
    disposeLiveVM(live);
  }
}

/**
 * Runs tasks shaped like the end-to-end ones (5 fetches, a fresh VM each, `input` global)
 * through the worker pool, as the server does: the first segment creates the VM.
 */
async function poolTasks(
  pool: WorkerPool,
  variant: Variant,
  tasks: number,
  first: number[],
  delivers: number[],
): Promise<void> {
  for (let t = 0; t < tasks; t++) {
    const taskId = `task-${crypto.randomUUID()}`;
    const options = { variant, globals: { input: { base: "http://127.0.0.1:9", key: taskId } } };
    let start = performance.now();
    let outcome = await pool.execute(taskId, E2E_CODE, options);
    first.push(performance.now() - start);
    let journalLength = 0;
    for (let i = 0; outcome.ok && outcome.type === "paused"; i++) {
      journalLength += outcome.newJournal.length;
      const response = fetchResponse(outcome.pending[0]!.id, i);
      start = performance.now();
      outcome = await pool.resume(
        taskId,
        journalLength,
        { type: "response", response },
        () => Promise.reject(new Error("The live VM was lost: a cold resume happened")),
        options,
      );
      delivers.push(performance.now() - start);
    }
    if (!outcome.ok || outcome.type !== "completed" || outcome.result !== 10) {
      throw new Error(`A pooled task did not complete: ${JSON.stringify(outcome)}`);
    }
  }
}

/** Runs scenario 1. */
export async function engineHot(ctx: BenchContext): Promise<ScenarioResult> {
  const n = ctx.quick ? 200 : 1000;
  const rounds = ctx.quick ? 2 : 5;
  const deliver: Record<Variant, number[][]> = { asyncify: [], sync: [] };
  const resume: Record<Variant, number[][]> = { asyncify: [], sync: [] };
  const pooled: Record<Variant, number[]> = { asyncify: [], sync: [] };
  const native: number[] = [];
  const taskFirst: Record<Variant, number[]> = { asyncify: [], sync: [] };
  const taskDeliver: Record<Variant, number[]> = { asyncify: [], sync: [] };
  const tasksPerRound = ctx.quick ? 20 : 60;
  const created: Record<Variant, { image: number[]; prelude: number[] }> = {
    asyncify: { image: [], prelude: [] },
    sync: { image: [], prelude: [] },
  };
  const createsPerRound = ctx.quick ? 50 : 200;

  // Warm-up: compile the WebAssembly modules and JIT the host paths; not measured.
  for (const variant of VARIANTS) {
    await vmRun(variant, 300, "deliver", []);
    await vmCreation(variant, true, 20, []);
    await vmCreation(variant, false, 20, []);
  }
  await nativeRun(1000, []);

  const pool = new WorkerPool({ size: 1, liveVms: 256, timeLimitMs: 5_000, graceMs: 1_000 });
  try {
    for (const variant of VARIANTS) {
      await poolRun(pool, variant, 100, []);
      await poolTasks(pool, variant, 10, [], []);
    }
    for (let round = 0; round < rounds; round++) {
      ctx.progress(`engine hot resume: round ${round + 1}/${rounds}`);
      const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const variant of order) {
        await nativeRun(n, native);
        await vmRun(variant, n, "deliver", deliver[variant]);
        await nativeRun(n, native);
        await vmRun(variant, n, "resume", resume[variant]);
        await nativeRun(n, native);
        await poolRun(pool, variant, n, pooled[variant]);
        await nativeRun(n, native);
        await poolTasks(pool, variant, tasksPerRound, taskFirst[variant], taskDeliver[variant]);
        await vmCreation(variant, true, createsPerRound, created[variant].image);
        await vmCreation(variant, false, createsPerRound, created[variant].prelude);
      }
    }
  } finally {
    await pool.close();
  }

  const nativeSummary = summarize(native);
  const rows: Row[] = [];
  const metrics: Record<string, number> = { nativeMedianMs: nativeSummary.median };
  const notes: string[] = [];
  const raw: Record<string, unknown> = { fetchesPerRun: n, rounds, native: nativeSummary };
  for (const variant of VARIANTS) {
    const all = deliver[variant].flat();
    const viaResume = resume[variant].flat();
    const deliverSummary = summarize(all);
    const poolSummary = summarize(pooled[variant]);
    rows.push(
      {
        case: `${variant}: vm.deliver(response)`,
        unit: "ms",
        subject: deliverSummary,
        baselineLabel: "native await",
        baseline: nativeSummary,
      },
      {
        case: `${variant}: vm.resume(state, response)`,
        unit: "ms",
        subject: summarize(viaResume),
        baselineLabel: "native await",
        baseline: nativeSummary,
      },
      {
        case: `${variant}: through the WorkerPool (engine process)`,
        unit: "ms",
        subject: poolSummary,
        baselineLabel: "native await",
        baseline: nativeSummary,
      },
    );
    const taskDeliverSummary = summarize(taskDeliver[variant]);
    const taskFirstSummary = summarize(taskFirst[variant]);
    rows.push(
      {
        case: `${variant}: 5-fetch tasks, fresh VM each, WorkerPool: per fetch`,
        unit: "ms",
        subject: taskDeliverSummary,
        baselineLabel: "native await",
        baseline: nativeSummary,
      },
      {
        case: `${variant}: 5-fetch tasks: first segment (VM creation included)`,
        unit: "ms",
        subject: taskFirstSummary,
      },
    );
    const fromImage = summarize(created[variant].image);
    const fromPrelude = summarize(created[variant].prelude);
    rows.push({
      case: `${variant}: VM creation, copied from the image`,
      unit: "ms",
      subject: fromImage,
      baselineLabel: "prelude evaluated",
      baseline: fromPrelude,
    });
    metrics[`${variant}.vmCreateImageMedianMs`] = fromImage.median;
    metrics[`${variant}.vmCreatePreludeMedianMs`] = fromPrelude.median;
    metrics[`${variant}.taskDeliverMedianMs`] = taskDeliverSummary.median;
    metrics[`${variant}.taskFirstMedianMs`] = taskFirstSummary.median;
    metrics[`${variant}.taskEngineMsPerFetch`] =
      (taskFirstSummary.mean + 5 * taskDeliverSummary.mean) / 5;
    const tenth = Math.max(1, Math.floor(n / 10));
    const early = median(deliver[variant].slice(0, tenth).flat());
    const late = median(deliver[variant].slice(n - tenth).flat());
    metrics[`${variant}.deliverMedianMs`] = deliverSummary.median;
    metrics[`${variant}.deliverP99Ms`] = deliverSummary.p99;
    metrics[`${variant}.overheadMedianMs`] = deliverSummary.median - nativeSummary.median;
    metrics[`${variant}.poolMedianMs`] = poolSummary.median;
    metrics[`${variant}.messagingMedianMs`] = poolSummary.median - deliverSummary.median;
    metrics[`${variant}.earlyMedianMs`] = early;
    metrics[`${variant}.lateMedianMs`] = late;
    raw[variant] = {
      deliver: deliverSummary,
      resume: summarize(viaResume),
      pool: poolSummary,
      taskDeliver: taskDeliverSummary,
      taskFirst: taskFirstSummary,
      vmCreateImage: fromImage,
      vmCreatePrelude: fromPrelude,
      deliverByTenth: Array.from(
        { length: 10 },
        (_, k) => median(deliver[variant].slice(k * tenth, (k + 1) * tenth).flat()),
      ),
    };
    notes.push(
      `${variant}: deliver median ${formatMs(early)} over fetches 1–${tenth}, ` +
        `${formatMs(late)} over fetches ${n - tenth + 1}–${n}.`,
    );
  }
  notes.unshift(
    `${rounds} rounds × ${n} fetches per case and ${tasksPerRound} 5-fetch tasks; VM, ` +
      "native and pool runs interleaved. Each figure is one fetch: deliver, run to the next " +
      "pause, build the paused state.",
  );
  return { id: 1, key: "engine_hot", title: "Engine hot resume", rows, notes, metrics, raw };
}
