/**
 * `fetch(url, { signal })` in the engine: an aborted signal rejects at once and records
 * nothing; a signal that aborts while the request waits rejects the call with the signal's
 * reason, drops the request from the pending (or waiting) ones and journals the abort, so
 * that a replay in a fresh VM takes the same path and a response that comes later is refused;
 * a signal that aborts after the responses came errors the bodies still readable, in a
 * replay as live.
 */
import assert from "node:assert/strict";
import {
  type ExecutionResult,
  FetchVM,
  type JournalEntry,
  type ResumeInput,
  type VMState,
} from "../lib/mod.ts";
import {
  driveCold,
  driveLive,
  journalRequests,
  ok,
  rejectsWithKind,
  VARIANTS,
  viaJson,
} from "../testing/engine_driver.ts";

/** The pending request of `result` whose URL is `url`. */
function pendingOf(result: ExecutionResult, url: string): string {
  const request = result.fetchRequests?.find((r) => r.url === url);
  assert.ok(request, `${url} is pending`);
  return request.id;
}

/** The journal's abort entries. */
function aborts(state: VMState): Extract<JournalEntry, { type: "abort" }>[] {
  return state.journal.flatMap((entry) => entry.type === "abort" ? [entry] : []);
}

/** Replays `state` in a fresh VM, through JSON as after a restart. */
async function restored(state: VMState): Promise<ExecutionResult> {
  using vm = new FetchVM({ variant: state.variant });
  return await vm.restore(viaJson(state));
}

/** Resumes `state` with `input` in a fresh VM, through JSON as after a restart. */
async function coldResume(state: VMState, input: ResumeInput): Promise<ExecutionResult> {
  using vm = new FetchVM({ variant: state.variant });
  return await vm.resumeWith(viaJson(state), input);
}

/** Waits until the earliest timer of a paused result is due. */
async function untilDue(result: ExecutionResult): Promise<void> {
  const dueAt = result.timers?.[0]?.dueAt;
  assert.ok(dueAt !== undefined, "the execution has an armed timer");
  const wait = dueAt - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 2));
}

const ABORT_WHILE_PENDING = `const controller = new AbortController();
const slow = fetch("https://slow.example/", { signal: controller.signal });
const first = await fetch("https://fast.example/");
controller.abort();
let caught;
try { await slow; } catch (error) {
  caught = [error.name, error instanceof DOMException, error === controller.signal.reason];
}
const after = await (await fetch("https://after.example/")).json();
[caught, after]`;

/** Aborts after the responses came: one body taken as a stream, one cloned, one read. */
const ABORT_AFTER_RESPONSES = `const controller = new AbortController();
const signal = controller.signal;
const streamed = await fetch("https://a.example/", { signal });
const reader = streamed.body.getReader();
const unread = await fetch("https://b.example/", { signal });
const copy = unread.clone();
const read = await (await fetch("https://c.example/", { signal })).text();
await fetch("https://d.example/");
controller.abort("late");
const outcome = (p) => p.then((v) => typeof v === "string" ? v : v.done, (e) => "rejected: " + e);
[await outcome(reader.read()), await outcome(reader.closed), await outcome(unread.text()),
 await outcome(copy.text()), read]`;

