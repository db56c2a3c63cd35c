/**
 * `deno task bench [-- --quick] [-- --only=1,4]`: runs the benchmark scenarios (all but the
 * soak, which `deno task bench -- soak [--minutes=10]` runs), prints a Markdown report to
 * stdout (progress goes to stderr) and writes the raw figures to `bench/results/latest.json`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { coldResume } from "./cold_resume.ts";
import type { BenchContext } from "./context.ts";
import { endToEnd } from "./end_to_end.ts";
import { engineHot } from "./engine_hot.ts";
import { memory } from "./memory.ts";
import { persistence } from "./persistence.ts";
import {
  formatBytes,
  formatMs,
  formatRatio,
  type GoalResult,
  renderGoals,
  renderScenario,
  type ScenarioResult,
  table,
} from "./report.ts";
import { recovery } from "./recovery.ts";
import { responsiveness } from "./responsiveness.ts";
import { scale } from "./scale.ts";
import { soak, soakMinutes } from "./soak.ts";
import { timers } from "./timers.ts";
import { postgresScenario } from "./postgres.ts";
import { spawnUpstream } from "../testing/upstream.ts";
import { machineBusyMs, ownTreeCpuMs } from "./proc.ts";

const SCENARIOS: readonly {
  id: number;
  name: string;
  run: (ctx: BenchContext) => Promise<ScenarioResult>;
  /** Runs only when asked for by number (or by name): too long for every run. */
  optIn?: boolean;
}[] = [
  { id: 1, name: "engine hot resume", run: engineHot },
  { id: 2, name: "cold resume", run: coldResume },
  { id: 3, name: "memory", run: memory },
  { id: 4, name: "end to end", run: endToEnd },
  { id: 5, name: "persistence", run: persistence },
  { id: 6, name: "responsiveness", run: responsiveness },
  { id: 7, name: "recovery", run: recovery },
  { id: 8, name: "scale", run: scale },
  {
    id: 9,
    name: "soak",
    run: (ctx) => soak(ctx, soakMinutes(Deno.args, ctx.quick)),
    optIn: true,
  },
  { id: 10, name: "timers", run: timers },
  { id: 11, name: "postgres", run: postgresScenario },
];

const GIB = 1024 ** 3;
const RESULTS_FILE = fileURLToPath(new URL("./results/latest.json", import.meta.url));

interface Options {
  quick: boolean;
  only: Set<number> | null;
}

function parseArgs(args: readonly string[]): Options {
  const options: Options = { quick: false, only: null };
  for (const arg of args) {
    if (arg === "--") continue;
    if (arg === "--quick") options.quick = true;
    else if (arg === "soak") options.only = new Set([9]);
    else if (arg.startsWith("--minutes=")) continue; // Read by the soak.
    else if (arg.startsWith("--only=")) {
      const ids = arg.slice("--only=".length).split(",").map((s) => Number(s.trim()));
      if (ids.some((id) => !SCENARIOS.some((s) => s.id === id))) {
        throw new Error(`Unknown scenario in ${arg}: use numbers 1 to ${SCENARIOS.length}`);
      }
      options.only = new Set(ids);
    } else if (arg === "--help" || arg === "-h") {
      console.log(
        "deno task bench [-- --quick] [--only=1,2,...] | deno task bench -- soak [--minutes=10]\n" +
          SCENARIOS.map((s) => `  ${s.id}: ${s.name}`).join("\n"),
      );
      Deno.exit(0);
    } else {
      throw new Error(`Unknown argument "${arg}" (try --help)`);
    }
  }
  return options;
}

/** The 1-minute load average (other work on the machine skews every figure). */
function loadAverage(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/** CPU model, core count, memory, OS and Deno versions. */
function machine(): Record<string, string | number> {
  let cpu = "unknown";
  let memTotal = NaN;
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? cpu;
  } catch {
    // Not Linux.
  }
  try {
    const kib = /^MemTotal:\s+(\d+)\s+kB/m.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1];
    if (kib) memTotal = Number(kib) * 1024;
  } catch {
    // Not Linux.
  }
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    memory: formatBytes(memTotal),
    os: `${Deno.build.os} ${Deno.osRelease()} (${Deno.build.arch})`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  };
}

