/**
 * Run segments of a FetchVM: a body run under the segment's time limit, the timers due by
 * now, and the inputs that start a segment (a response, the due timers, a signal), each
 * journaled within the journal's limits before it is given to the guest.
 *
 * @module
 */
import { ExecutionError } from "./execution_error.ts";
import { classifyHostError } from "./failures.ts";
import type { ExecutionResult, FetchResponse, JournalEntry, ResumeInput } from "./types.ts";
import type { Signal } from "./types.ts";
import type { VMCore } from "./vm_core.ts";
import { report } from "./vm_report.ts";
import { deliveryMessage, partError, staleError } from "./vm_state.ts";

/**
 * Runs `body` under the segment's time limit, drains jobs, fires the timers due by now
 * when `fire` is set, and reports the outcome.
 */
export function runSegment(
  vm: VMCore,
  body: () => void,
  fire: boolean,
): Promise<ExecutionResult> {
  if (!vm.live) {
    return Promise.reject(new ExecutionError("internal", "Error", "The VM is not initialized"));
  }
  vm.abort = null;
  vm.calls!.clockStuck = false;
  vm.logs.startSegment();
  vm.deadline = performance.now() + vm.options.timeLimitMs;
  try {
    body();
    vm.drain();
    if (vm.abort) throw vm.abort;
    if (fire) fireDue(vm);
    return Promise.resolve(report(vm));
  } catch (error) {
    const failure = vm.abort ?? classifyHostError(error);
    failure.logs = vm.logs.segment;
    if (failure.kind !== "exception" && failure.kind !== "syntax") vm.disposeLive();
    return Promise.reject(failure);
  } finally {
    vm.deadline = Infinity;
  }
}

/** Gives `input` to the live VM in a new segment. */
export function applyInput(vm: VMCore, input: ResumeInput): Promise<ExecutionResult> {
  if (input.type === "response") return deliver(vm, input.response);
  if (input.type === "timers") return runSegment(vm, () => {}, true);
  return signal(vm, input.signal);
}

function signal(vm: VMCore, signal: Signal): Promise<ExecutionResult> {
  const at = Date.now();
  const entry: JournalEntry = { type: "signal", step: vm.step, signal, at };
  const bytes = vm.journal.checkRoom(entry);
  return runSegment(vm, () => {
    vm.journal.append(entry, bytes);
    vm.runSignal(signal, at);
  }, true);
}

function deliver(vm: VMCore, response: FetchResponse): Promise<ExecutionResult> {
  if (!vm.requests.pending.has(response.id)) {
    return Promise.reject(staleError(response.id, [...vm.requests.pending.keys()]));
  }
  const awaited = vm.requests.partsOf(response.id);
  if ((response.part ?? 0) !== awaited) {
    return Promise.reject(partError(response.id, response.part ?? 0, awaited));
  }
  const at = Date.now();
  const entry: JournalEntry = { type: "response", step: vm.step, response, at };
  const bytes = vm.journal.checkRoom(entry);
  const [meta, data] = deliveryMessage(response);
  return runSegment(vm, () => {
    vm.journal.append(entry, bytes);
    vm.requests.answer(response);
    vm.clock = at;
    vm.call(vm.live!.controller.deliver, response.id, meta, data, at);
  }, true);
}

/**
 * Fires the timers due by now, earliest first, each journaled with the clock its callback
 * sees, until none is due or half the segment's time is used (the rest are due at once
 * when the segment ends, and the host runs them in a next segment).
 */
function fireDue(vm: VMCore): void {
  const stopAt = vm.deadline - vm.options.timeLimitMs / 2;
  for (;;) {
    const next = vm.timers.earliest();
    if (!next) return;
    const now = Date.now();
    if (next.dueAt > now || performance.now() > stopAt) return;
    const entry: JournalEntry = {
      type: "timer",
      step: vm.step,
      timer: next.id,
      at: now,
      dueAt: next.dueAt,
    };
    vm.journal.append(entry, vm.journal.checkRoom(entry));
    vm.runTimer(next.id, now);
    if (vm.abort) throw vm.abort;
  }
}
