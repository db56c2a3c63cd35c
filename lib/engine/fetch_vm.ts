/**
 * The FetchFlow engine: a QuickJS VM whose guest `fetch()` pauses the script until the host
 * delivers a response, and whose paused state is a JSON journal that any fresh VM, in any
 * process, can replay to the same point.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- the engine is imported by path from other projects
import type { QuickJSHandle } from "npm:quickjs-emscripten@0.32.0";
import { ExecutionError } from "./execution_error.ts";
import { classifyHostError, type FailureContext, guestFailure, memoryError } from "./failures.ts";
import { nearMemoryCap } from "./failures.ts";
import { callController, errorInfo, type GuestErrorInfo } from "./host_bridge.ts";
import { Journal, sameEntry } from "./journal.ts";
import { checkCodeSize, type ResolvedEngineOptions } from "./limits.ts";
import { resolveEngineOptions } from "./limits.ts";
import { createLiveVM, disposeLiveVM, type LiveVM } from "./live_vm.ts";
import { INITIAL_MEMORY_BYTES } from "./quickjs_modules.ts";
import { LogBook } from "./log_book.ts";
import { completedResult } from "./outcome.ts";
import { type AskedRequest, Replay, unaskedResponse } from "./replay.ts";
import type { EngineOptions, ExecutionResult, FetchResponse, ResumeInput } from "./types.ts";
import type { JournalEntry, Signal, Variant, VMState } from "./types.ts";
import { Timers } from "./timers.ts";
import { MAX_VARIABLES_CHARS, VARIABLES_TIME_MS, VariablesView } from "./variables_view.ts";
import { assertInput, assertState, deliveryMessage, staleError } from "./vm_state.ts";
import { unarmedTimer } from "./replay.ts";
import { entropyKey, randomEntropy, randomSeed } from "./vm_state.ts";
import { HostCalls } from "./host_calls.ts";
import { Requests } from "./requests.ts";

export { ENGINE_DEFAULTS, type ResolvedEngineOptions, resolveEngineOptions } from "./limits.ts";

/** Resident memory of a VM at rest that has not grown its linear memory, estimated. */
export const VM_BASE_BYTES = 1024 * 1024;

/** File name guest stack traces show for the task's code. */
const GUEST_FILE = "task.js";
/** Added to a time-limit error when the guest kept reading its clock. */
const CLOCK_STANDS_STILL = ". It read Date.now() or new Date() over and over: the guest clock " +
  "stands still within a run segment (it moves only when a fetch, timer or signal is answered), " +
  "so a loop waiting for it to pass a time never ends. To wait, await FlowState.sleep(ms) or " +
  "new Promise((resolve) => setTimeout(resolve, ms)) instead of spinning on the clock";
