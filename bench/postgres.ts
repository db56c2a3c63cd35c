/**
 * Scenario 11, PostgreSQL: the end-to-end fetch cycle (tasks of 5 sequential fetches, auto
 * fetch) on the file store (fsync on, the default), on PostgreSQL with one replica, and on
 * PostgreSQL with one and two replicas behind the round-robin proxy (which is then also the
 * `CALL_ENDPOINT`, so most self-POSTs are forwarded once more to the task's owner).
 * Per-fetch time is a task's wall time / 5 at concurrency 1; throughput is fetch cycles
 * per second at concurrency 32. The servers, the proxy, PostgreSQL and the upstream share
 * the machine's cores: two replicas on two cores compete for them rather than add any.
 *
 * Skipped (with a note) when the local PostgreSQL server does not answer.
 *
 * @module
 */
import { type BenchContext, tempDir } from "./context.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { postJson, type TaskViewLite } from "./client.ts";
import { freePort, type ServerProcess, startServer } from "../testing/server_process.ts";
import { freshDatabase, TEST_SERVER_URL } from "../testing/postgres.ts";
import { startRoundRobin } from "../testing/round_robin.ts";
import { single, summarize } from "./stats.ts";
import { E2E_CODE } from "./end_to_end.ts";

const FETCHES = 5;
const EXPECTED = (FETCHES * (FETCHES - 1)) / 2;
const CONCURRENCY = 32;

type Setup = "file" | "pg-1" | "pg-1-proxy" | "pg-2-proxy";
const LABELS: Record<Setup, string> = {
  file: "file store",
  "pg-1": "PostgreSQL, 1 replica",
  "pg-1-proxy": "PostgreSQL, 1 replica behind the proxy",
  "pg-2-proxy": "PostgreSQL, 2 replicas behind the proxy",
};

/** Runs `tasks` tasks at `concurrency` against `origin`; per-fetch times and the wall time. */
async function drive(
  ctx: BenchContext,
  origin: string,
  label: string,
  concurrency: number,
  tasks: number,
): Promise<{ perFetch: number[]; wallMs: number; errors: number }> {
  const perFetch: number[] = [];
  let next = 0;
  let errors = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < tasks) {
      const key = `${label}-${next++}`;
      const taskStart = performance.now();
      try {
        const { task } = await postJson<{ task: TaskViewLite }>(`${origin}/task`, {
          id: key,
          code: E2E_CODE,
          input: { base: ctx.upstream.origin, key },
          wait: 60_000,
        });
        if (task.result !== EXPECTED) errors++;
        else perFetch.push((performance.now() - taskStart) / FETCHES);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { perFetch, wallMs: performance.now() - start, errors };
}

/** Whether the local PostgreSQL server answers. */
async function postgresAnswers(): Promise<boolean> {
  try {
    const url = new URL(TEST_SERVER_URL);
    const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port || 5432) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** Runs scenario 11. */
export async function postgresScenario(ctx: BenchContext): Promise<ScenarioResult> {
  const result: ScenarioResult = {
    id: 11,
    key: "postgres",
    title: "PostgreSQL mode: fetch cycle and throughput, file store vs PostgreSQL, 1 vs 2 replicas",
    rows: [],
    notes: [],
    metrics: {},
    raw: {},
  };
  if (!await postgresAnswers()) {
    result.notes.push(`Skipped: no PostgreSQL server answers at ${new URL(TEST_SERVER_URL).host}.`);
    return result;
  }
  const serial = ctx.quick ? 10 : 30;
  const parallel = ctx.quick ? 64 : 256;
  const figures: Partial<Record<Setup, { perFetch: number[]; rate: number; errors: number }>> = {};
  for (const setup of Object.keys(LABELS) as Setup[]) {
    ctx.progress(`postgres: ${LABELS[setup]}`);
    const replicas = setup === "pg-2-proxy" ? 2 : 1;
    const proxied = setup.endsWith("-proxy");
    const database = setup === "file" ? undefined : await freshDatabase();
    const ports = Array.from({ length: replicas }, () => freePort());
    const proxy = proxied
      ? startRoundRobin(() => ports.map((port) => `http://127.0.0.1:${port}`))
      : undefined;
    const servers: ServerProcess[] = [];
    try {
      for (const port of ports) {
        servers.push(
          await startServer({
            port,
            statesDir: await tempDir(ctx, `pg-${setup}`),
            env: {
              LOG_LEVEL: "warn",
              ...(database ? { DATABASE_URL: database.url } : {}),
              ...(proxy ? { CALL_ENDPOINT: `${proxy.origin}/call` } : {}),
              REPLICA_URL: `http://127.0.0.1:${port}`,
            },
          }),
        );
      }
      const origin = proxy?.origin ?? servers[0]!.origin;
      await drive(ctx, origin, `warm-${setup}`, 4, 8);
      const one = await drive(ctx, origin, `c1-${setup}`, 1, serial);
      const many = await drive(ctx, origin, `c${CONCURRENCY}-${setup}`, CONCURRENCY, parallel);
      const rate = (parallel * FETCHES) / (many.wallMs / 1000);
      figures[setup] = { perFetch: one.perFetch, rate, errors: one.errors + many.errors };
      result.metrics[`${setup}.c1.perFetchMedianMs`] = summarize(one.perFetch).median;
      result.metrics[`${setup}.c${CONCURRENCY}.cyclesPerSecond`] = rate;
      result.metrics[`${setup}.errors`] = one.errors + many.errors;
    } finally {
      for (const server of servers) await server.close({ graceMs: 10_000 });
      await proxy?.close();
      await database?.drop();
    }
  }
  const file = figures.file!;
  const rows: Row[] = [];
  for (const setup of ["pg-1", "pg-1-proxy", "pg-2-proxy"] as const) {
    const pg = figures[setup]!;
    rows.push({
      case: `${LABELS[setup]}: per fetch, c=1 (task wall / ${FETCHES})`,
      unit: "ms",
      subject: summarize(pg.perFetch),
      baselineLabel: LABELS.file,
      baseline: summarize(file.perFetch),
    });
    rows.push({
      case: `${LABELS[setup]}: fetch cycles/s, c=${CONCURRENCY}`,
      unit: "per_s",
      subject: single(pg.rate),
      baselineLabel: LABELS.file,
      baseline: single(file.rate),
    });
  }
  result.rows = rows;
  const errors = Object.values(figures).reduce((sum, f) => sum + f.errors, 0);
  result.notes.push(
    `${navigator.hardwareConcurrency} cores shared by the replicas, PostgreSQL, the proxy and ` +
      "the upstream: a second replica adds no core, it competes for the same ones.",
    `Tasks with a wrong result or a failed request: ${errors}.`,
  );
  result.raw = figures;
  return result;
}