function metric(results: Map<string, ScenarioResult>, key: string, name: string): number {
  return results.get(key)?.metrics[name] ?? NaN;
}

function goals(results: Map<string, ScenarioResult>, quick: boolean): GoalResult[] {
  const m = (key: string, name: string) => metric(results, key, name);
  const has = (key: string) => results.has(key);
  const out: GoalResult[] = [];

  const hotA = m("engine_hot", "asyncify.overheadMedianMs");
  const hotS = m("engine_hot", "sync.overheadMedianMs");
  out.push({
    goal: "Engine hot resume overhead per fetch (p50, vs native await)",
    target: "≤ 0.5 ms",
    measured: `asyncify ${formatMs(hotA)}, sync ${formatMs(hotS)}`,
    pass: has("engine_hot") ? hotA <= 0.5 : null,
  });

  const createA = m("engine_hot", "asyncify.vmCreateImageMedianMs");
  const createS = m("engine_hot", "sync.vmCreateImageMedianMs");
  out.push({
    goal: "VM creation, guest world installed (p50)",
    target: "≤ 1 ms",
    measured: `asyncify ${formatMs(createA)} (prelude evaluated: ${
      formatMs(m("engine_hot", "asyncify.vmCreatePreludeMedianMs"))
    }), sync ${formatMs(createS)} (${formatMs(m("engine_hot", "sync.vmCreatePreludeMedianMs"))})`,
    pass: has("engine_hot") ? createA <= 1 : null,
  });

  const e2e = (c: number) => m("end_to_end", `fsync-on.c${c}.overheadMedianMs`);
  out.push({
    goal: "End-to-end overhead per fetch vs direct Deno fetch, fsync on (p50)",
    target: "≤ 2 ms",
    measured: `c=1: ${formatMs(e2e(1))} (c=16: ${formatMs(e2e(16))}, c=64: ${formatMs(e2e(64))})`,
    pass: has("end_to_end") ? e2e(1) <= 2 : null,
  });

  const rate = (mode: string, c: number) => m("end_to_end", `${mode}.c${c}.cyclesPerSecond`);
  const best = m("end_to_end", "fsync-on.bestCyclesPerSecond");
  out.push({
    goal: `End-to-end throughput, ${navigator.hardwareConcurrency} cores, fsync on`,
    target: "≥ 500 fetch cycles/s",
    measured: `best ${best.toFixed(0)}/s (c=16: ${rate("fsync-on", 16).toFixed(0)}/s, c=64: ${
      rate("fsync-on", 64).toFixed(0)
    }/s; fsync off c=64: ${rate("fsync-off", 64).toFixed(0)}/s)`,
    pass: has("end_to_end") ? best >= 500 : null,
  });

  const replayA = m("cold_resume", "asyncify.replay1000MedianMs");
  const replayS = m("cold_resume", "sync.replay1000MedianMs");
  out.push({
    goal: "Replay of a 1,000-fetch journal (p50)",
    target: "≤ 150 ms",
    measured: `asyncify ${formatMs(replayA)}, sync ${formatMs(replayS)}`,
    pass: has("cold_resume") ? replayA <= 150 : null,
  });

  const paused = m("memory", "server.pausedTasks");
  const rss = m("memory", "server.rssAfterBytes");
  out.push({
    goal: "Paused tasks held by the server, with RSS",
    target: "≥ 10,000 with RSS < 1 GiB",
    measured: `${Number.isFinite(paused) ? paused : "–"} tasks, RSS ${formatBytes(rss)}` +
      (quick ? " (quick run: size too small to judge)" : ""),
    pass: has("memory") && !quick ? paused >= 10_000 && rss < GIB : null,
  });

  const p1 = m("persistence", "on.pause1MedianMs");
  const p1000 = m("persistence", "on.pause1000MedianMs");
  out.push({
    goal: "Persisting pause #1,000 vs pause #1 (fsync on, p50)",
    target: "≤ 2×",
    measured: `${formatRatio(p1000 / p1)} (${formatMs(p1000)} vs ${formatMs(p1)})`,
    pass: has("persistence") ? p1000 / p1 <= 2 : null,
  });

  const busy = m("responsiveness", "busyP99Ms");
  out.push({
    goal: "GET /status p99 while a task burns CPU",
    target: "< 20 ms",
    measured: `${formatMs(busy)} (idle ${formatMs(m("responsiveness", "idleP99Ms"))})`,
    pass: has("responsiveness") ? busy < 20 : null,
  });

  const restart = m("recovery", "fullMedianMs");
  const count = m("recovery", "count");
  out.push({
    goal: "Restart to serving with 10,000 paused tasks (p50)",
    target: "< 3 s",
    measured: `${formatMs(restart)} with ${Number.isFinite(count) ? count : "–"} tasks` +
      (quick ? " (quick run: size too small to judge)" : ""),
    pass: has("recovery") && !quick ? count >= 10_000 && restart < 3000 : null,
  });

  const sized = (what: string) =>
    has("scale")
      ? `${what} with ${m("scale", "finished").toLocaleString("en")} finished + ` +
        `${m("scale", "paused").toLocaleString("en")} paused tasks` +
        (quick ? " (quick run: size too small to judge)" : "")
      : "–";
  const big = !quick && m("scale", "finished") >= 1_000_000 && m("scale", "paused") >= 10_000;
  out.push({
    goal: "RSS with 1,000,000 finished tasks on disk",
    target: "< 300 MiB",
    measured: sized(`${m("scale", "rssAfterListingMiB").toFixed(1)} MiB`),
    pass: has("scale") && !quick ? big && m("scale", "rssAfterListingMiB") < 300 : null,
  });
  out.push({
    goal: "Restart to serving, 1,000,000 finished + 10,000 paused tasks (p50)",
    target: "< 3 s",
    measured: sized(formatMs(m("scale", "readyMedianMs"))),
    pass: has("scale") && !quick ? big && m("scale", "readyMedianMs") < 3000 : null,
  });
  out.push({
    goal: "GET /status page with filters or cursor, 1,000,000 tasks (p99)",
    target: "< 50 ms",
    measured: sized(formatMs(m("scale", "listingP99Ms"))),
    pass: has("scale") && !quick ? big && m("scale", "listingP99Ms") < 50 : null,
  });
  const zeroTask = m("timers", "zeroDelay.serverTaskMs");
  out.push({
    goal: "A task of 1,000 setTimeout(fn, 0) in a loop, POST /task to completed (fsync on)",
    target: "< 1 s",
    measured: formatMs(zeroTask),
    pass: has("timers") ? zeroTask < 1000 : null,
  });
  const sleepers = m("timers", "sleeping.count");
  const sleepCpu = m("timers", "sleeping.idleCpuMsPerSecond");
  const emptyCpu = m("timers", "sleeping.emptyCpuMsPerSecond");
  out.push({
    goal: `${sleepers} sleeping tasks: CPU of the server while they sleep, beyond an empty one`,
    target: "< 10 ms per s",
    measured: `${formatMs(sleepCpu)} per s (empty server ${formatMs(emptyCpu)}), ${
      formatBytes(m("timers", "sleeping.perTaskBytes"))
    } RSS per task`,
    pass: has("timers") && !quick ? sleepers >= 10_000 && sleepCpu - emptyCpu < 10 : null,
  });
  return out;
}

