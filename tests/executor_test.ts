import { assert, assertEquals } from "@std/assert";
import { type SegmentOutcome, WorkerPool } from "../lib/service/executor.ts";
import type { SegmentFailure, SegmentSuccess } from "../lib/service/segment_protocol.ts";
import type { FetchResponse, ResumeInput, VMState } from "../lib/engine/mod.ts";

/** A guest built-in QuickJS's interrupt handler does not stop: runs for a minute. */
const HOG = "[].indexOf.call({ length: 2 ** 30 }, 1)";
/** A guest that waits for one fetch and returns its status plus one. */
const ONE_FETCH = 'const r = await fetch("http://127.0.0.1:9/x"); r.status + 1';

const TIME_LIMIT_MS = 300;
const GRACE_MS = 300;

function pool(options: { size?: number; liveVmBytes?: number } = {}): WorkerPool {
  return new WorkerPool({
    size: options.size ?? 1,
    liveVms: 256,
    liveVmBytes: options.liveVmBytes,
    timeLimitMs: TIME_LIMIT_MS,
    graceMs: GRACE_MS,
  });
}

function paused(outcome: SegmentOutcome): SegmentSuccess {
  if (!outcome.ok || outcome.type !== "paused") {
    throw new Error(`Expected a pause: ${JSON.stringify(outcome)}`);
  }
  return outcome;
}

function failed(outcome: SegmentOutcome): SegmentFailure {
  if (outcome.ok) throw new Error(`Expected a failure: ${JSON.stringify(outcome)}`);
  return outcome;
}

function completed(outcome: SegmentOutcome): SegmentSuccess {
  if (!outcome.ok || outcome.type !== "completed") {
    throw new Error(`Expected a completion: ${JSON.stringify(outcome)}`);
  }
  return outcome;
}

/** The input answering the first pending request of `outcome`. */
function response(outcome: SegmentSuccess): ResumeInput {
  return { type: "response", response: answer(outcome) };
}

function answer(outcome: SegmentSuccess): FetchResponse {
  return {
    id: outcome.pending[0]!.id,
    success: true,
    status: 200,
    statusText: "OK",
    headers: {},
    data: null,
    url: "http://127.0.0.1:9/x",
    timestamp: Date.now(),
  };
}

function stateOf(outcome: SegmentSuccess): VMState {
  return { ...outcome.vm, journal: outcome.newJournal, logs: [] };
}

Deno.test("a segment stuck in a built-in fails with kind timeout at its limit plus the grace", async () => {
  const engines = pool();
  try {
    const started = performance.now();
    const outcome = failed(await engines.execute("hog", HOG, { timeLimitMs: TIME_LIMIT_MS }));
    const elapsed = performance.now() - started;
    assertEquals(outcome.error.kind, "timeout");
    assert(outcome.error.message.includes("stopped by the server"), outcome.error.message);
    // Unstopped, the built-in runs for tens of seconds; the bound is far below that.
    assert(elapsed < 15_000, `took ${elapsed} ms`);
  } finally {
    await engines.close();
  }
});

Deno.test("the other tasks of a killed engine process resume from their journals", async () => {
  const engines = pool();
  try {
    const first = paused(await engines.execute("calm", ONE_FETCH, {}));
    assertEquals(engines.stats().liveVms, 1);
    const hog = await engines.execute("hog", HOG, { timeLimitMs: TIME_LIMIT_MS });
    assert(!hog.ok && hog.error.kind === "timeout", JSON.stringify(hog));
    assertEquals(engines.stats().liveVms, 0);
    let replayed = false;
    const done = await engines.resume("calm", first.newJournal.length, response(first), () => {
      replayed = true;
      return Promise.resolve(stateOf(first));
    }, {});
    assert(replayed, "the live VM died with its process: a cold resume was expected");
    assertEquals(completed(done).result, 201);
  } finally {
    await engines.close();
  }
});

Deno.test("jobs queued behind a stuck segment run on the replacement process", async () => {
  const engines = pool();
  try {
    const [hog, calm] = await Promise.all([
      engines.execute("hog", HOG, { timeLimitMs: TIME_LIMIT_MS }),
      engines.execute("calm", "6 * 7", {}),
    ]);
    assert(!hog.ok && hog.error.kind === "timeout", JSON.stringify(hog));
    assertEquals(completed(calm).result, 42);
  } finally {
    await engines.close();
  }
});

Deno.test("live VMs are kept within the byte budget, least recently used dropped first", async () => {
  const mib = 1024 * 1024;
  const engines = pool({ liveVmBytes: 80 * mib });
  try {
    // Each guest grows its memory by some 30 MiB, then drops the string: memory never shrinks.
    const big = 'let s = "x".repeat(40 * 1024 * 1024); s = null; await fetch("http://x.test/")';
    const outcomes = [];
    for (let i = 0; i < 4; i++) {
      const options = { memoryLimitBytes: 64 * mib, timeLimitMs: 10_000 };
      outcomes.push(paused(await engines.execute(`big-${i}`, big, options)));
      assert(engines.stats().liveVmBytes <= 80 * mib, JSON.stringify(engines.stats()));
    }
    assert(outcomes.every((outcome) => outcome.vmBytes > 16 * mib), "each VM grew its memory");
    assert(engines.stats().liveVms < 4, JSON.stringify(engines.stats()));
    // The newest is still live; the oldest was dropped and replays.
    let replayed = false;
    const load = (outcome: SegmentSuccess) => () => {
      replayed = true;
      return Promise.resolve(stateOf(outcome));
    };
    const last = outcomes[3]!;
    await engines.resume("big-3", last.newJournal.length, response(last), load(last), {});
    assert(!replayed, "the most recent VM should have stayed live");
    const oldest = outcomes[0]!;
    await engines.resume("big-0", oldest.newJournal.length, response(oldest), load(oldest), {});
    assert(replayed, "the oldest VM should have been dropped");
  } finally {
    await engines.close();
  }
});
