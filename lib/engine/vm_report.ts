/**
 * What a FetchVM reports when a segment ends: completed or paused (with the variables view
 * of a pause), and the state as it stands.
 *
 * @module
 */
import { ExecutionError } from "./execution_error.ts";
import { memoryError, nearMemoryCap } from "./failures.ts";
import { completedResult } from "./outcome.ts";
import type { ExecutionResult, VMState } from "./types.ts";
import { MAX_VARIABLES_CHARS, VARIABLES_TIME_MS } from "./variables_view.ts";
import type { VMCore } from "./vm_core.ts";

/** The outcome of the segment that just ended: completed, paused, or a deadlock. */
export function report(vm: VMCore): ExecutionResult {
  const { controller } = vm.live!;
  const outcomeJson = vm.call(controller.outcome);
  const logs = vm.logs.segment;
  const signals = JSON.parse(vm.call(controller.waits) ?? "[]") as string[];
  const held = vm.requests.pending.size > 0 || signals.length > 0;
  // A weak timer may still settle code that waits, but does not hold finished code.
  const waiting = held || vm.timers.size > 0;
  if (outcomeJson !== undefined) {
    const completed = completedResult(
      outcomeJson,
      vm.options.maxResultBytes,
      (info) => vm.guestFailure(info),
    );
    if (!held && vm.timers.holding === 0) {
      const result: ExecutionResult = { type: "completed", state: snapshot(vm, {}, []), logs };
      if ("value" in completed) result.result = completed.value;
      return result;
    }
  } else if (!waiting) {
    if (nearMemoryCap(vm.failure)) throw memoryError(vm.failure);
    throw new ExecutionError(
      "deadlock",
      "DeadlockError",
      "The script is waiting on a promise that can never settle: no fetch, timer or signal is pending",
    );
  }
  const requests = vm.requests.listPending();
  const variables = vm.replay ? {} : vm.variables.fresh(() => readVariables(vm));
  const state = snapshot(vm, variables, signals);
  const paused: ExecutionResult = {
    type: "paused",
    state,
    fetchRequests: requests,
    timers: state.timers,
    signals,
    logs,
  };
  if (requests.length > 0) paused.fetchRequest = requests[0];
  return paused;
}

/** The execution's state as it stands, with `variables` and the `signals` awaited. */
export function snapshot(
  vm: VMCore,
  variables: Record<string, unknown>,
  signals: string[],
): VMState {
  return {
    id: vm.id,
    code: vm.code,
    variables,
    timestamp: Date.now(),
    version: 1,
    variant: vm.variant,
    seed: vm.seed,
    entropy: vm.entropy,
    globals: vm.globals,
    journal: vm.journal.entries(),
    pending: [...vm.requests.pending.keys()],
    timers: vm.timers.list(),
    signals,
    logs: [...vm.logs.logs],
    droppedLogs: vm.logs.dropped,
  };
}

/**
 * Reads the guest's variables under their own small time budget, with host calls refused;
 * `{}` when that fails.
 */
function readVariables(vm: VMCore): Record<string, unknown> {
  const deadline = vm.deadline;
  vm.deadline = performance.now() + VARIABLES_TIME_MS;
  vm.inspecting = true;
  try {
    const json = vm.call(
      vm.live!.controller.variables,
      vm.variables.namesJson(),
      MAX_VARIABLES_CHARS,
    );
    return json ? JSON.parse(json) : {};
  } catch {
    return {};
  } finally {
    vm.deadline = deadline;
    vm.inspecting = false;
  }
}
