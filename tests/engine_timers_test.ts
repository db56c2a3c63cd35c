/**
 * Engine tests of time and signals: the timer globals' argument handling, real time passing
 * across a sleep, timers and signals journaled so that a replay in a fresh VM takes the same
 * branch, and the completion rule (a task completes when its code has finished and nothing
 * is pending).
 */
import assert from "node:assert/strict";
import {
  type EngineOptions,
  type ExecutionResult,
  FetchVM,
  type ResumeInput,
  type VMState,
} from "../lib/mod.ts";
import { rejectsWithKind, VARIANTS, viaJson } from "../testing/engine_driver.ts";

/** Waits until the earliest timer of a paused result is due. */
async function untilDue(result: ExecutionResult): Promise<void> {
  const dueAt = result.timers?.[0]?.dueAt;
  assert.ok(dueAt !== undefined, "the execution has an armed timer");
  const wait = dueAt - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 2));
}

/** Runs `code` on one live VM, firing its timers as they fall due, to completion. */
async function runLive(code: string, options: EngineOptions = {}): Promise<ExecutionResult[]> {
  using vm = new FetchVM(options);
  const results = [await vm.execute(code)];
  for (let i = 0; results.at(-1)!.type === "paused" && i < 1000; i++) {
    await untilDue(results.at(-1)!);
    results.push(await vm.apply({ type: "timers" }));
  }
  return results;
}

/** Resumes `state` with `input` in a fresh VM (through JSON, as after a restart). */
async function coldResume(state: VMState, input: ResumeInput): Promise<ExecutionResult> {
  using vm = new FetchVM();
  return await vm.resumeWith(viaJson(state), input);
}

