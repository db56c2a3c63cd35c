/**
 * Scenario 3, memory per paused task.
 *
 * - Live paused VMs: a fresh child process per measurement (this file with `--child`)
 *   creates N `FetchVM`s, each paused on a fetch, and reports its RSS growth. Baseline,
 *   interleaved: a child holding N native async functions paused on a promise.
 * - The server: the real server (`AUTO_FETCH=false`) holds 10,000 tasks paused on one
 *   fetch each; its VmRSS is read before and after. The states directory is kept for the
 *   recovery scenario.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { FetchVM } from "../lib/engine/fetch_vm.ts";
import type { Variant } from "../lib/engine/types.ts";
import { type BenchContext, tempDir } from "./context.ts";
import { rssOf } from "./proc.ts";
import { formatBytes, formatMs, type Row, type ScenarioResult } from "./report.ts";
import { getJson, type Health, postJson, type TaskViewLite } from "./client.ts";
import { delay as sleep, PROJECT_ROOT as ROOT, startServer } from "../testing/server_process.ts";
import { single, summarize } from "./stats.ts";

const VARIANTS: readonly Variant[] = ["asyncify", "sync"];

/** What a child reports. */
interface ChildReport {
  kind: "vm" | "native";
  variant?: Variant;
  count: number;
  before: number;
  after: number;
  /** Time to create the N paused items, ms. */
  createMs: number;
}

/** The code each paused task runs: one fetch, then its JSON. */
export function pausedTaskCode(base: string): string {
  return `const response = await fetch("${base}/x?k=paused&i=1");\n(await response.json()).n`;
}

async function runChild(args: string[]): Promise<ChildReport> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--expose-gc",
      fileURLToPath(import.meta.url),
      "--child",
      ...args,
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) {
    throw new Error(
      `Memory child ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`,
    );
  }
  return JSON.parse(text.slice(text.lastIndexOf("\n") + 1)) as ChildReport;
}