/** Where a fetch cycle's time and CPU go, from the figures of scenarios 1, 4 and 5. */
function breakdown(results: Map<string, ScenarioResult>): string | null {
  const e2e = results.get("end_to_end");
  if (!e2e) return null;
  const m = (name: string) => e2e.metrics[name] ?? NaN;
  const hot = results.get("engine_hot")?.metrics ?? {};
  const persist = results.get("persistence")?.metrics ?? {};
  const engine = hot["asyncify.taskDeliverMedianMs"] ?? NaN;
  const messaging = hot["asyncify.messagingMedianMs"] ?? NaN;
  const direct = m("direct.c1.gapMedianMs");
  const columns = ["on", "off"].map((fs) => {
    const gap = m(`fsync-${fs}.c1.gapMedianMs`);
    const call = m(`fsync-${fs}.c1.callMedianMs`);
    const save = persist[`${fs}.pause100MedianMs`] ?? NaN;
    return {
      gap,
      overhead: gap - direct,
      call,
      save,
      rest: call - save - engine,
      outside: gap - direct - call,
    };
  });
  const fmt = (f: (c: typeof columns[number]) => number) => columns.map((c) => formatMs(f(c)));
  const timeRows = [
    ["Fetch cycle through the server (upstream arrivals)", ...fmt((c) => c.gap), "scenario 4"],
    ["Direct fetch cycle (baseline)", formatMs(direct), formatMs(direct), "scenario 4"],
    ["Overhead of the server", ...fmt((c) => c.overhead), "difference"],
    ["… /call handling inside the server", ...fmt((c) => c.call), "server request log"],
    ["… … store save (pause #100)", ...fmt((c) => c.save), "scenario 5"],
    [
      "… … worker round trip + engine (5-fetch tasks, asyncify)",
      formatMs(engine),
      formatMs(engine),
      "scenario 1",
    ],
    [
      "… … … of which worker messaging (long loop: pool − direct deliver)",
      formatMs(messaging),
      formatMs(messaging),
      "scenario 1",
    ],
    ["… … rest of /call (body, JSON, queueing, logs)", ...fmt((c) => c.rest), "difference"],
    [
      "… outside /call (outbound fetch, dispatcher, self-POST client)",
      ...fmt((c) => c.outside),
      "difference",
    ],
  ];
  const cpuRows: string[][] = [];
  for (const c of [1, 64]) {
    for (const fs of ["on", "off"]) {
      const k = `fsync-${fs}.c${c}`;
      const total = m(`${k}.cpuTotalPerCycleMs`);
      const upstream = m(`${k}.upstreamCpuPerCycleMs`);
      const main = m(`${k}.cpuMainPerCycleMs`);
      cpuRows.push([
        `c=${c}, fsync ${fs}`,
        formatMs(main),
        formatMs(m(`${k}.cpuWorkersPerCycleMs`)),
        formatMs(m(`${k}.cpuIoPerCycleMs`)),
        formatMs(m(`${k}.cpuV8PerCycleMs`) + m(`${k}.cpuOtherPerCycleMs`)),
        formatMs(total),
        formatMs(upstream),
        `${(1000 / main).toFixed(0)}/s`,
        `${((navigator.hardwareConcurrency * 1000) / (total + upstream)).toFixed(0)}/s`,
      ]);
    }
    cpuRows.push([
      `c=${c}, direct (client process)`,
      "–",
      "–",
      "–",
      "–",
      formatMs(m(`direct.c${c}.clientCpuPerCycleMs`)),
      formatMs(m(`direct.c${c}.upstreamCpuPerCycleMs`)),
      "–",
      "–",
    ]);
  }
  return [
    "### Where a fetch cycle goes (c=1, medians)",
    "",
    table(["Part", "fsync on", "fsync off", "Source"], timeRows),
    "",
    "### CPU time per fetch cycle (server process, from /proc, by thread)",
    "",
    table(
      [
        "Batch",
        "Main thread",
        "Engine workers",
        "I/O threads",
        "V8 GC + other",
        "Server total",
        "Upstream",
        "Main-thread bound",
        "CPU bound",
      ],
      cpuRows,
    ),
    "",
    "- Main-thread bound: 1 s / main-thread CPU per cycle (the HTTP edge, task service, " +
    "store calls and logging all run there). CPU bound: cores × 1 s / (server + upstream CPU " +
    "per cycle).",
  ].join("\n");
}

