/**
 * Scenario 9, soak (`deno task bench -- soak [--minutes=10]`, not part of the default run):
 * tasks of three fetches each, created without pause by 64 clients that wait for each to
 * finish, for the given minutes, with RETAIN_FINISHED=30s so finished tasks are swept as they
 * age. The server's RSS is sampled every 10 s; after a warm-up of a fifth of the run, its
 * slope (least squares) and the change between the first and the last third tell whether it
 * stays flat.
 *
 * @module
 */
import type { BenchContext } from "./context.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { getJson, type Health } from "./client.ts";
import { startServer } from "../testing/server_process.ts";
import { summarize } from "./stats.ts";

const MIB = 1024 * 1024;
const CLIENTS = 64;
const SAMPLE_MS = 10_000;
/** How long a finished task is kept during the soak. */
const RETAIN = "30s";

/** Minutes of the soak: `--minutes=<n>` among the arguments, default 10 (quick: 1). */
export function soakMinutes(args: readonly string[], quick: boolean): number {
  const arg = args.find((a) => a.startsWith("--minutes="));
  const minutes = arg ? Number(arg.slice("--minutes=".length)) : quick ? 1 : 10;
  if (!(minutes > 0)) throw new Error(`Invalid ${arg}: expected a positive number of minutes`);
  return minutes;
}

/** Least-squares slope of `ys` over `xs`. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Runs scenario 9 for `minutes`. */
export async function soak(ctx: BenchContext, minutes: number): Promise<ScenarioResult> {
  const server = await startServer({ env: { RETAIN_FINISHED: RETAIN, LOG_LEVEL: "warn" } });
  const code = `let sum = 0;
for (let i = 0; i < 3; i++) {
  const r = await fetch("${ctx.upstream.origin}/x?k=soak&i=" + i);
  sum += (await r.json()).n;
}
sum`;
  const endAt = performance.now() + minutes * 60_000;
  let completed = 0;
  let failed = 0;
  const samples: { atS: number; rssMiB: number; tasks: number; completed: number }[] = [];
  const t0 = performance.now();
  try {
    const client = async () => {
      while (performance.now() < endAt) {
        const response = await fetch(`${server.origin}/task`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ code, wait: 60_000 }),
        });
        const body = await response.json();
        if (response.ok && body.task?.status === "completed") completed++;
        else failed++;
      }
    };
    const sampler = async () => {
      while (performance.now() < endAt) {
        await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
        const health = await getJson<Health>(`${server.origin}/health`);
        const tasks = Object.values(health.tasks).reduce((a, b) => a + b, 0);
        const rss = ((await server.rssBytes()) ?? NaN) / MIB;
        const atS = (performance.now() - t0) / 1000;
        samples.push({ atS, rssMiB: rss, tasks, completed });
        ctx.progress(
          `soak: ${atS.toFixed(0)} s, RSS ${rss.toFixed(1)} MiB, ${completed} tasks done, ` +
            `${tasks} on the server`,
        );
      }
    };
    await Promise.all([sampler(), ...Array.from({ length: CLIENTS }, client)]);
  } finally {
    await server.close({ graceMs: 10_000 });
  }
  const warm = samples.filter((s) => s.atS >= minutes * 60 / 5);
  const third = Math.max(1, Math.floor(warm.length / 3));
  const firstThird = summarize(warm.slice(0, third).map((s) => s.rssMiB));
  const lastThird = summarize(warm.slice(-third).map((s) => s.rssMiB));
  const perMinute = slope(warm.map((s) => s.atS / 60), warm.map((s) => s.rssMiB));
  const seconds = (performance.now() - t0) / 1000;
  const rows: Row[] = [
    {
      case: "server RSS, last third of the run",
      unit: "bytes",
      subject: summarize(warm.slice(-third).map((s) => s.rssMiB * MIB)),
      baselineLabel: "first third after warm-up",
      baseline: summarize(warm.slice(0, third).map((s) => s.rssMiB * MIB)),
    },
    {
      case: "tasks completed per second",
      unit: "per_s",
      subject: summarize([completed / seconds]),
    },
  ];
  return {
    id: 9,
    key: "soak",
    title: "Soak",
    rows,
    notes: [
      `${minutes} min, ${CLIENTS} clients, ${completed} tasks of 3 fetches completed, ` +
      `${failed} failed; RETAIN_FINISHED=${RETAIN}. RSS slope after warm-up ` +
      `${perMinute.toFixed(2)} MiB/min; last third ${lastThird.median.toFixed(1)} MiB against ` +
      `${firstThird.median.toFixed(1)} MiB in the first.`,
      "RSS samples (s: MiB): " +
      samples.map((s) => `${s.atS.toFixed(0)}: ${s.rssMiB.toFixed(0)}`).join(", "),
    ],
    metrics: {
      minutes,
      completed,
      failed,
      slopeMiBPerMin: perMinute,
      firstThirdMiB: firstThird.median,
      lastThirdMiB: lastThird.median,
    },
    raw: { minutes, completed, failed, samples },
  };
}
