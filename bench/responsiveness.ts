/**
 * Scenario 6, responsiveness: `GET /status` latency while a task burns CPU until its time
 * limit (`while (true) {}` with `TIME_LIMIT_MS`), against the same requests on the idle
 * server, in alternating windows of equal length.
 *
 * @module
 */
import { type BenchContext, tempDir } from "./context.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { getJson, type Health, postJson, type TaskViewLite } from "./client.ts";
import { delay as sleep, type ServerProcess, startServer } from "../testing/server_process.ts";
import { summarize } from "./stats.ts";

/** Sequential `GET /status` requests until `until()` is true; returns their latencies, ms. */
async function probe(server: ServerProcess, until: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  while (!until()) {
    const start = performance.now();
    const response = await fetch(`${server.origin}/status`);
    await response.arrayBuffer();
    latencies.push(performance.now() - start);
    if (!response.ok) throw new Error(`GET /status answered ${response.status}`);
  }
  return latencies;
}

/** Runs scenario 6. */
export async function responsiveness(ctx: BenchContext): Promise<ScenarioResult> {
  const timeLimitMs = ctx.quick ? 1000 : 3000;
  const rounds = ctx.quick ? 1 : 3;
  const background = 100;
  const server = await startServer({
    statesDir: await tempDir(ctx, "responsive"),
    env: { TIME_LIMIT_MS: String(timeLimitMs) },
  });
  const idle: number[] = [];
  const busy: number[] = [];
  const outcomes: string[] = [];
  try {
    // Some finished tasks, so that /status has a realistic list to return.
    for (let i = 0; i < background; i++) {
      await postJson(`${server.origin}/task`, { id: `done-${i}`, code: `({ i: ${i}, ok: true })` });
    }
    await probe(
      server,
      (() => {
        const end = performance.now() + 200;
        return () => performance.now() > end;
      })(),
    );
    for (let round = 0; round < rounds; round++) {
      ctx.progress(`responsiveness: round ${round + 1}/${rounds}`);
      const idleEnd = performance.now() + timeLimitMs;
      idle.push(...await probe(server, () => performance.now() > idleEnd));

      let settled = false;
      const burn = postJson<{ task: TaskViewLite }>(`${server.origin}/task`, {
        id: `burn-${round}`,
        code: "while (true) {}",
      }).finally(() => settled = true);
      // Wait until the segment is running, then measure until it is stopped.
      for (;;) {
        const health = await getJson<Health>(`${server.origin}/health`);
        if (health.tasks.running > 0 || settled) break;
        await sleep(1);
      }
      busy.push(...await probe(server, () => settled));
      const { task } = await burn;
      outcomes.push(`${task.status}${task.error ? ` (${task.error.kind})` : ""}`);
    }
  } finally {
    await server.close({ graceMs: 10_000 });
  }
  const idleSummary = summarize(idle);
  const busySummary = summarize(busy);
  const rows: Row[] = [{
    case: "GET /status while a task burns CPU",
    unit: "ms",
    subject: busySummary,
    baselineLabel: "idle server",
    baseline: idleSummary,
  }];
  return {
    id: 6,
    key: "responsiveness",
    title: "Responsiveness",
    rows,
    notes: [
      `TIME_LIMIT_MS=${timeLimitMs}; ${rounds} idle and ${rounds} busy windows of ` +
      `${timeLimitMs} ms, alternating; sequential requests; ${background} finished tasks listed.`,
      `The burning tasks ended as: ${outcomes.join(", ")}.`,
    ],
    metrics: {
      busyP99Ms: busySummary.p99,
      busyMedianMs: busySummary.median,
      idleP99Ms: idleSummary.p99,
      idleMedianMs: idleSummary.median,
    },
    raw: { timeLimitMs, rounds, idle: idleSummary, busy: busySummary, outcomes },
  };
}
