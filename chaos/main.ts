/**
 * `deno task chaos`: runs every chaos scenario against real server processes on loopback
 * and prints a table of figures. `--short` runs the short forms (as `deno task test`
 * does); `--only=<name>[,<name>]` picks scenarios; `CHAOS_SEED` fixes the random choices;
 * `CHAOS_KEEP=1` keeps the servers' temp directories (logs, states) for inspection.
 * Exits with 1 when a scenario finds a problem.
 *
 * @module
 */
import { runCrashLoop } from "./crash_loop.ts";
import { runDiskFaults } from "./disk_faults.ts";
import { runEdgeAttacks } from "./edge_attacks.ts";
import { runHostileCode } from "./hostile_code.ts";
import { runDeepNesting, runHostileRequests } from "./hostile_requests.ts";
import { runHostileUpstreams } from "./hostile_upstreams.ts";
import { runLoad } from "./load.ts";
import { runIsolation } from "./isolation.ts";
import { chaosSeed, type ScenarioOptions, type ScenarioResult } from "./support.ts";

/** Every scenario, by the name `--only` takes. */
export const SCENARIOS: Record<string, (options: ScenarioOptions) => Promise<ScenarioResult>> = {
  crash: runCrashLoop,
  disk: runDiskFaults,
  requests: runHostileRequests,
  code: runHostileCode,
  upstreams: runHostileUpstreams,
  load: runLoad,
  "deep-nesting": runDeepNesting,
  "memory-bombs": (options) => runHostileCode({ ...options, smallObjectBombs: true }),
  isolation: runIsolation,
  edge: runEdgeAttacks,
};

/** The figures of `results` as a text table. */
export function formatTable(results: readonly ScenarioResult[]): string {
  const rows: [string, string, string][] = [["scenario", "figure", "value"]];
  for (const result of results) {
    rows.push([result.name, "duration", `${(result.durationMs / 1000).toFixed(1)} s`]);
    for (const [figure, value] of Object.entries(result.figures)) {
      rows.push(["", figure, String(value)]);
    }
    rows.push(["", "problems", String(result.problems.length)]);
    if (result.skipped.length > 0) {
      rows.push(["", "skipped sub-cases", String(result.skipped.length)]);
    }
  }
  const widths = [0, 1, 2].map((column) =>
    Math.max(...rows.map((row) => (row[column] ?? "").length))
  );
  const line = (row: readonly string[]) =>
    row.map((cell, column) => cell.padEnd(widths[column]!)).join(" | ").trimEnd();
  const rule = widths.map((width) => "-".repeat(width)).join("-+-");
  return [line(rows[0]!), rule, ...rows.slice(1).map(line)].join("\n");
}

async function runOne(
  name: string,
  run: (options: ScenarioOptions) => Promise<ScenarioResult>,
  options: ScenarioOptions,
): Promise<ScenarioResult> {
  console.log(`\n== ${name}`);
  let result: ScenarioResult;
  try {
    result = await run(options);
  } catch (error) {
    result = {
      name,
      durationMs: 0,
      figures: {},
      problems: [`the scenario threw: ${error instanceof Error ? error.stack : String(error)}`],
      skipped: [],
    };
  }
  for (const reason of result.skipped) console.log(`  skipped: ${reason}`);
  for (const problem of result.problems) console.log(`  PROBLEM: ${problem}`);
  const verdict = result.problems.length === 0 ? "ok" : "FAILED";
  console.log(`  ${verdict} in ${(result.durationMs / 1000).toFixed(1)} s`);
  return result;
}

async function main(): Promise<number> {
  const short = Deno.args.includes("--short");
  const only = Deno.args.find((arg) => arg.startsWith("--only="))?.slice("--only=".length);
  const all = SCENARIOS;
  const names = only ? only.split(",") : Object.keys(SCENARIOS);
  for (const name of names) {
    if (!Object.hasOwn(all, name)) {
      console.error(`Unknown scenario "${name}"; known: ${Object.keys(all).join(", ")}`);
      return 2;
    }
  }
  const seed = chaosSeed();
  console.log(
    `chaos: ${short ? "short" : "full"} form, seed ${seed} (CHAOS_SEED=${seed} repeats it)`,
  );
  const started = performance.now();
  const log = (line: string) => console.log(`  ${line}`);
  const results: ScenarioResult[] = [];
  for (const name of names) results.push(await runOne(name, all[name]!, { short, seed, log }));
  console.log(`\n${formatTable(results)}`);
  const failed = results.filter((result) => result.problems.length > 0);
  console.log(
    `\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
      `${results.length - failed.length} of ${results.length} scenarios passed`,
  );
  return failed.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
