/**
 * The state of one FetchVM and its low-level steps: the live QuickJS VM and the host
 * functions the guest calls, evaluating code, draining jobs, firing a timer or a signal,
 * and the interrupt handler that enforces the time limit. Internal to the engine: the
 * public face is {@link FetchVM}.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- the engine is imported by path from other projects
import type { QuickJSHandle } from "npm:quickjs-emscripten@0.32.0";
import { ExecutionError } from "./execution_error.ts";
import { type FailureContext, guestFailure } from "./failures.ts";
import { callController, errorInfo, type GuestErrorInfo } from "./host_bridge.ts";
import { HostCalls } from "./host_calls.ts";
import { Journal } from "./journal.ts";
import { checkCodeSize, type ResolvedEngineOptions, resolveEngineOptions } from "./limits.ts";
import { createLiveVM, disposeLiveVM, type LiveVM } from "./live_vm.ts";
import { LogBook } from "./log_book.ts";
import type { AskedRequest, Replay } from "./replay.ts";
import { Requests } from "./requests.ts";
import { Timers } from "./timers.ts";
import type { EngineOptions, Signal, Variant } from "./types.ts";
import { VariablesView } from "./variables_view.ts";
import { entropyKey, randomEntropy, randomSeed } from "./vm_state.ts";

/** File name guest stack traces show for the task's code. */
const GUEST_FILE = "task.js";
/** Added to a time-limit error when the guest kept reading its clock. */
const CLOCK_STANDS_STILL = ". It read Date.now() or new Date() over and over: the guest clock " +
  "stands still within a run segment (it moves only when a fetch, timer or signal is answered), " +
  "so a loop waiting for it to pass a time never ends. To wait, await FlowState.sleep(ms) or " +
  "new Promise((resolve) => setTimeout(resolve, ms)) instead of spinning on the clock";
/** `JS_EVAL_FLAG_ASYNC`: top-level await; the value is a promise of `{ value }`. */
const EVAL_FLAG_ASYNC = 128;

/** The state of one FetchVM, shared by the engine files that run its segments. */
export class VMCore {
  readonly options: ResolvedEngineOptions;
  globals: Record<string, unknown>;
  live: LiveVM | null = null;
  id: string;
  variant: Variant;
  seed: number = randomSeed();
  entropy: string = randomEntropy();
  /** The pure host calls of the live VM (a new set, like a new VM, for every replay). */
  calls: HostCalls | null = null;
  code = "";
  step = -1;
  readonly journal: Journal;
  readonly requests: Requests;
  readonly timers: Timers;
  /** The guest clock as last set (ms since the epoch). */
  clock = 0;
  readonly logs: LogBook;
  /** The journal being replayed; `null` when running live. */
  replay: Replay | null = null;
  abort: ExecutionError | null = null;
  deadline = Infinity;
  readonly variables = new VariablesView();
  /** Computing the `variables` view: running out of time there is not a failure. */
  inspecting = false;
  /** What classifying a failure needs to know about this VM. */
  readonly failure: FailureContext;

  constructor(options: EngineOptions) {
    this.options = resolveEngineOptions(options);
    this.variant = this.options.variant;
    this.globals = options.globals ?? {};
    this.id = options.id ?? crypto.randomUUID();
    this.timers = new Timers(this.options.maxTimers);
    this.journal = new Journal(this.options.maxJournalEntries, this.options.maxJournalBytes);
    this.requests = new Requests(this.options.maxPendingFetches, this.journal);
    this.logs = new LogBook(this.options.maxLogEntries);
    this.failure = {
      memoryLimitBytes: this.options.memoryLimitBytes,
      maxStackBytes: this.options.maxStackBytes,
      memory: null,
    };
  }

  /** Creates the QuickJS VM if none is live. */
  async initialize(): Promise<void> {
    if (this.live) return;
    this.calls = new HostCalls(entropyKey(this.entropy));
    this.live = await createLiveVM({
      variant: this.variant,
      memoryLimitBytes: this.options.memoryLimitBytes,
      maxStackBytes: this.options.maxStackBytes,
      shouldInterrupt: () => this.#shouldInterrupt(),
      taskId: this.id,
      seed: this.seed,
      fromImage: this.options.vmImages,
      host: {
        record: (json) => this.#record(json),
        abortRequest: (id) => this.#abortRequest(id),
        log: (level, message) => {
          this.#refuseWhileInspecting();
          if (!this.replay) this.logs.add(level, message);
        },
        setTimer: (delayMs, weak) => this.#setTimer(delayMs, weak),
        clearTimer: (id) => this.timers.disarm(id),
        calls: {
          call: (op, arg, bytes) => {
            this.#refuseWhileInspecting();
            return this.calls!.call(op, arg, bytes);
          },
        },
      },
    });
    this.failure.memory = this.live.memory;
    if (Object.keys(this.globals).length > 0) {
      this.call(this.live.controller.defineGlobals, JSON.stringify(this.globals));
    }
  }

