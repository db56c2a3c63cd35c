/**
 * The FetchFlow engine: a QuickJS VM whose guest `fetch()` pauses the script until the host
 * delivers a response, and whose paused state is a JSON journal that any fresh VM, in any
 * process, can replay to the same point.
 *
 * @module
 */
import { ExecutionError } from "./execution_error.ts";
import { sameEntry } from "./journal.ts";
import { checkCodeSize } from "./limits.ts";
import { INITIAL_MEMORY_BYTES } from "./quickjs_modules.ts";
import type { EngineOptions, ExecutionResult, FetchResponse, ResumeInput } from "./types.ts";
import type { VMState } from "./types.ts";
import { VMCore } from "./vm_core.ts";
import { snapshot } from "./vm_report.ts";
import { restoreState } from "./vm_restore.ts";
import { applyInput, runSegment } from "./vm_segment.ts";
import { assertInput, assertState, staleError } from "./vm_state.ts";

export { ENGINE_DEFAULTS, type ResolvedEngineOptions, resolveEngineOptions } from "./limits.ts";

/** Resident memory of a VM at rest that has not grown its linear memory, estimated. */
export const VM_BASE_BYTES = 1024 * 1024;

/**
 * A QuickJS VM that runs code until it completes or waits: on `fetch()`, a timer or a
 * signal. It completes when the code has finished and nothing is pending any more.
 *
 * Keep one instance alive between {@link FetchVM.execute} and {@link FetchVM.resume} and
 * resumes are immediate; give {@link FetchVM.resume} a state this instance did not produce
 * (or call {@link FetchVM.restore}) and it replays the state's journal in a fresh VM first.
 * Calls on one instance must not overlap.
 */
export class FetchVM {
  readonly #vm: VMCore;

  constructor(options: EngineOptions = {}) {
    this.#vm = new VMCore(options);
  }

  /** Whether a VM is loaded (false before `initialize()` and after `dispose()` or a fatal limit). */
  get isLive(): boolean {
    return this.#vm.live !== null;
  }

  /** Id of the execution, the `id` of its states. */
  get id(): string {
    return this.#vm.id;
  }

  /** Number of journal entries so far; a state with the same count is this VM's latest. */
  get journalLength(): number {
    return this.#vm.journal.length;
  }

  /**
   * An estimate of the memory the live VM holds, bytes (0 when not live): its linear memory
   * beyond the initial size (memory the guest grew, and so wrote; it never shrinks), plus
   * {@link VM_BASE_BYTES} for the part of the initial memory a VM touches. A guest that
   * fills its initial memory without growing it holds up to that initial size more.
   */
  get memoryBytes(): number {
    const live = this.#vm.live;
    if (!live) return 0;
    return Math.max(0, live.memory.buffer.byteLength - INITIAL_MEMORY_BYTES) + VM_BASE_BYTES;
  }

  /** Creates the QuickJS VM. Called by `execute()` when needed. */
  initialize(): Promise<void> {
    return this.#vm.initialize();
  }

  /**
   * Runs `code` (top-level `await` allowed) until it completes or pauses on `fetch()`.
   * On the same instance, later calls share the globals of earlier ones (REPL steps).
   */
  async execute(code: string): Promise<ExecutionResult> {
    if (typeof code !== "string") throw new TypeError("Cannot execute code: code must be a string");
    const vm = this.#vm;
    checkCodeSize(code, vm.options.maxCodeBytes);
    if (vm.step >= 0 && !vm.live) {
      throw new ExecutionError(
        "internal",
        "Error",
        "The VM was disposed or stopped by a fatal error; resume from a saved state instead",
      );
    }
    await vm.initialize();
    const step = vm.step + 1;
    const at = Date.now();
    vm.journal.append(
      step === 0 ? { type: "eval", step, at } : { type: "eval", step, at, code },
    );
    if (step === 0) vm.code = code;
    return runSegment(vm, () => vm.evaluate(step, code, at), true);
  }

  /**
   * Delivers `response` to the paused execution `state` and runs it on. Uses the live VM
   * when `state` is this instance's latest state; otherwise replays `state` first.
   * A response whose id is not pending is refused with kind `"stale"`; nothing changes.
   */
  resume(state: VMState, response: FetchResponse): Promise<ExecutionResult> {
    return this.resumeWith(state, { type: "response", response });
  }

  /**
   * Resumes the paused execution `state` with `input` (a response, the due timers, or a
   * signal) and runs it on; like {@link FetchVM.resume}, on the live VM when `state` is its
   * latest state.
   */
  async resumeWith(state: VMState, input: ResumeInput): Promise<ExecutionResult> {
    assertState(state);
    assertInput(input);
    if (input.type === "response" && !state.pending.includes(input.response.id)) {
      throw staleError(input.response.id, state.pending);
    }
    const vm = this.#vm;
    const hot = vm.live !== null && state.id === vm.id &&
      state.journal.length === vm.journal.length &&
      sameEntry(state.journal.at(-1), vm.journal.last());
    if (!hot) await this.restore(state);
    return applyInput(vm, input);
  }

  /**
   * Delivers `response` to this live VM (the hot path of {@link FetchVM.resume}, for hosts
   * that keep the VM and know its journal length). Rejects with kind `"stale"` if the id
   * is not pending, and with kind `"internal"` if the VM is not live.
   */
  deliver(response: FetchResponse): Promise<ExecutionResult> {
    return this.apply({ type: "response", response });
  }

  /**
   * Gives `input` to this live VM (the hot path of {@link FetchVM.resumeWith}): a response
   * (rejects with kind `"stale"` if its id is not pending), `timers` (fires every timer due
   * by now, earliest first; nothing happens when none is due), or a signal. Rejects with kind
   * `"internal"` if the VM is not live.
   */
  apply(input: ResumeInput): Promise<ExecutionResult> {
    try {
      assertInput(input);
    } catch (error) {
      return Promise.reject(error);
    }
    if (!this.#vm.live) {
      return Promise.reject(
        new ExecutionError("internal", "Error", "The VM is not live; resume from a saved state"),
      );
    }
    return applyInput(this.#vm, input);
  }

  /**
   * Loads `state` into a fresh VM by replaying its journal, and reports where it stands
   * (paused on its pending requests, or completed). Console output is not repeated.
   */
  async restore(state: VMState): Promise<ExecutionResult> {
    assertState(state);
    return await restoreState(this.#vm, state);
  }

  /**
   * The execution's state as it stands (without the variables view): after a failure too,
   * so a host can keep what the failed segment journaled.
   */
  snapshot(): VMState {
    return snapshot(this.#vm, {}, []);
  }

  /** Frees the VM. Safe to call twice; never throws. */
  dispose(): void {
    this.#vm.disposeLive();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Runs `code` in a fresh VM (disposed afterwards). */
export async function executeCode(code: string, options?: EngineOptions): Promise<ExecutionResult> {
  const vm = new FetchVM(options);
  try {
    return await vm.execute(code);
  } finally {
    vm.dispose();
  }
}

/** Resumes a paused `state` with `response` in a fresh VM (disposed afterwards). */
export async function resumeExecution(
  state: VMState,
  response: FetchResponse,
  options?: EngineOptions,
): Promise<ExecutionResult> {
  const vm = new FetchVM({ ...options, variant: state?.variant ?? options?.variant });
  try {
    return await vm.resume(state, response);
  } finally {
    vm.dispose();
  }
}