/** Creates `count` paused tasks on the server, `concurrency` at a time; returns ms taken. */
export async function createPausedTasks(
  url: string,
  code: string,
  count: number,
  concurrency: number,
  progress: (done: number, elapsedMs: number) => void,
): Promise<number> {
  let next = 0;
  const start = performance.now();
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const { task } = await postJson<{ task: TaskViewLite }>(`${url}/task`, {
        id: `paused-${String(index).padStart(6, "0")}`,
        code,
      });
      if (task.status !== "paused") {
        throw new Error(`Task ${task.id} is ${task.status}, expected paused`);
      }
      if ((index + 1) % 1000 === 0) progress(index + 1, performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return performance.now() - start;
}

/** Runs scenario 3. */
export async function memory(ctx: BenchContext): Promise<ScenarioResult> {
  const counts = ctx.quick ? [100, 200] : [100, 1000];
  const repsFor = (count: number) => (ctx.quick ? 1 : count <= 100 ? 3 : 1);
  const perItem: Record<string, number[]> = {};
  const createPer: Record<string, number[]> = {};
  const reports: ChildReport[] = [];
  for (const count of counts) {
    for (let rep = 0; rep < repsFor(count); rep++) {
      const order = rep % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const variant of order) {
        for (const kind of ["native", "vm"] as const) {
          const key = kind === "vm" ? `${variant}:${count}` : `native:${count}`;
          if (kind === "native" && variant !== order[0]) continue;
          ctx.progress(`memory: ${count} ${kind === "vm" ? `${variant} VMs` : "native tasks"}`);
          const report = await runChild([
            `--kind=${kind}`,
            `--variant=${variant}`,
            `--count=${count}`,
          ]);
          reports.push(report);
          (perItem[key] ??= []).push((report.after - report.before) / count);
          (createPer[key] ??= []).push(report.createMs / count);
        }
      }
    }
  }

  const rows: Row[] = [];
  const metrics: Record<string, number> = {};
  const notes: string[] = [];
  for (const count of counts) {
    const base = summarize(perItem[`native:${count}`]!);
    for (const variant of VARIANTS) {
      const s = summarize(perItem[`${variant}:${count}`]!);
      rows.push({
        case: `${variant}: RSS per live paused VM (${count} VMs)`,
        unit: "bytes",
        subject: s,
        baselineLabel: "native paused async fn",
        baseline: base,
      });
      metrics[`${variant}.${count}.perVmBytes`] = s.median;
      const create = summarize(createPer[`${variant}:${count}`]!).median;
      metrics[`${variant}.${count}.createMs`] = create;
      notes.push(
        `${variant}, ${count} VMs: creating each paused VM took ${formatMs(create)} on average.`,
      );
    }
  }

  // The real server holding paused tasks.
  const total = ctx.quick ? 500 : 10_000;
  const statesDir = await tempDir(ctx, "paused");
  ctx.progress(`memory: server holding ${total} paused tasks`);
  const server = await startServer({
    statesDir,
    env: { AUTO_FETCH: "false", FSYNC: "false" },
  });
  let before: number;
  let after: number;
  let createMs: number;
  let health: Health;
  try {
    await sleep(500);
    before = await server.rssBytes() ?? 0;
    createMs = await createPausedTasks(
      server.origin,
      pausedTaskCode(ctx.upstream.origin),
      total,
      16,
      (done, ms) =>
        ctx.progress(
          `memory: ${done}/${total} paused tasks created (${(done / (ms / 1000)).toFixed(0)}/s)`,
        ),
    );
    await sleep(1000);
    after = await server.rssBytes() ?? 0;
    health = await getJson<Health>(`${server.origin}/health`);
  } finally {
    await server.close({ graceMs: 10_000 });
  }
  if (health.tasks.paused !== total) {
    throw new Error(`The server holds ${health.tasks.paused} paused tasks, expected ${total}`);
  }
  ctx.shared.pausedStatesDir = statesDir;
  ctx.shared.pausedCount = total;
  rows.push(
    {
      case: `server: RSS holding ${total} paused tasks`,
      unit: "bytes",
      subject: single(after),
      baselineLabel: "idle server",
      baseline: single(before),
    },
    {
      case: `server: RSS growth per paused task`,
      unit: "bytes",
      subject: single((after - before) / total),
    },
  );
  metrics["server.pausedTasks"] = health.tasks.paused;
  metrics["server.rssAfterBytes"] = after;
  metrics["server.rssBeforeBytes"] = before;
  metrics["server.perTaskBytes"] = (after - before) / total;
  metrics["server.createPerSecond"] = total / (createMs / 1000);
  notes.unshift(
    "Each live-VM figure comes from a fresh child process (RSS after a forced GC, minus " +
      "RSS before); the children run interleaved with their native baseline.",
  );
  notes.push(
    `Server: ${total} tasks created through POST /task (16 at a time, FSYNC=false to ` +
      `shorten the setup) at ${(total / (createMs / 1000)).toFixed(0)} tasks/s; ` +
      `RSS ${formatBytes(before)} → ${formatBytes(after)}. The server keeps at most ` +
      "LIVE_VMS (256) live VMs per engine worker; the other paused tasks are records only.",
  );
  return {
    id: 3,
    key: "memory",
    title: "Memory per paused task",
    rows,
    notes,
    metrics,
    raw: { reports, server: { total, before, after, createMs, health } },
  };
}

/** Child mode: create the paused items, print a {@link ChildReport} as the last line. */
async function child(args: string[]): Promise<void> {
  const arg = (name: string) =>
    args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? "";
  const kind = arg("kind") as "vm" | "native";
  const variant = arg("variant") as Variant;
  const count = Number(arg("count"));
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
  const code = pausedTaskCode("http://127.0.0.1");
  const held: unknown[] = [];
  // Warm-up: load and compile everything a paused item needs, then forget it.
  {
    const vm = new FetchVM({ variant });
    await vm.execute(code);
    vm.dispose();
  }
  gc();
  await sleep(50);
  gc();
  const before = rssOf("self");
  const start = performance.now();
  if (kind === "vm") {
    for (let i = 0; i < count; i++) {
      const vm = new FetchVM({ variant });
      const result = await vm.execute(code);
      if (result.type !== "paused") throw new Error("Expected a paused VM");
      held.push(vm);
    }
  } else {
    const resolvers: ((value: unknown) => void)[] = [];
    const task = async (i: number) => {
      const response = await new Promise((resolve) => resolvers.push(resolve));
      return [i, response];
    };
    for (let i = 0; i < count; i++) held.push(task(i));
    held.push(resolvers);
  }
  const createMs = performance.now() - start;
  gc();
  await sleep(50);
  gc();
  const after = rssOf("self");
  const report: ChildReport = { kind, variant, count, before, after, createMs };
  console.log(JSON.stringify(report));
  held.length = 0;
}

if (import.meta.main && Deno.args.includes("--child")) {
  await child(Deno.args);
  Deno.exit(0);
}
