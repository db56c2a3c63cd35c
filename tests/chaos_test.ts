/**
 * The short form of every chaos scenario (`chaos/`), as tests: real server processes on
 * loopback, a local hostile upstream, SIGKILLs, disk faults, fuzzed requests, hostile code
 * and a burst of load. `deno task chaos` runs the full forms and prints the figures.
 *
 * `CHAOS_SEED=<n>` repeats the random choices of a run (each test prints its seed).
 */
import { assert, assertEquals } from "@std/assert";
import { runCrashLoop } from "../chaos/crash_loop.ts";
import { runDiskFaults } from "../chaos/disk_faults.ts";
import { runEdgeAttacks } from "../chaos/edge_attacks.ts";
import { runHostileCode } from "../chaos/hostile_code.ts";
import { runDeepNesting, runHostileRequests } from "../chaos/hostile_requests.ts";
import { runHostileUpstreams } from "../chaos/hostile_upstreams.ts";
import { runLoad } from "../chaos/load.ts";
import { runIsolation } from "../chaos/isolation.ts";
import { formatTable } from "../chaos/main.ts";
import { chaosSeed, type ScenarioResult } from "../chaos/support.ts";

const seed = chaosSeed();

/** Prints the figures of a scenario, so the test output carries them. */
function report(result: ScenarioResult): void {
  console.log(`\nseed ${seed}\n${formatTable([result])}`);
  for (const reason of result.skipped) console.log(`skipped: ${reason}`);
}

Deno.test("chaos: crash loop — every task completes as if never interrupted", async () => {
  const result = await runCrashLoop({ short: true, seed });
  report(result);
  assertEquals(result.problems, []);
  assertEquals(result.figures.completed, 10);
  assertEquals(result.figures["wrong results"], 0);
  assert(Number(result.figures.kills) >= 5, "at least 5 SIGKILLs");
  assertEquals(result.figures["state files parsed"], 20);
});

Deno.test("chaos: disk faults — clear 5xx, no torn or lost state, recovery", async () => {
  const result = await runDiskFaults({ short: true, seed });
  report(result);
  assertEquals(result.problems, []);
  assert(Number(result.figures["failing requests checked"]) >= 4, "the faults were exercised");
});

Deno.test("chaos: hostile requests — every one a 4xx with a JSON error", async () => {
  const result = await runHostileRequests({ short: true, seed });
  report(result);
  assertEquals(result.problems, []);
  assert(Number(result.figures["requests fuzzed"]) >= 200, "a few hundred requests");
  assertEquals(result.figures["rejected as expected"], result.figures["requests fuzzed"]);
  assertEquals(result.figures["files in states/"], 4);
});

// Deeply nested JSON (thousands of levels) cannot be copied to an engine worker or saved:
// the edge refuses it with a 400, and a job that still fails to reach a worker fails alone.
Deno.test({
  name: "chaos: hostile requests — deeply nested input/data are refused, workers unaffected",
  async fn() {
    const result = await runDeepNesting({ short: true, seed });
    report(result);
    assertEquals(result.problems, []);
  },
});

Deno.test("chaos: hostile code — each ends with a clear error, others keep running", async () => {
  const result = await runHostileCode({ short: true, seed });
  report(result);
  assertEquals(result.problems, []);
  assert(Number(result.figures["hostile tasks"]) >= 30);
  assertEquals(result.figures["normal tasks"], 3);
});

// Memory bombs made of many small allocations can make QuickJS throw `null` (it cannot
// allocate the error itself); near the memory cap that is reported as kind "memory".
// TIME_LIMIT_MS=10000 so the bomb always reaches the memory limit before the time limit.
Deno.test({
  name: "chaos: hostile code — small-object memory bombs end as clear memory errors",
  async fn() {
    const result = await runHostileCode({ short: true, seed, smallObjectBombs: true });
    report(result);
    assertEquals(result.problems, []);
  },
});

Deno.test("chaos: hostile upstreams — clear outcomes, server stays up", async () => {
  const result = await runHostileUpstreams({ short: true, seed });
  report(result);
  assertEquals(result.problems, []);
  assertEquals(result.figures.tasks, 14);
});

Deno.test("chaos: load — no errors, no memory growth after the load", async () => {
  const result = await runLoad({ short: true, seed });
  report(result);
  assertEquals(result.problems, []);
  assertEquals(result.figures["wrong results"], 0);
  assertEquals(result.figures["failed requests"], 0);
  assert(Number(result.figures["load tasks"]) > 0);
});

Deno.test("chaos: isolation — built-ins the interrupt cannot stop end at the limit, live VMs fit LIVE_VM_MB", async () => {
  const result = await runIsolation({ short: true, seed });
  report(result);
  assertEquals(result.problems, []);
  assertEquals(result.figures.attacks, 3);
});

Deno.test("chaos: edge attacks — slow clients, egress tricks, deep JSON, proxy traps, a second server, a FIFO", async () => {
  const result = await runEdgeAttacks({ short: true, seed });
  report(result);
  assertEquals(result.problems, []);
});
