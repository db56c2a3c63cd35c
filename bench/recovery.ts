/**
 * Scenario 7, recovery: time from starting the server process to `/health` answering 200
 * with 10,000 paused tasks on disk (the memory scenario's states directory), against a
 * start with an empty states directory, alternating.
 *
 * @module
 */
import { type BenchContext, tempDir } from "./context.ts";
import { createPausedTasks, pausedTaskCode } from "./memory.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { getJson, type Health } from "./client.ts";
import { startServer } from "../testing/server_process.ts";
import { summarize } from "./stats.ts";

/** Runs scenario 7. */
export async function recovery(ctx: BenchContext): Promise<ScenarioResult> {
  const rounds = ctx.quick ? 2 : 4;
  let dir = ctx.shared.pausedStatesDir;
  let count = ctx.shared.pausedCount ?? 0;
  if (!dir) {
    // Run on its own: make the paused tasks first.
    count = ctx.quick ? 500 : 10_000;
    dir = await tempDir(ctx, "recovery");
    const server = await startServer({
      statesDir: dir,
      env: { AUTO_FETCH: "false", FSYNC: "false" },
    });
    try {
      await createPausedTasks(
        server.origin,
        pausedTaskCode(ctx.upstream.origin),
        count,
        16,
        (done) => ctx.progress(`recovery: ${done}/${count} paused tasks created`),
      );
    } finally {
      await server.close({ graceMs: 10_000 });
    }
  }
  const emptyDir = await tempDir(ctx, "recovery-empty");
  const full: number[] = [];
  const empty: number[] = [];
  for (let round = 0; round < rounds; round++) {
    ctx.progress(`recovery: round ${round + 1}/${rounds}`);
    for (const which of round % 2 === 0 ? ["empty", "full"] : ["full", "empty"]) {
      const server = await startServer({
        statesDir: which === "full" ? dir : emptyDir,
        env: { AUTO_FETCH: "false" },
      });
      try {
        const health = await getJson<Health>(`${server.origin}/health`);
        const expected = which === "full" ? count : 0;
        if (health.tasks.paused !== expected) {
          throw new Error(`Recovered ${health.tasks.paused} paused tasks, expected ${expected}`);
        }
        (which === "full" ? full : empty).push(server.readyMs);
      } finally {
        await server.close({ graceMs: 10_000 });
      }
    }
  }
  const fullSummary = summarize(full);
  const emptySummary = summarize(empty);
  const rows: Row[] = [{
    case: `process start to /health 200, ${count} paused tasks`,
    unit: "ms",
    subject: fullSummary,
    baselineLabel: "empty states dir",
    baseline: emptySummary,
  }];
  return {
    id: 7,
    key: "recovery",
    title: "Recovery",
    rows,
    notes: [
      `${rounds} starts of each kind, alternating; readiness polled every 5 ms; the time ` +
      "includes starting Deno, loading the modules and spawning the engine workers.",
    ],
    metrics: { count, fullMedianMs: fullSummary.median, emptyMedianMs: emptySummary.median },
    raw: { count, full: fullSummary, empty: emptySummary, rounds },
  };
}