  /** Evaluates step `step`'s `code` at guest clock `at` and waits for its top level. */
  evaluate(step: number, code: string, at: number): void {
    checkCodeSize(code, this.options.maxCodeBytes);
    this.variables.noteCode(code);
    const { context, controller } = this.live!;
    this.step = step;
    this.clock = at;
    this.call(controller.setClock, at);
    const evaluated = context.evalCode(code, GUEST_FILE, EVAL_FLAG_ASYNC);
    if (evaluated.error) {
      const info = errorInfo(context, evaluated.error);
      evaluated.error.dispose();
      if (info.name === "SyntaxError" && !this.abort) {
        throw new ExecutionError("syntax", info.name, info.message, { guestStack: info.stack });
      }
      throw this.guestFailure(info);
    }
    try {
      const settled = context.callFunction(controller.settle, context.undefined, evaluated.value);
      if (settled.error) {
        const info = errorInfo(context, settled.error);
        settled.error.dispose();
        throw this.guestFailure(info);
      }
      settled.value.dispose();
    } finally {
      evaluated.value.dispose();
    }
  }

  /** Gives `signal` to the guest at clock `at` and drains the jobs it queued. */
  runSignal(signal: Signal, at: number): void {
    this.clock = at;
    const data = signal.data === undefined ? "" : JSON.stringify(signal.data);
    this.call(this.live!.controller.signal, signal.name, data, at);
    this.drain();
  }

  /** Fires armed timer `id` at guest clock `at` and drains the jobs it queued. */
  runTimer(id: number, at: number): void {
    this.timers.disarm(id);
    this.clock = at;
    const fired = this.call(this.live!.controller.fire, id, at);
    if (fired !== "fired") {
      throw new ExecutionError("internal", "Error", `Timer ${id} has no callback in the guest`);
    }
    this.drain();
  }

  /** Runs pending jobs until there are none (or the guest is interrupted). */
  drain(): void {
    const { runtime, context } = this.live!;
    for (;;) {
      const jobs = runtime.executePendingJobs(-1);
      if (jobs.error) {
        const info = errorInfo(context, jobs.error);
        jobs.error.dispose();
        throw this.guestFailure(info);
      }
      if (jobs.value === 0 || this.abort) return;
    }
  }

  /** Calls controller function `fn` of the live VM; a guest error becomes its failure. */
  call(fn: QuickJSHandle, ...args: (string | number)[]): string | undefined {
    return callController(this.live!.context, fn, args, (info) => this.guestFailure(info));
  }

  /** Maps a guest error to its kind, giving precedence to host-detected conditions. */
  guestFailure(info: GuestErrorInfo): ExecutionError {
    return this.abort ?? guestFailure(info, this.failure);
  }

  /** Frees the live VM, if any. */
  disposeLive(): void {
    const live = this.live;
    this.live = null;
    if (live) disposeLiveVM(live);
  }

  // --- host functions called by the guest -------------------------------------------------

  #record(json: string): string {
    this.#refuseWhileInspecting();
    try {
      return this.requests.record(JSON.parse(json) as AskedRequest, this.step, this.replay);
    } catch (error) {
      throw this.#fail(error as ExecutionError);
    }
  }

  #abortRequest(id: string): void {
    this.#refuseWhileInspecting();
    try {
      this.requests.abort(id, this.step, this.clock, this.replay);
    } catch (error) {
      throw this.#fail(error as ExecutionError);
    }
  }

  #setTimer(delayMs: number, weak: boolean): number {
    try {
      if (!(delayMs >= 0) || delayMs === Infinity) {
        throw new ExecutionError("internal", "Error", `Invalid timer delay ${delayMs}`);
      }
      return this.timers.arm(delayMs, this.clock, weak);
    } catch (error) {
      throw this.#fail(error as ExecutionError);
    }
  }

  /**
   * Inspecting guest values must not act: a host call made then (guest code the view ran
   * after all) is refused with an error the guest sees, and nothing is recorded.
   */
  #refuseWhileInspecting(): void {
    if (this.inspecting) {
      throw new Error("Host calls are refused while the variables view is computed");
    }
  }

  /** Records a fatal condition: the interrupt handler stops the guest at once. */
  #fail(error: ExecutionError): ExecutionError {
    this.abort ??= error;
    return error;
  }

  /** The interrupt handler: stops the guest on a fatal condition or past the deadline. */
  #shouldInterrupt(): boolean {
    if (this.abort) return true;
    if (performance.now() <= this.deadline) return false;
    if (!this.inspecting) {
      this.abort = new ExecutionError(
        "timeout",
        "InternalError",
        `The script ran longer than its time limit of ${this.options.timeLimitMs} ms in one run segment` +
          (this.calls?.clockStuck ? CLOCK_STANDS_STILL : ""),
      );
    }
    return true;
  }
}