for (const variant of VARIANTS) {
  Deno.test(`[${variant}] setTimeout passes extra arguments, clearTimeout cancels, a string handler is evaluated, and timers fire in due order`, async () => {
    const results = await runLive(
      `globalThis.order = [];
setTimeout((a, b) => order.push("args:" + a + b), 20, "x", "y");
const cancelled = setTimeout(() => order.push("cancelled"), 0);
clearTimeout(cancelled);
setTimeout("order.push('string')", 10);
setTimeout(() => order.push("zero"));
setTimeout(() => order.push("nan"), NaN);
setTimeout(() => order.push("negative"), -5);
setTimeout(() => order.push("text-5"), "5");
clearTimeout("not a timer");
clearTimeout();
await new Promise((resolve) => setTimeout(resolve, 30));
[order, typeof cancelled, cancelled > 0, setTimeout.length, setInterval.length]`,
      { variant },
    );
    assert.deepEqual(results.at(-1)!.result, [
      ["zero", "nan", "negative", "text-5", "string", "args:xy"],
      "number",
      true,
      1,
      1,
    ]);
  });

  Deno.test(`[${variant}] setInterval ticks until clearInterval after n ticks, and nested timers fire`, async () => {
    const results = await runLive(
      `const ticks = [];
await new Promise((resolve) => {
  let n = 0;
  const id = setInterval((label) => {
    ticks.push(label + n);
    if (++n === 4) {
      clearInterval(id);
      setTimeout(() => setTimeout(() => resolve(), 5), 5);
    }
  }, 10, "tick");
});
ticks`,
      { variant },
    );
    assert.deepEqual(results.at(-1)!.result, ["tick0", "tick1", "tick2", "tick3"]);
    assert.equal(results.at(-1)!.type, "completed");
  });

  Deno.test(`[${variant}] real time passes across a sleep: Date.now() afterwards is at least the delay later`, async () => {
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(`const before = Date.now();
await new Promise((resolve) => setTimeout(resolve, 300));
Date.now() - before`);
    assert.equal(paused.type, "paused");
    assert.equal(paused.timers?.length, 1);
    assert.deepEqual(paused.fetchRequests, []);
    const early = await vm.apply({ type: "timers" });
    assert.equal(early.type, "paused", "a timer not yet due does not fire");
    await untilDue(paused);
    const done = await vm.apply({ type: "timers" });
    assert.equal(done.type, "completed");
    assert.ok((done.result as number) >= 300, `slept ${done.result} ms`);
  });

  Deno.test(`[${variant}] 1,000 zero-delay timers set in a loop all fire within the first segment`, async () => {
    const results = await runLive(
      `let fired = 0;
for (let i = 0; i < 1000; i++) setTimeout(() => fired++, 0);
await new Promise((resolve) => setTimeout(resolve, 0));
fired`,
      { variant },
    );
    assert.equal(results.length, 1);
    assert.equal(results[0]!.type, "completed");
    assert.equal(results[0]!.result, 1000);
  });

  Deno.test(`[${variant}] Promise.race of a fetch and a sleep replays the branch that happened: the timer first`, async () => {
    using vm = new FetchVM({ variant });
    const code = `const winner = await Promise.race([
  fetch("https://slow.example/").then(() => "fetch"),
  new Promise((resolve) => setTimeout(() => resolve("timeout"), 50)),
]);
const again = await fetch("https://next.example/" + winner);
winner`;
    let timedOut = await vm.execute(code);
    if (timedOut.timers?.length) {
      // Not yet due when the first segment ended (a slow segment fires it inline instead).
      await untilDue(timedOut);
      timedOut = await vm.apply({ type: "timers" });
    }
    assert.equal(timedOut.type, "paused");
    const next = timedOut.fetchRequests!.find((r) => r.url === "https://next.example/timeout");
    assert.ok(next, "the timeout branch asked for its next request");
    const slow = timedOut.fetchRequests!.find((r) => r.url === "https://slow.example/")!;
    const afterSlow = await coldResume(timedOut.state!, {
      type: "response",
      response: { id: slow.id, success: true, status: 200, data: "late" },
    });
    assert.equal(afterSlow.type, "paused");
    const done = await coldResume(afterSlow.state!, {
      type: "response",
      response: { id: next.id, success: true, status: 200, data: "x" },
    });
    assert.equal(done.type, "completed");
    assert.equal(done.result, "timeout");
  });

  Deno.test(`[${variant}] Promise.race of a fetch and a sleep replays the branch that happened: the response first`, async () => {
    using vm = new FetchVM({ variant });
    const first = await vm.execute(`const winner = await Promise.race([
  fetch("https://fast.example/").then(() => "fetch"),
  new Promise((resolve) => setTimeout(() => resolve("timeout"), 60_000)),
]);
winner`);
    const answered = await vm.deliver({
      id: first.fetchRequest!.id,
      success: true,
      status: 200,
      data: 1,
    });
    assert.equal(answered.type, "paused", "the losing timer is still armed");
    assert.equal(answered.timers?.length, 1);
    const replayed = await coldResume(answered.state!, { type: "timers" });
    assert.equal(replayed.type, "paused");
    assert.deepEqual(replayed.timers, answered.timers);
  });

  Deno.test(`[${variant}] a fire-and-forget fetch is sent and the task completes with the last expression after its response`, async () => {
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(`fetch("https://example.com/ping"); "done"`);
    assert.equal(paused.type, "paused");
    assert.equal(paused.fetchRequests?.length, 1);
    const done = await vm.deliver({ id: paused.fetchRequest!.id, success: true, status: 204 });
    assert.equal(done.type, "completed");
    assert.equal(done.result, "done");
  });

  Deno.test(`[${variant}] an interval never cleared keeps the task paused with its next tick armed`, async () => {
    using vm = new FetchVM({ variant });
    let result = await vm.execute(`let n = 0; setInterval(() => n++, 20); "started"`);
    for (let i = 0; i < 3; i++) {
      assert.equal(result.type, "paused");
      await untilDue(result);
      result = await vm.apply({ type: "timers" });
    }
    assert.equal(result.type, "paused");
    assert.equal(result.timers?.length, 1);
    const replayed = await coldResume(result.state!, { type: "timers" });
    assert.equal(replayed.type, "paused");
  });

  Deno.test(`[${variant}] an uncaught error in a timer callback fails the task`, async () => {
    using vm = new FetchVM({ variant });
    const error = await rejectsWithKind(
      vm.execute(`setTimeout(() => { throw new RangeError("boom in a timer"); }, 0); 1`),
      "exception",
    );
    assert.equal(error.guestName, "RangeError");
    assert.match(error.message, /boom in a timer/);
  });

  Deno.test(`[${variant}] FlowState.waitForSignal resolves with the signal's data, a signal sent before the wait is kept, and a replay sees both`, async () => {
    using vm = new FetchVM({ variant, id: "task-42", globals: { input: { order: 7 } } });
    const first = await vm.execute(`const early = await FlowState.waitForSignal("early");
const approval = await FlowState.waitForSignal("approval");
({ id: FlowState.taskId, input: FlowState.input, early, approval })`);
    assert.equal(first.type, "paused");
    assert.deepEqual(first.signals, ["early"]);
    const kept = await vm.apply({ type: "signal", signal: { name: "approval", data: "yes" } });
    assert.deepEqual(kept.signals, ["early"], "a signal nobody waits for is kept");
    const done = await vm.apply({ type: "signal", signal: { name: "early", data: { n: 1 } } });
    assert.equal(done.type, "completed");
    const expected = { id: "task-42", input: { order: 7 }, early: { n: 1 }, approval: "yes" };
    assert.deepEqual(done.result, expected);
    const signals = done.state!.journal.filter((entry) => entry.type === "signal");
    assert.equal(signals.length, 2, "each signal is journaled once");

    using fresh = new FetchVM({ variant });
    const replayed = await fresh.restore(viaJson(done.state!));
    assert.equal(replayed.type, "completed");
    assert.deepEqual(replayed.result, expected);
  });

  Deno.test(`[${variant}] FlowState.waitForSignal with timeoutMs rejects with a TimeoutError when no signal arrives`, async () => {
    const results = await runLive(
      `try {
  await FlowState.waitForSignal("never", { timeoutMs: 20 });
  "resolved";
} catch (error) {
  [error.name, error.message];
}`,
      { variant },
    );
    assert.deepEqual(results[0]!.signals, ["never"]);
    assert.deepEqual(results.at(-1)!.result, [
      "TimeoutError",
      'No signal "never" arrived within 20 ms',
    ]);
  });

  Deno.test(`[${variant}] a waiting promise with nothing pending is still a deadlock`, async () => {
    using vm = new FetchVM({ variant });
    await rejectsWithKind(vm.execute(`await new Promise(() => {})`), "deadlock");
  });

  Deno.test(`[${variant}] FlowState.sleep takes a delay longer than a WebIDL long`, async () => {
    using vm = new FetchVM({ variant });
    const year = 365 * 24 * 3600 * 1000;
    const paused = await vm.execute(`await FlowState.sleep(${year}); "woke"`);
    assert.equal(paused.type, "paused");
    const dueIn = paused.timers![0]!.dueAt - Date.now();
    assert.ok(dueIn > year - 60_000 && dueIn <= year, `due in ${dueIn} ms`);
    using other = new FetchVM({ variant });
    const error = await rejectsWithKind(other.execute(`await FlowState.sleep(-1)`), "exception");
    assert.match(error.message, /finite number/);
  });
}