/** `JS_EVAL_FLAG_ASYNC`: top-level await; the value is a promise of `{ value }`. */
const EVAL_FLAG_ASYNC = 128;

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
  readonly #options: ResolvedEngineOptions;
  #globals: Record<string, unknown>;
  #live: LiveVM | null = null;
  #id: string;
  #variant: Variant;
  #seed: number = randomSeed();
  #entropy: string = randomEntropy();
  /** The pure host calls of the live VM (a new set, like a new VM, for every replay). */
  #calls: HostCalls | null = null;
  #code = "";
  #step = -1;
  #journal: Journal;
  #requests: Requests;
  #timers: Timers;
  /** The guest clock as last set (ms since the epoch). */
  #clock = 0;
  #logs: LogBook;
  /** The journal being replayed; `null` when running live. */
  #replay: Replay | null = null;
  #abort: ExecutionError | null = null;
  #deadline = Infinity;
  #variables = new VariablesView();
  /** Computing the `variables` view: running out of time there is not a failure. */
  #inspecting = false;
  /** What classifying a failure needs to know about this VM. */
  #failure: FailureContext;

  constructor(options: EngineOptions = {}) {
    this.#options = resolveEngineOptions(options);
    this.#variant = this.#options.variant;
    this.#globals = options.globals ?? {};
    this.#id = options.id ?? crypto.randomUUID();
    this.#timers = new Timers(this.#options.maxTimers);
    this.#journal = new Journal(this.#options.maxJournalEntries, this.#options.maxJournalBytes);
    this.#requests = new Requests(this.#options.maxPendingFetches, this.#journal);
    this.#logs = new LogBook(this.#options.maxLogEntries);
    this.#failure = {
      memoryLimitBytes: this.#options.memoryLimitBytes,
      maxStackBytes: this.#options.maxStackBytes,
      memory: null,
    };
  }

  /** Whether a VM is loaded (false before `initialize()` and after `dispose()` or a fatal limit). */
  get isLive(): boolean {
    return this.#live !== null;
  }

  /** Id of the execution, the `id` of its states. */
  get id(): string {
    return this.#id;
  }

  /** Number of journal entries so far; a state with the same count is this VM's latest. */
  get journalLength(): number {
    return this.#journal.length;
  }

  /**
   * An estimate of the memory the live VM holds, bytes (0 when not live): its linear memory
   * beyond the initial size (memory the guest grew, and so wrote; it never shrinks), plus
   * {@link VM_BASE_BYTES} for the part of the initial memory a VM touches. A guest that
   * fills its initial memory without growing it holds up to that initial size more.
   */
  get memoryBytes(): number {
    const live = this.#live;
    if (!live) return 0;
    return Math.max(0, live.memory.buffer.byteLength - INITIAL_MEMORY_BYTES) + VM_BASE_BYTES;
  }

  /** Creates the QuickJS VM. Called by `execute()` when needed. */
  async initialize(): Promise<void> {
    if (this.#live) return;
    this.#calls = new HostCalls(entropyKey(this.#entropy));
    this.#live = await createLiveVM({
      variant: this.#variant,
      memoryLimitBytes: this.#options.memoryLimitBytes,
      maxStackBytes: this.#options.maxStackBytes,
      shouldInterrupt: () => this.#shouldInterrupt(),
      host: {
        record: (json) => this.#record(json),
        log: (level, message) => {
          this.#refuseWhileInspecting();
          if (!this.#replay) this.#logs.add(level, message);
        },
        setTimer: (delayMs) => this.#setTimer(delayMs),
        clearTimer: (id) => this.#timers.disarm(id),
        taskId: this.#id,
        seed: this.#seed,
        calls: {
          call: (op, arg, bytes) => {
            this.#refuseWhileInspecting();
            return this.#calls!.call(op, arg, bytes);
          },
        },
      },
    });
    this.#failure.memory = this.#live.memory;
    if (Object.keys(this.#globals).length > 0) {
      this.#call(this.#live.controller.defineGlobals, JSON.stringify(this.#globals));
    }
  }

  /**
   * Runs `code` (top-level `await` allowed) until it completes or pauses on `fetch()`.
   * On the same instance, later calls share the globals of earlier ones (REPL steps).
   */
  async execute(code: string): Promise<ExecutionResult> {
    if (typeof code !== "string") throw new TypeError("Cannot execute code: code must be a string");
    checkCodeSize(code, this.#options.maxCodeBytes);
    if (this.#step >= 0 && !this.#live) {
      throw new ExecutionError(
        "internal",
        "Error",
        "The VM was disposed or stopped by a fatal error; resume from a saved state instead",
      );
    }
    await this.initialize();
    const step = this.#step + 1;
    const at = Date.now();
    this.#journal.append(
      step === 0 ? { type: "eval", step, at } : { type: "eval", step, at, code },
    );
    if (step === 0) this.#code = code;
    return this.#segment(() => this.#evaluate(step, code, at), true);
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
    const hot = this.#live !== null && state.id === this.#id &&
      state.journal.length === this.#journal.length &&
      sameEntry(state.journal.at(-1), this.#journal.last());
    if (!hot) await this.restore(state);
    return this.#apply(input);
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
    if (!this.#live) {
      return Promise.reject(
        new ExecutionError("internal", "Error", "The VM is not live; resume from a saved state"),
      );
    }
    return this.#apply(input);
  }

  /**
   * Loads `state` into a fresh VM by replaying its journal, and reports where it stands
   * (paused on its pending requests, or completed). Console output is not repeated.
   */
  async restore(state: VMState): Promise<ExecutionResult> {
    assertState(state);
    this.#disposeLive();
    this.#id = state.id;
    this.#variant = state.variant;
    this.#seed = state.seed;
    // States written before the entropy key existed derive one from their seed.
    this.#entropy = state.entropy ?? `seed:${state.seed}`;
    this.#globals = state.globals;
    this.#code = state.code;
    this.#step = -1;
    this.#variables.reset();
    this.#journal.clear();
    this.#requests.clear();
    this.#timers.clear();
    this.#logs.reset(state.logs, state.droppedLogs);
    const replay = new Replay(state.journal);
    this.#replay = replay;
    await this.initialize();
    try {
      return await this.#segment(() => {
        for (const entry of state.journal) {
          this.#journal.append(entry);
          if (entry.type === "eval") {
            this.#deadline = performance.now() + this.#options.timeLimitMs;
            this.#evaluate(entry.step, entry.step === 0 ? state.code : entry.code ?? "", entry.at);
            this.#drain();
          } else if (entry.type === "response") {
            const { id } = entry.response;
            if (!this.#requests.pending.has(id)) throw unaskedResponse(id);
            this.#requests.settle(id);
            this.#deadline = performance.now() + this.#options.timeLimitMs;
            const [meta, data] = deliveryMessage(entry.response);
            this.#clock = entry.at;
            this.#call(this.#live!.controller.deliver, id, meta, data, entry.at);
            this.#drain();
          } else if (entry.type === "timer") {
            if (!this.#timers.has(entry.timer)) throw unarmedTimer(entry.timer);
            this.#deadline = performance.now() + this.#options.timeLimitMs;
            this.#runTimer(entry.timer, entry.at);
          } else if (entry.type === "signal") {
            this.#deadline = performance.now() + this.#options.timeLimitMs;
            this.#runSignal(entry.signal, entry.at);
          }
          if (this.#abort) throw this.#abort;
        }
        replay.checkComplete(this.#requests.count);
        this.#replay = null;
      }, false);
    } finally {
      this.#replay = null;
    }
  }

  /**
   * The execution's state as it stands (without the variables view): after a failure too,
   * so a host can keep what the failed segment journaled.
   */
  snapshot(): VMState {
    return this.#snapshot({}, []);
  }

  /** Frees the VM. Safe to call twice; never throws. */
  dispose(): void {
    this.#disposeLive();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // --- segments -------------------------------------------------------------------------

  /**
   * Runs `body` under the segment's time limit, drains jobs, fires the timers due by now
   * when `fire` is set, and reports the outcome.
   */
  #segment(body: () => void, fire: boolean): Promise<ExecutionResult> {
    const live = this.#live;
    if (!live) {
      return Promise.reject(new ExecutionError("internal", "Error", "The VM is not initialized"));
    }
    this.#abort = null;
    this.#calls!.clockStuck = false;
    this.#logs.startSegment();
    this.#deadline = performance.now() + this.#options.timeLimitMs;
    try {
      body();
      this.#drain();
      if (this.#abort) throw this.#abort;
      if (fire) this.#fireDue();
      return Promise.resolve(this.#report());
    } catch (error) {
      const failure = this.#abort ?? classifyHostError(error);
      failure.logs = this.#logs.segment;
      if (failure.kind !== "exception" && failure.kind !== "syntax") this.#disposeLive();
      return Promise.reject(failure);
    } finally {
      this.#deadline = Infinity;
    }
  }

  #evaluate(step: number, code: string, at: number): void {
    checkCodeSize(code, this.#options.maxCodeBytes);
    this.#variables.noteCode(code);
    const { context, controller } = this.#live!;
    this.#step = step;
    this.#clock = at;
    this.#call(controller.setClock, at);
    const evaluated = context.evalCode(code, GUEST_FILE, EVAL_FLAG_ASYNC);
    if (evaluated.error) {
      const info = errorInfo(context, evaluated.error);
      evaluated.error.dispose();
      if (info.name === "SyntaxError" && !this.#abort) {
        throw new ExecutionError("syntax", info.name, info.message, { guestStack: info.stack });
      }
      throw this.#guestFailure(info);
    }
    try {
      const settled = context.callFunction(controller.settle, context.undefined, evaluated.value);
      if (settled.error) {
        const info = errorInfo(context, settled.error);
        settled.error.dispose();
        throw this.#guestFailure(info);
      }
      settled.value.dispose();
    } finally {
      evaluated.value.dispose();
    }
  }

  #apply(input: ResumeInput): Promise<ExecutionResult> {
    if (input.type === "response") return this.#deliver(input.response);
    if (input.type === "timers") return this.#segment(() => {}, true);
    return this.#signal(input.signal);
  }

  #signal(signal: Signal): Promise<ExecutionResult> {
    const at = Date.now();
    const entry: JournalEntry = { type: "signal", step: this.#step, signal, at };
    const bytes = this.#journal.checkRoom(entry);
    return this.#segment(() => {
      this.#journal.append(entry, bytes);
      this.#runSignal(signal, at);
    }, true);
  }

  #runSignal(signal: Signal, at: number): void {
    this.#clock = at;
    const data = signal.data === undefined ? "" : JSON.stringify(signal.data);
    this.#call(this.#live!.controller.signal, signal.name, data, at);
    this.#drain();
  }

  /**
   * Fires the timers due by now, earliest first, each journaled with the clock its callback
   * sees, until none is due or half the segment's time is used (the rest are due at once
   * when the segment ends, and the host runs them in a next segment).
   */
  #fireDue(): void {
    const stopAt = this.#deadline - this.#options.timeLimitMs / 2;
    for (;;) {
      const next = this.#timers.earliest();
      if (!next) return;
      const now = Date.now();
      if (next.dueAt > now || performance.now() > stopAt) return;
      const entry: JournalEntry = { type: "timer", step: this.#step, timer: next.id, at: now };
      this.#journal.append(entry, this.#journal.checkRoom(entry));
      this.#runTimer(next.id, now);
      if (this.#abort) throw this.#abort;
    }
  }

  /** Fires armed timer `id` at guest clock `at` and drains the jobs it queued. */
  #runTimer(id: number, at: number): void {
    this.#timers.disarm(id);
    this.#clock = at;
    const fired = this.#call(this.#live!.controller.fire, id, at);
    if (fired !== "fired") {
      throw new ExecutionError("internal", "Error", `Timer ${id} has no callback in the guest`);
    }
    this.#drain();
  }

  #setTimer(delayMs: number): number {
    try {
      if (!(delayMs >= 0) || delayMs === Infinity) {
        throw new ExecutionError("internal", "Error", `Invalid timer delay ${delayMs}`);
      }
      return this.#timers.arm(delayMs, this.#clock);
    } catch (error) {
      throw this.#fail(error as ExecutionError);
    }
  }

  #deliver(response: FetchResponse): Promise<ExecutionResult> {
    if (!this.#requests.pending.has(response.id)) {
      return Promise.reject(staleError(response.id, [...this.#requests.pending.keys()]));
    }
    const at = Date.now();
    const entry: JournalEntry = { type: "response", step: this.#step, response, at };
    const bytes = this.#journal.checkRoom(entry);
    const [meta, data] = deliveryMessage(response);
    return this.#segment(() => {
      this.#journal.append(entry, bytes);
      this.#requests.settle(response.id);
      this.#clock = at;
      this.#call(this.#live!.controller.deliver, response.id, meta, data, at);
    }, true);
  }

  /** Runs pending jobs until there are none (or the guest is interrupted). */
  #drain(): void {
    const { runtime, context } = this.#live!;
    for (;;) {
      const jobs = runtime.executePendingJobs(-1);
      if (jobs.error) {
        const info = errorInfo(context, jobs.error);
        jobs.error.dispose();
        throw this.#guestFailure(info);
      }
      if (jobs.value === 0 || this.#abort) return;
    }
  }

  #report(): ExecutionResult {
    const { controller } = this.#live!;
    const outcomeJson = this.#call(controller.outcome);
    const logs = this.#logs.segment;
    const signals = JSON.parse(this.#call(controller.waits) ?? "[]") as string[];
    const waiting = this.#requests.pending.size > 0 || this.#timers.size > 0 ||
      signals.length > 0;
    if (outcomeJson !== undefined) {
      const completed = completedResult(
        outcomeJson,
        this.#options.maxResultBytes,
        (info) => this.#guestFailure(info),
      );
      if (!waiting) {
        const result: ExecutionResult = { type: "completed", state: this.#snapshot({}, []), logs };
        if ("value" in completed) result.result = completed.value;
        return result;
      }
    } else if (!waiting) {
      if (nearMemoryCap(this.#failure)) throw memoryError(this.#failure);
      throw new ExecutionError(
        "deadlock",
        "DeadlockError",
        "The script is waiting on a promise that can never settle: no fetch, timer or signal is pending",
      );
    }
    const requests = [...this.#requests.pending.values()];
    const variables = this.#replay ? {} : this.#variables.fresh(() => this.#readVariables());
    const state = this.#snapshot(variables, signals);
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

  #snapshot(variables: Record<string, unknown>, signals: string[]): VMState {
    return {
      id: this.#id,
      code: this.#code,
      variables,
      timestamp: Date.now(),
      version: 1,
      variant: this.#variant,
      seed: this.#seed,
      entropy: this.#entropy,
      globals: this.#globals,
      journal: this.#journal.entries(),
      pending: [...this.#requests.pending.keys()],
      timers: this.#timers.list(),
      signals,
      logs: [...this.#logs.logs],
      droppedLogs: this.#logs.dropped,
    };
  }

  #readVariables(): Record<string, unknown> {
    const deadline = this.#deadline;
    this.#deadline = performance.now() + VARIABLES_TIME_MS;
    this.#inspecting = true;
    try {
      const json = this.#call(
        this.#live!.controller.variables,
        this.#variables.namesJson(),
        MAX_VARIABLES_CHARS,
      );
      return json ? JSON.parse(json) : {};
    } catch {
      return {};
    } finally {
      this.#deadline = deadline;
      this.#inspecting = false;
    }
  }

  // --- host functions called by the guest -------------------------------------------------

  #record(json: string): string {
    this.#refuseWhileInspecting();
    try {
      return this.#requests.record(JSON.parse(json) as AskedRequest, this.#step, this.#replay);
    } catch (error) {
      throw this.#fail(error as ExecutionError);
    }
  }

  /**
   * Inspecting guest values must not act: a host call made then (guest code the view ran
   * after all) is refused with an error the guest sees, and nothing is recorded.
   */
  #refuseWhileInspecting(): void {
    if (this.#inspecting) {
      throw new Error("Host calls are refused while the variables view is computed");
    }
  }

  /** Records a fatal condition: the interrupt handler stops the guest at once. */
  #fail(error: ExecutionError): ExecutionError {
    this.#abort ??= error;
    return error;
  }

  // --- helpers ------------------------------------------------------------------------------

  #call(fn: QuickJSHandle, ...args: (string | number)[]): string | undefined {
    return callController(this.#live!.context, fn, args, (info) => this.#guestFailure(info));
  }

  /** Maps a guest error to its kind, giving precedence to host-detected conditions. */
  #guestFailure(info: GuestErrorInfo): ExecutionError {
    return this.#abort ?? guestFailure(info, this.#failure);
  }

  #disposeLive(): void {
    const live = this.#live;
    this.#live = null;
    if (live) disposeLiveVM(live);
  }

  /** The interrupt handler: stops the guest on a fatal condition or past the deadline. */
  #shouldInterrupt(): boolean {
    if (this.#abort) return true;
    if (performance.now() <= this.#deadline) return false;
    if (!this.#inspecting) {
      this.#abort = new ExecutionError(
        "timeout",
        "InternalError",
        `The script ran longer than its time limit of ${this.#options.timeLimitMs} ms in one run segment` +
          (this.#calls?.clockStuck ? CLOCK_STANDS_STILL : ""),
      );
    }
    return true;
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
