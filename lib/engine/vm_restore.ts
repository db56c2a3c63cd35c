/**
 * Restoring a FetchVM from a state: a fresh VM replays the state's journal entry by entry
 * (evals, responses, timers, signals) until it stands where the state was. Requests and
 * aborts are outputs: the replayed code makes them again, checked against the journal.
 *
 * @module
 */
import { Replay, unarmedTimer, unaskedResponse, unmadeAbort } from "./replay.ts";
import type { ExecutionResult, VMState } from "./types.ts";
import type { VMCore } from "./vm_core.ts";
import { runSegment } from "./vm_segment.ts";
import { deliveryMessage } from "./vm_state.ts";

/**
 * Loads `state` into `vm` (its live VM freed first) by replaying its journal in a fresh
 * VM, and reports where it stands. Console output is not repeated.
 */
export async function restoreState(vm: VMCore, state: VMState): Promise<ExecutionResult> {
  vm.disposeLive();
  vm.id = state.id;
  vm.variant = state.variant;
  vm.seed = state.seed;
  // States written before the entropy key existed derive one from their seed.
  vm.entropy = state.entropy ?? `seed:${state.seed}`;
  vm.globals = state.globals;
  vm.code = state.code;
  vm.step = -1;
  vm.variables.reset();
  vm.journal.clear();
  vm.requests.clear();
  vm.timers.clear();
  vm.logs.reset(state.logs, state.droppedLogs);
  const replay = new Replay(state.journal);
  vm.replay = replay;
  await vm.initialize();
  let abortsSeen = 0;
  try {
    return await runSegment(vm, () => {
      for (const entry of state.journal) {
        vm.journal.append(entry);
        if (entry.type === "eval") {
          vm.deadline = performance.now() + vm.options.timeLimitMs;
          vm.evaluate(entry.step, entry.step === 0 ? state.code : entry.code ?? "", entry.at);
          vm.drain();
        } else if (entry.type === "response") {
          const { id } = entry.response;
          if (!vm.requests.pending.has(id)) throw unaskedResponse(id);
          vm.requests.answer(entry.response);
          vm.deadline = performance.now() + vm.options.timeLimitMs;
          const [meta, data] = deliveryMessage(entry.response);
          vm.clock = entry.at;
          vm.call(vm.live!.controller.deliver, id, meta, data, entry.at);
          vm.drain();
        } else if (entry.type === "timer") {
          if (!vm.timers.has(entry.timer)) throw unarmedTimer(entry.timer);
          vm.deadline = performance.now() + vm.options.timeLimitMs;
          vm.runTimer(entry.timer, entry.at);
        } else if (entry.type === "signal") {
          vm.deadline = performance.now() + vm.options.timeLimitMs;
          vm.runSignal(entry.signal, entry.at);
        } else if (entry.type === "abort") {
          // The code made it while the entries before it were replayed (checked then).
          if (vm.requests.aborts <= abortsSeen++) throw unmadeAbort(entry.id);
        }
        if (vm.abort) throw vm.abort;
      }
      replay.checkComplete(vm.requests.count);
      vm.replay = null;
    }, false);
  } finally {
    vm.replay = null;
  }
}