for (const variant of VARIANTS) {
  Deno.test(`[${variant}] an abort after the responses errors the bodies still readable, live and when replayed cold at every pause`, async () => {
    const expected = ["rejected: late", "rejected: late", "rejected: late", "body", "body"];
    for (const drive of [driveLive, driveCold]) {
      const run = await drive(ABORT_AFTER_RESPONSES, () => ok("body"), { variant });
      assert.deepEqual(run.result, expected, drive.name);
    }
  });

  Deno.test(`[${variant}] fetch with an aborted signal rejects with its reason at once and records no request`, async () => {
    using vm = new FetchVM({ variant });
    const done = await vm.execute(`const out = [];
const controller = new AbortController(); controller.abort();
try { await fetch("https://a.example/", { signal: controller.signal }); } catch (e) {
  out.push([e.name, e instanceof DOMException, e === controller.signal.reason]);
}
const reason = { why: "custom" };
try { await fetch("https://b.example/", { signal: AbortSignal.abort(reason) }); } catch (e) {
  out.push(e === reason);
}
try { await fetch("https://c.example/", { signal: AbortSignal.abort("text") }); } catch (e) {
  out.push(e);
}
try { await fetch("https://d.example/", { signal: {} }); } catch (e) { out.push(e.name); }
out`);
    assert.equal(done.type, "completed");
    assert.deepEqual(done.result, [["AbortError", true, true], true, "text", "TypeError"]);
    assert.deepEqual(journalRequests(done.state!), []);
  });

  Deno.test(`[${variant}] signal: null is no signal, and a signal that never aborts changes nothing`, async () => {
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(`const controller = new AbortController();
const a = await fetch("https://a.example/", { signal: null });
const b = await fetch("https://b.example/", { signal: controller.signal });
[await a.json(), await b.json()]`);
    const second = await vm.deliver({ id: paused.fetchRequest!.id, ...ok(1) });
    const done = await vm.deliver({ id: second.fetchRequest!.id, ...ok(2) });
    assert.equal(done.type, "completed");
    assert.deepEqual(done.result, [1, 2]);
    assert.deepEqual(aborts(done.state!), []);
  });

  Deno.test(`[${variant}] aborting a pending fetch rejects it with an AbortError, journals the abort and refuses its late response`, async () => {
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(ABORT_WHILE_PENDING);
    const slowId = pendingOf(paused, "https://slow.example/");
    const aborted = await vm.deliver({ id: pendingOf(paused, "https://fast.example/"), ...ok(1) });
    assert.equal(aborted.type, "paused");
    assert.deepEqual(aborted.fetchRequests!.map((r) => r.url), ["https://after.example/"]);
    assert.deepEqual(aborted.state!.pending, [aborted.fetchRequest!.id]);
    assert.deepEqual(aborts(aborted.state!).map((entry) => entry.id), [slowId]);
    await rejectsWithKind(vm.deliver({ id: slowId, ...ok("late") }), "stale");
    const done = await vm.deliver({ id: aborted.fetchRequest!.id, ...ok(7) });
    assert.equal(done.type, "completed");
    assert.deepEqual(done.result, [["AbortError", true, true], 7]);
  });

  Deno.test(`[${variant}] a journal with an abort replays to the same path after a restart`, async () => {
    const paused = await new FetchVM({ variant }).execute(ABORT_WHILE_PENDING);
    // The abort happens in a fresh VM, as when the server restarted at this pause.
    const aborted = await coldResume(paused.state!, {
      type: "response",
      response: { id: pendingOf(paused, "https://fast.example/"), ...ok(1) },
    });
    assert.deepEqual(aborts(aborted.state!).length, 1);
    const again = await restored(aborted.state!);
    assert.equal(again.type, "paused");
    assert.deepEqual(again.state!.pending, aborted.state!.pending);
    assert.deepEqual(again.fetchRequests, aborted.fetchRequests);
    const done = await coldResume(aborted.state!, {
      type: "response",
      response: { id: aborted.fetchRequest!.id, ...ok(7) },
    });
    assert.deepEqual(done.result, [["AbortError", true, true], 7]);
    const final = await restored(done.state!);
    assert.equal(final.type, "completed");
    assert.deepEqual(final.result, done.result);
  });

  Deno.test(`[${variant}] a replay that does not make the journal's abort is a nondeterminism error`, async () => {
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(ABORT_WHILE_PENDING);
    const aborted = await vm.deliver({ id: pendingOf(paused, "https://fast.example/"), ...ok(1) });
    const state = viaJson(aborted.state!);
    const changed = {
      ...state,
      code: state.code.replace("controller.abort();", "controller.signal;"),
    };
    const error = await rejectsWithKind(restored(changed), "nondeterminism");
    assert.match(
      error.message,
      /aborts fetch "fetch_.*" here but replaying the code did not abort it/,
    );
  });

  Deno.test(`[${variant}] the abort reason reaches the fetch as given: an Error, a value, a dependent signal's`, async () => {
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(`const a = new AbortController(), b = new AbortController();
const either = AbortSignal.any([a.signal, b.signal]);
const custom = new AbortController();
const p1 = fetch("https://one.example/", { signal: either });
const p2 = fetch("https://two.example/", { signal: custom.signal });
const p3 = fetch("https://three.example/", { signal: either });
await fetch("https://go.example/");
b.abort("user stopped");
const error = new RangeError("too slow");
custom.abort(error);
const results = await Promise.allSettled([p1, p2, p3]);
a.abort("again");
[results.map((r) => r.status), results[0].reason, results[1].reason === error, results[2].reason]`);
    assert.equal(paused.fetchRequests!.length, 4);
    const done = await vm.deliver({ id: pendingOf(paused, "https://go.example/"), ...ok(1) });
    assert.equal(done.type, "completed");
    assert.deepEqual(done.result, [
      ["rejected", "rejected", "rejected"],
      "user stopped",
      true,
      "user stopped",
    ]);
    assert.equal(aborts(done.state!).length, 3);
    assert.deepEqual((await restored(done.state!)).result, done.result);
  });

  Deno.test(`[${variant}] aborting a fetch queued over maxPendingFetches drops it from the queue: it is never handed to the host`, async () => {
    using vm = new FetchVM({ variant, maxPendingFetches: 1 });
    const paused = await vm.execute(`const controller = new AbortController();
const a = fetch("https://a.example/");
const b = fetch("https://b.example/", { signal: controller.signal });
const c = fetch("https://c.example/");
controller.abort();
const settled = await Promise.allSettled([a, b, c]);
settled.map((r) => r.status === "fulfilled" ? r.value.url : r.reason.name)`);
    assert.deepEqual(paused.fetchRequests!.map((r) => r.url), ["https://a.example/"]);
    assert.equal(aborts(paused.state!).length, 1);
    const next = await vm.deliver({ id: paused.fetchRequest!.id, ...ok(1) });
    assert.deepEqual(next.fetchRequests!.map((r) => r.url), ["https://c.example/"]);
    const again = await restored(next.state!);
    assert.deepEqual(again.fetchRequests, next.fetchRequests);
    const done = await coldResume(next.state!, {
      type: "response",
      response: { id: next.fetchRequest!.id, ...ok(3) },
    });
    assert.equal(done.type, "completed");
    assert.deepEqual(done.result, ["https://a.example/", "AbortError", "https://c.example/"]);
  });

  Deno.test(`[${variant}] AbortSignal.timeout racing a slow fetch: the durable timer fires, the fetch rejects with a TimeoutError, a replay agrees`, async () => {
    using vm = new FetchVM({ variant });
    const code = `let outcome;
try {
  const response = await fetch("https://slow.example/", { signal: AbortSignal.timeout(200) });
  outcome = await response.json();
} catch (error) { outcome = [error.name, error.message]; }
outcome`;
    const paused = await vm.execute(code);
    const expected = ["TimeoutError", "The operation timed out."];
    // A segment slower than the timeout fires the timer inline; else it fires in a next one.
    const ends: ExecutionResult[] = [paused];
    if (paused.type === "paused") {
      assert.ok(paused.fetchRequests!.some((r) => r.url === "https://slow.example/"));
      await untilDue(paused);
      // Cold, as when the server restarted while the fetch was out and the timer armed...
      ends[0] = await coldResume(paused.state!, { type: "timers" });
      // ...and on the live VM.
      ends.push(await vm.apply({ type: "timers" }));
    }
    for (const done of ends) {
      assert.equal(done.type, "completed");
      assert.deepEqual(done.result, expected);
      const types = done.state!.journal.map((entry) => entry.type);
      assert.deepEqual(types.slice(-2), ["timer", "abort"]);
      assert.deepEqual(aborts(done.state!).map((entry) => entry.id), [
        journalRequests(done.state!)[0]!.id,
      ]);
      assert.deepEqual((await restored(done.state!)).result, expected);
    }
  });
}