async function main(): Promise<void> {
  const options = parseArgs(Deno.args);
  const loadBefore = loadAverage();
  const busyBefore = machineBusyMs();
  const ownBefore = ownTreeCpuMs();
  const started = new Date();
  const t0 = performance.now();
  const progress = (message: string) => {
    const s = ((performance.now() - t0) / 1000).toFixed(1).padStart(6);
    console.error(`[${s}s] ${message}`);
  };
  const upstream = await spawnUpstream();
  const ctx: BenchContext = { quick: options.quick, upstream, progress, shared: {}, tempDirs: [] };
  const results = new Map<string, ScenarioResult>();
  const failures: { id: number; error: string }[] = [];
  try {
    for (const scenario of SCENARIOS) {
      if (options.only ? !options.only.has(scenario.id) : scenario.optIn) continue;
      progress(`scenario ${scenario.id}: ${scenario.name}`);
      const start = performance.now();
      try {
        const result = await scenario.run(ctx);
        result.durationMs = performance.now() - start;
        results.set(result.key, result);
      } catch (error) {
        const text = error instanceof Error ? error.stack ?? error.message : String(error);
        progress(`scenario ${scenario.id} failed: ${text}`);
        failures.push({ id: scenario.id, error: text });
      }
    }
  } finally {
    await upstream.close();
    for (const dir of ctx.tempDirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  const info = machine();
  const wallS = (performance.now() - t0) / 1000;
  // CPU the rest of the machine used meanwhile: all busy time minus this process and the
  // children it waited for (upstream, servers, memory children).
  // Accounting noise can make it slightly negative.
  const othersCpuS = Math.max(
    0,
    (machineBusyMs() - busyBefore - (ownTreeCpuMs() - ownBefore)) / 1000,
  );
  const othersShare = othersCpuS / wallS;
  const goalResults = goals(results, options.quick);
  const parts = [
    `## FlowState benchmark${options.quick ? " (quick)" : ""}`,
    "",
    `Machine: ${info.cpu}, ${info.cores} cores, ${info.memory} RAM, ${info.os}; ` +
    `Deno ${info.deno} (V8 ${info.v8}). Run ${started.toISOString()}, ` +
    `${wallS.toFixed(0)} s. Load average before the run ${loadBefore.toFixed(2)}; other ` +
    `processes used ${othersCpuS.toFixed(1)} CPU-s during it (${othersShare.toFixed(2)} cores).`,
    ...(othersShare > 0.1
      ? ["", "**Warning:** other work was running on the machine; the figures are skewed."]
      : []),
    "",
    "Medians and p99 of every sample; Ratio = median / baseline median. Every baseline ran " +
    "in the same run, interleaved with its subject.",
    ...(options.quick
      ? ["", "Quick run: small sizes and few rounds, a smoke test; judge the goals on a full run."]
      : []),
  ];
  for (const result of [...results.values()].sort((a, b) => a.id - b.id)) {
    parts.push("", renderScenario(result));
  }
  const costs = breakdown(results);
  if (costs) parts.push("", costs);
  parts.push("", "### Goals", "", renderGoals(goalResults));
  for (const failure of failures) {
    parts.push("", `**Scenario ${failure.id} failed:** ${failure.error.split("\n")[0]}`);
  }
  console.log(parts.join("\n"));

  const json = {
    version: 1,
    quick: options.quick,
    startedAt: started.toISOString(),
    durationS: wallS,
    machine: info,
    loadAverageBefore: loadBefore,
    otherProcessesCpuS: othersCpuS,
    scenarios: Object.fromEntries(
      [...results.values()].map((r) => [r.key, {
        id: r.id,
        title: r.title,
        durationMs: r.durationMs,
        rows: r.rows,
        notes: r.notes,
        metrics: r.metrics,
        raw: r.raw,
      }]),
    ),
    goals: goalResults,
    failures,
  };
  await Deno.mkdir(new URL("./results", import.meta.url), { recursive: true });
  await Deno.writeTextFile(RESULTS_FILE, JSON.stringify(json, null, 2) + "\n");
  progress("wrote bench/results/latest.json");
  if (failures.length > 0) Deno.exitCode = 1;
}

if (import.meta.main) await main();
