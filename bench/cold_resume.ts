/**
 * Scenario 2, cold resume: `resumeExecution` of a state with 10, 100 and 1,000 recorded
 * fetches in a fresh VM (create the VM, replay the journal, deliver one more response,
 * run to completion, dispose), against the creation of a VM on its own (create,
 * initialize, dispose), interleaved.
 *
 * @module
 */
import { FetchVM, resumeExecution } from "../lib/engine/fetch_vm.ts";
import type { FetchResponse, Variant, VMState } from "../lib/engine/types.ts";
import type { BenchContext } from "./context.ts";
import { fetchResponse, loopCode } from "./engine_hot.ts";
import { formatMs, type Row, type ScenarioResult } from "./report.ts";
import { summarize } from "./stats.ts";

const VARIANTS: readonly Variant[] = ["asyncify", "sync"];
const SIZES = [10, 100, 1000] as const;

interface Prepared {
  /** The paused state as JSON (parsed afresh before each replay, as if read from disk). */
  stateJson: string;
  /** The response to the pending fetch. */
  response: FetchResponse;
  expected: number;
}

/** A state paused at fetch `k + 1` of a `k + 1`-fetch loop: `k` fetches recorded. */
async function prepare(variant: Variant, k: number): Promise<Prepared> {
  const vm = new FetchVM({ variant });
  try {
    let result = await vm.execute(loopCode(k + 1));
    for (let i = 0; i < k; i++) {
      result = await vm.deliver(fetchResponse(result.fetchRequest!.id, i));
    }
    if (result.type !== "paused") throw new Error("Expected a paused state");
    return {
      stateJson: JSON.stringify(result.state),
      response: fetchResponse(result.fetchRequest!.id, k),
      expected: ((k + 1) * k) / 2,
    };
  } finally {
    vm.dispose();
  }
}

async function createOnly(variant: Variant): Promise<number> {
  const start = performance.now();
  const vm = new FetchVM({ variant });
  await vm.initialize();
  vm.dispose();
  return performance.now() - start;
}

async function replay(prepared: Prepared): Promise<number> {
  const state = JSON.parse(prepared.stateJson) as VMState;
  const start = performance.now();
  const result = await resumeExecution(state, prepared.response);
  const elapsed = performance.now() - start;
  if (result.type !== "completed" || result.result !== prepared.expected) {
    throw new Error(`The replayed loop ended with ${JSON.stringify(result.result)}`);
  }
  return elapsed;
}

/** Runs scenario 2. */
export async function coldResume(ctx: BenchContext): Promise<ScenarioResult> {
  const rounds = ctx.quick ? 3 : 10;
  const create: Record<Variant, number[]> = { asyncify: [], sync: [] };
  const replays: Record<string, number[]> = {};
  const prepared = new Map<string, Prepared>();
  for (const variant of VARIANTS) {
    for (const k of SIZES) {
      prepared.set(`${variant}:${k}`, await prepare(variant, k));
      replays[`${variant}:${k}`] = [];
    }
    // Warm-up, not measured.
    await createOnly(variant);
    await replay(prepared.get(`${variant}:10`)!);
  }
  for (let round = 0; round < rounds; round++) {
    ctx.progress(`cold resume: round ${round + 1}/${rounds}`);
    const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
    for (const variant of order) {
      for (const k of SIZES) {
        create[variant].push(await createOnly(variant));
        replays[`${variant}:${k}`]!.push(await replay(prepared.get(`${variant}:${k}`)!));
      }
    }
  }

  const rows: Row[] = [];
  const metrics: Record<string, number> = {};
  const raw: Record<string, unknown> = { rounds };
  const notes = [
    `${rounds} rounds; each replay runs in a fresh VM from a state parsed from JSON, ` +
    "delivers one more response and runs to completion (VM creation and disposal included).",
  ];
  for (const variant of VARIANTS) {
    const base = summarize(create[variant]);
    metrics[`${variant}.createMedianMs`] = base.median;
    raw[`${variant}.create`] = base;
    for (const k of SIZES) {
      const s = summarize(replays[`${variant}:${k}`]!);
      rows.push({
        case: `${variant}: replay ${k} fetches`,
        unit: "ms",
        subject: s,
        baselineLabel: "VM creation",
        baseline: base,
      });
      metrics[`${variant}.replay${k}MedianMs`] = s.median;
      metrics[`${variant}.replay${k}P99Ms`] = s.p99;
      raw[`${variant}.replay${k}`] = s;
    }
    const perFetch = (metrics[`${variant}.replay1000MedianMs`]! - base.median) / 1000;
    metrics[`${variant}.replayPerFetchMs`] = perFetch;
    notes.push(
      `${variant}: replay costs ${formatMs(perFetch)} per recorded fetch beyond creation.`,
    );
  }
  return { id: 2, key: "cold_resume", title: "Cold resume (replay)", rows, notes, metrics, raw };
}
