/**
 * The FetchFlow engine: a QuickJS VM whose guest `fetch()` pauses the script until the host
 * delivers a response, and whose paused state is a JSON journal that any fresh VM, in any
 * process, can replay to the same point.
 *
 * @module
 */
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime } from "quickjs-emscripten";
import { ExecutionError, type ExecutionErrorKind } from "./execution_error.ts";
import { GUEST_PRELUDE, HOST_BRIDGE_GLOBAL } from "./guest/prelude.ts";
import { jsonNestingExceeds, MAX_JSON_DEPTH } from "../json_depth.ts";
import { newCappedRuntime } from "./quickjs_modules.ts";
import type {
  EngineOptions,
  ExecutionResult,
  FetchRequest,
  FetchResponse,
  JournalEntry,
  LogEntry,
  LogLevel,
  Variant,
  VMState,
} from "./types.ts";

/** Defaults of every {@link EngineOptions} limit. */
export const ENGINE_DEFAULTS = {
  variant: "asyncify",
  timeLimitMs: 5_000,
  memoryLimitBytes: 64 * 1024 * 1024,
  maxStackBytes: 256 * 1024,
  maxCodeBytes: 1024 * 1024,
  maxPendingFetches: 100,
  maxJournalEntries: 20_000,
  maxJournalBytes: 64 * 1024 * 1024,
  maxLogEntries: 1_000,
  maxResultBytes: 4 * 1024 * 1024,
} as const satisfies Required<Omit<EngineOptions, "globals">>;

/** Engine options with every default filled in. */
export type ResolvedEngineOptions = Required<Omit<EngineOptions, "globals">>;

/** File name guest stack traces show for the task's code. */
const GUEST_FILE = "task.js";
/** `JS_EVAL_FLAG_ASYNC`: top-level await; the value is a promise of `{ value }`. */
const EVAL_FLAG_ASYNC = 128;
/** Longest console line kept, in characters. */
const MAX_LOG_LINE_CHARS = 8 * 1024;
/** Budget of the human-readable `variables` view, in characters of JSON. */
const MAX_VARIABLES_CHARS = 16 * 1024;
/** The `variables` view is recomputed at a pause when the last one is older than this, ms. */
const VARIABLES_REFRESH_MS = 200;
/** Time allowed to compute `variables`, ms. */
const VARIABLES_TIME_MS = 50;
/** Share of the memory cap above which a stuck script is taken to have run out of memory. */
const NEAR_MEMORY_CAP = 0.9;
/** Most variable names looked up for the `variables` view. */
const MAX_VARIABLE_NAMES = 200;
const LOG_LEVELS: readonly LogLevel[] = ["log", "info", "warn", "error", "debug"];
const DECLARATION = /\b(?:let|const|var)\s+([A-Za-z_$][\w$]*)/g;

const encoder = new TextEncoder();

/** Fills defaults into `options`. */
export function resolveEngineOptions(options: EngineOptions = {}): ResolvedEngineOptions {
  const resolved = { ...ENGINE_DEFAULTS } as ResolvedEngineOptions;
  for (const key of Object.keys(ENGINE_DEFAULTS) as (keyof ResolvedEngineOptions)[]) {
    const value = options[key];
    if (value !== undefined) (resolved as Record<string, unknown>)[key] = value;
  }
  if (resolved.variant !== "asyncify" && resolved.variant !== "sync") {
    throw new TypeError(
      `Cannot use engine variant "${resolved.variant}": use "asyncify" or "sync"`,
    );
  }
  return resolved;
}

interface Controller {
  object: QuickJSHandle;
  deliver: QuickJSHandle;
  setClock: QuickJSHandle;
  defineGlobals: QuickJSHandle;
  settle: QuickJSHandle;
  outcome: QuickJSHandle;
  variables: QuickJSHandle;
}

interface GuestErrorInfo {
  name: string;
  message: string;
  stack: string;
}

interface Outcome {
  done: true;
  json?: string;
  error?: GuestErrorInfo;
  /** The error happened while serializing the result. */
  result?: boolean;
}

interface Live {
  runtime: QuickJSRuntime;
  context: QuickJSContext;
  controller: Controller;
}

/**
 * A QuickJS VM that runs code until it completes or waits on `fetch()`.
 *
 * Keep one instance alive between {@link FetchVM.execute} and {@link FetchVM.resume} and
 * resumes are immediate; give {@link FetchVM.resume} a state this instance did not produce
 * (or call {@link FetchVM.restore}) and it replays the state's journal in a fresh VM first.
 * Calls on one instance must not overlap.
 */
export class FetchVM {
  readonly #options: ResolvedEngineOptions;
  #globals: Record<string, unknown>;
  #live: Live | null = null;
  #id: string = crypto.randomUUID();
  #variant: Variant;
  #seed: number = randomSeed();
  #code = "";
  #step = -1;
  #journal: JournalEntry[] = [];
  #journalBytes = 0;
  #pending = new Map<string, FetchRequest>();
  #requestCount = 0;
  #logs: LogEntry[] = [];
  #droppedLogs = 0;
  #segmentLogs: LogEntry[] = [];
  /** Requests of the journal being replayed, by index; `null` when running live. */
  #replay: FetchRequest[] | null = null;
  #abort: ExecutionError | null = null;
  #deadline = Infinity;
  #lastVariables: Record<string, unknown> = {};
  #variablesAt = -Infinity;
  /** Names declared by the code run so far, looked up for the `variables` view. */
  #declaredNames = new Set<string>();
  /** Computing the `variables` view: running out of time there is not a failure. */
  #inspecting = false;
  /** The VM's WebAssembly memory and its cap, to tell a memory exhaustion apart. */
  #memory: WebAssembly.Memory | null = null;

  constructor(options: EngineOptions = {}) {
    this.#options = resolveEngineOptions(options);
    this.#variant = this.#options.variant;
    this.#globals = options.globals ?? {};
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

  /** Creates the QuickJS VM. Called by `execute()` when needed. */
  async initialize(): Promise<void> {
    if (this.#live) return;
    const { runtime, memory } = await newCappedRuntime(
      this.#variant,
      this.#options.memoryLimitBytes,
    );
    this.#memory = memory;
    let context: QuickJSContext | undefined;
    try {
      runtime.setMaxStackSize(this.#options.maxStackBytes);
      runtime.setInterruptHandler(() => {
        if (this.#abort) return true;
        if (performance.now() > this.#deadline) {
          if (!this.#inspecting) {
            this.#abort = new ExecutionError(
              "timeout",
              "InternalError",
              `The script ran longer than its time limit of ${this.#options.timeLimitMs} ms in one run segment`,
            );
          }
          return true;
        }
        return false;
      });
      context = runtime.newContext();
      const controller = this.#installPrelude(context);
      this.#live = { runtime, context, controller };
    } catch (error) {
      context?.dispose();
      runtime.dispose();
      throw error;
    }
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
    this.#checkCodeSize(code);
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
    this.#append(step === 0 ? { type: "eval", step, at } : { type: "eval", step, at, code });
    if (step === 0) this.#code = code;
    return this.#segment(() => this.#evaluate(step, code, at));
  }

  /**
   * Delivers `response` to the paused execution `state` and runs it on. Uses the live VM
   * when `state` is this instance's latest state; otherwise replays `state` first.
   * A response whose id is not pending is refused with kind `"stale"`; nothing changes.
   */
  async resume(state: VMState, response: FetchResponse): Promise<ExecutionResult> {
    assertState(state);
    assertResponse(response);
    if (!state.pending.includes(response.id)) throw staleError(response.id, state.pending);
    const hot = this.#live !== null && state.id === this.#id &&
      state.journal.length === this.#journal.length &&
      sameEntry(state.journal.at(-1), this.#journal.at(-1));
    if (!hot) await this.restore(state);
    return this.#deliver(response);
  }

  /**
   * Delivers `response` to this live VM (the hot path of {@link FetchVM.resume}, for hosts
   * that keep the VM and know its journal length). Rejects with kind `"stale"` if the id
   * is not pending, and with kind `"internal"` if the VM is not live.
   */
  deliver(response: FetchResponse): Promise<ExecutionResult> {
    assertResponse(response);
    if (!this.#live) {
      return Promise.reject(
        new ExecutionError("internal", "Error", "The VM is not live; resume from a saved state"),
      );
    }
    return this.#deliver(response);
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
    this.#globals = state.globals;
    this.#code = state.code;
    this.#step = -1;
    this.#declaredNames.clear();
    this.#variablesAt = -Infinity;
    this.#journal = [];
    this.#journalBytes = 0;
    this.#pending.clear();
    this.#requestCount = 0;
    this.#logs = [...state.logs];
    this.#droppedLogs = state.droppedLogs;
    this.#replay = state.journal.flatMap((entry) =>
      entry.type === "request" ? [entry.request] : []
    );
    await this.initialize();
    try {
      return await this.#segment(() => {
        for (const entry of state.journal) {
          this.#journal.push(entry);
          this.#journalBytes += entryBytes(entry);
          if (entry.type === "eval") {
            this.#deadline = performance.now() + this.#options.timeLimitMs;
            this.#evaluate(entry.step, entry.step === 0 ? state.code : entry.code ?? "", entry.at);
            this.#drain();
          } else if (entry.type === "response") {
            const { id } = entry.response;
            if (!this.#pending.has(id)) {
              throw new ExecutionError(
                "nondeterminism",
                "NondeterminismError",
                `The journal answers fetch "${id}" but replaying the code did not ask for it`,
              );
            }
            this.#pending.delete(id);
            this.#deadline = performance.now() + this.#options.timeLimitMs;
            const [meta, data] = deliveryMessage(entry.response);
            this.#call(this.#live!.controller.deliver, id, meta, data, entry.at);
            this.#drain();
          }
          if (this.#abort) throw this.#abort;
        }
        const replay = this.#replay!;
        if (this.#requestCount < replay.length) {
          const missing = replay[this.#requestCount]!;
          throw new ExecutionError(
            "nondeterminism",
            "NondeterminismError",
            `Fetch #${this.#requestCount} was recorded as ${describeRequest(missing)} ` +
              `but replaying the code did not ask for it`,
          );
        }
        this.#replay = null;
      });
    } finally {
      this.#replay = null;
    }
  }

  /** Frees the VM. Safe to call twice; never throws. */
  dispose(): void {
    this.#disposeLive();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  // --- segments -------------------------------------------------------------------------

  /** Runs `body` under the segment's time limit, drains jobs, and reports the outcome. */
  #segment(body: () => void): Promise<ExecutionResult> {
    const live = this.#live;
    if (!live) {
      return Promise.reject(new ExecutionError("internal", "Error", "The VM is not initialized"));
    }
    this.#abort = null;
    this.#segmentLogs = [];
    this.#deadline = performance.now() + this.#options.timeLimitMs;
    try {
      body();
      this.#drain();
      if (this.#abort) throw this.#abort;
      return Promise.resolve(this.#report());
    } catch (error) {
      const failure = this.#classify(error);
      failure.logs = this.#segmentLogs;
      if (failure.kind !== "exception" && failure.kind !== "syntax") this.#disposeLive();
      return Promise.reject(failure);
    } finally {
      this.#deadline = Infinity;
    }
  }

  #evaluate(step: number, code: string, at: number): void {
    this.#checkCodeSize(code);
    for (const match of code.matchAll(DECLARATION)) {
      if (this.#declaredNames.size < MAX_VARIABLE_NAMES) this.#declaredNames.add(match[1]!);
    }
    const { context, controller } = this.#live!;
    this.#step = step;
    this.#call(controller.setClock, at);
    const evaluated = context.evalCode(code, GUEST_FILE, EVAL_FLAG_ASYNC);
    if (evaluated.error) {
      const info = this.#errorInfo(evaluated.error);
      evaluated.error.dispose();
      if (info.name === "SyntaxError" && !this.#abort) {
        throw new ExecutionError("syntax", info.name, info.message, { guestStack: info.stack });
      }
      throw this.#guestFailure(info);
    }
    try {
      const settled = context.callFunction(controller.settle, context.undefined, evaluated.value);
      if (settled.error) {
        const info = this.#errorInfo(settled.error);
        settled.error.dispose();
        throw this.#guestFailure(info);
      }
      settled.value.dispose();
    } finally {
      evaluated.value.dispose();
    }
  }

  #deliver(response: FetchResponse): Promise<ExecutionResult> {
    if (!this.#pending.has(response.id)) {
      return Promise.reject(staleError(response.id, [...this.#pending.keys()]));
    }
    const at = Date.now();
    const entry: JournalEntry = { type: "response", step: this.#step, response, at };
    const bytes = this.#checkJournalRoom(entry);
    const [meta, data] = deliveryMessage(response);
    return this.#segment(() => {
      this.#append(entry, bytes);
      this.#pending.delete(response.id);
      this.#call(this.#live!.controller.deliver, response.id, meta, data, at);
    });
  }

  /** Runs pending jobs until there are none (or the guest is interrupted). */
  #drain(): void {
    const { runtime } = this.#live!;
    for (;;) {
      const jobs = runtime.executePendingJobs(-1);
      if (jobs.error) {
        const info = this.#errorInfo(jobs.error);
        jobs.error.dispose();
        throw this.#guestFailure(info);
      }
      if (jobs.value === 0 || this.#abort) return;
    }
  }

  #report(): ExecutionResult {
    const { controller } = this.#live!;
    const outcomeJson = this.#call(controller.outcome);
    const logs = this.#segmentLogs;
    if (outcomeJson !== undefined) {
      const outcome = JSON.parse(outcomeJson) as Outcome;
      if (outcome.error) {
        if (outcome.result) {
          throw new ExecutionError(
            "exception",
            outcome.error.name,
            `The result cannot be converted to JSON: ${outcome.error.message}`,
          );
        }
        throw this.#guestFailure(outcome.error);
      }
      const result: ExecutionResult = { type: "completed", state: this.#snapshot({}), logs };
      if (outcome.json !== undefined) {
        if (jsonNestingExceeds(outcome.json, MAX_JSON_DEPTH)) {
          throw limitError(
            `The result nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels`,
          );
        }
        const bytes = encoder.encode(outcome.json).length;
        if (bytes > this.#options.maxResultBytes) {
          throw limitError(
            `The result is ${bytes} bytes of JSON, more than the limit of ${this.#options.maxResultBytes}`,
          );
        }
        result.result = JSON.parse(outcome.json);
      }
      return result;
    }
    if (this.#pending.size === 0) {
      if (this.#nearMemoryCap()) throw this.#memoryError();
      throw new ExecutionError(
        "deadlock",
        "DeadlockError",
        "The script is waiting on a promise that can never settle: no fetch is pending",
      );
    }
    const requests = [...this.#pending.values()];
    const state = this.#snapshot(this.#replay ? {} : this.#freshVariables());
    return { type: "paused", state, fetchRequest: requests[0], fetchRequests: requests, logs };
  }

  #snapshot(variables: Record<string, unknown>): VMState {
    return {
      id: this.#id,
      code: this.#code,
      variables,
      timestamp: Date.now(),
      version: 1,
      variant: this.#variant,
      seed: this.#seed,
      globals: this.#globals,
      journal: [...this.#journal],
      pending: [...this.#pending.keys()],
      logs: [...this.#logs],
      droppedLogs: this.#droppedLogs,
    };
  }

  /**
   * The `variables` view, recomputed when the last one is older than
   * {@link VARIABLES_REFRESH_MS}: it is for humans, and walking the globals at every pause
   * would cost more than the pause itself.
   */
  #freshVariables(): Record<string, unknown> {
    const now = performance.now();
    if (now - this.#variablesAt >= VARIABLES_REFRESH_MS) {
      this.#lastVariables = this.#variables();
      this.#variablesAt = now;
    }
    return this.#lastVariables;
  }

  #variables(): Record<string, unknown> {
    const deadline = this.#deadline;
    this.#deadline = performance.now() + VARIABLES_TIME_MS;
    this.#inspecting = true;
    try {
      const json = this.#call(
        this.#live!.controller.variables,
        JSON.stringify([...this.#declaredNames]),
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

  #installPrelude(context: QuickJSContext): Controller {
    const bridge = context.newObject();
    try {
      const record = context.newFunction("record", (json) => {
        return context.newString(this.#record(context.getString(json)));
      });
      context.setProp(bridge, "record", record);
      record.dispose();
      const log = context.newFunction("log", (level, message) => {
        this.#log(context.getString(level), context.getString(message));
      });
      context.setProp(bridge, "log", log);
      log.dispose();
      const seed = context.newNumber(this.#seed);
      context.setProp(bridge, "seed", seed);
      seed.dispose();
      context.setProp(context.global, HOST_BRIDGE_GLOBAL, bridge);
    } finally {
      bridge.dispose();
    }
    const object = context.unwrapResult(context.evalCode(GUEST_PRELUDE, "prelude.js", 0));
    const member = (name: string) => context.getProp(object, name);
    return {
      object,
      deliver: member("deliver"),
      setClock: member("setClock"),
      defineGlobals: member("defineGlobals"),
      settle: member("settle"),
      outcome: member("outcome"),
      variables: member("variables"),
    };
  }

  #record(json: string): string {
    const asked = JSON.parse(json) as {
      url: string;
      method: string;
      headers: Record<string, string>;
      body?: string;
    };
    const index = this.#requestCount++;
    if (this.#replay) {
      const recorded = this.#replay[index];
      if (!recorded) {
        throw this.#fail(
          new ExecutionError(
            "nondeterminism",
            "NondeterminismError",
            `Fetch #${index}: the journal has no request here but the code asked for ${
              describeRequest(asked)
            }`,
          ),
        );
      }
      if (
        recorded.url !== asked.url || (recorded.options.method ?? "GET") !== asked.method ||
        recorded.options.body !== asked.body
      ) {
        throw this.#fail(
          new ExecutionError(
            "nondeterminism",
            "NondeterminismError",
            `Fetch #${index} differs from the journal: recorded ${describeRequest(recorded)}, ` +
              `the code asked for ${describeRequest(asked)}`,
          ),
        );
      }
      this.#pending.set(recorded.id, recorded);
      return recorded.id;
    }
    if (this.#pending.size >= this.#options.maxPendingFetches) {
      throw this.#fail(limitError(
        `Too many pending fetches: the limit is ${this.#options.maxPendingFetches} at once`,
      ));
    }
    const request: FetchRequest = {
      id: newFetchId(index),
      url: asked.url,
      options: { method: asked.method, headers: asked.headers },
      timestamp: Date.now(),
    };
    if (asked.body !== undefined) request.options.body = asked.body;
    const entry: JournalEntry = { type: "request", step: this.#step, index, request };
    let bytes: number;
    try {
      bytes = this.#checkJournalRoom(entry);
    } catch (error) {
      throw this.#fail(error as ExecutionError);
    }
    this.#append(entry, bytes);
    this.#pending.set(request.id, request);
    return request.id;
  }

  #log(level: string, message: string): void {
    if (this.#replay) return;
    const entry: LogEntry = {
      level: LOG_LEVELS.includes(level as LogLevel) ? level as LogLevel : "log",
      message: message.length > MAX_LOG_LINE_CHARS
        ? `${message.slice(0, MAX_LOG_LINE_CHARS)}… [${
          message.length - MAX_LOG_LINE_CHARS
        } more characters]`
        : message,
      time: Date.now(),
    };
    this.#segmentLogs.push(entry);
    this.#logs.push(entry);
    if (this.#logs.length > this.#options.maxLogEntries) {
      this.#logs.splice(0, this.#logs.length - this.#options.maxLogEntries);
      this.#droppedLogs++;
    }
    if (this.#segmentLogs.length > this.#options.maxLogEntries) this.#segmentLogs.shift();
  }

  /** Records a fatal condition: the interrupt handler stops the guest at once. */
  #fail(error: ExecutionError): ExecutionError {
    this.#abort ??= error;
    return error;
  }

  // --- helpers ------------------------------------------------------------------------------

  #append(entry: JournalEntry, bytes = entryBytes(entry)): void {
    this.#journal.push(entry);
    this.#journalBytes += bytes;
  }

  /** Throws a `limit` error if `entry` does not fit in the journal; returns its size. */
  #checkJournalRoom(entry: JournalEntry): number {
    if (this.#journal.length + 1 > this.#options.maxJournalEntries) {
      throw limitError(
        `The journal is full: the limit is ${this.#options.maxJournalEntries} entries`,
      );
    }
    const bytes = entryBytes(entry);
    if (this.#journalBytes + bytes > this.#options.maxJournalBytes) {
      throw limitError(
        `The journal would grow to ${
          this.#journalBytes + bytes
        } bytes, more than the limit of ${this.#options.maxJournalBytes}`,
      );
    }
    return bytes;
  }

  #checkCodeSize(code: string): void {
    const bytes = encoder.encode(code).length;
    if (bytes > this.#options.maxCodeBytes) {
      throw limitError(
        `The code is ${bytes} bytes, more than the limit of ${this.#options.maxCodeBytes}`,
      );
    }
  }

  /**
   * Calls a controller function with string/number arguments and returns its result when
   * it is a string; disposes every handle it creates.
   */
  #call(fn: QuickJSHandle, ...args: (string | number)[]): string | undefined {
    const { context } = this.#live!;
    const handles = args.map((arg) =>
      typeof arg === "string" ? context.newString(arg) : context.newNumber(arg)
    );
    try {
      const result = context.callFunction(fn, context.undefined, handles);
      if (result.error) {
        const info = this.#errorInfo(result.error);
        result.error.dispose();
        throw this.#guestFailure(info);
      }
      const value = context.typeof(result.value) === "string"
        ? context.getString(result.value)
        : undefined;
      result.value.dispose();
      return value;
    } finally {
      for (const handle of handles) handle.dispose();
    }
  }

  #errorInfo(handle: QuickJSHandle): GuestErrorInfo {
    const { context } = this.#live!;
    try {
      const dumped = context.dump(handle) as unknown;
      if (dumped && typeof dumped === "object") {
        const { name, message, stack } = dumped as Record<string, unknown>;
        return {
          name: typeof name === "string" ? name : "Error",
          message: typeof message === "string" ? message : JSON.stringify(dumped),
          stack: typeof stack === "string" ? stack : "",
        };
      }
      return { name: "Error", message: String(dumped), stack: "" };
    } catch {
      return { name: "Error", message: "[unreadable guest error]", stack: "" };
    }
  }

  /** Maps a guest error to its kind, giving precedence to host-detected conditions. */
  #guestFailure(info: GuestErrorInfo): ExecutionError {
    if (this.#abort) return this.#abort;
    let kind: ExecutionErrorKind = "exception";
    let message = info.message;
    // Out of memory sometimes surfaces as a bare `null` thrown (QuickJS could not allocate the
    // error object itself): near the cap, an empty error is a memory exhaustion.
    const bare = info.message === "" || info.message === "null" ||
      info.message === "[unprintable error]";
    if (/out of memory/i.test(info.message) || (bare && this.#nearMemoryCap())) {
      return this.#memoryError(info.stack);
    } else if (info.name === "InternalError" && /stack overflow/i.test(info.message)) {
      kind = "stack";
      message =
        `Maximum call stack size exceeded (stack limit ${this.#options.maxStackBytes} bytes)`;
    }
    return new ExecutionError(kind, info.name, message, { guestStack: info.stack });
  }

  #memoryError(guestStack = ""): ExecutionError {
    return new ExecutionError(
      "memory",
      "InternalError",
      `The script ran out of memory (limit ${this.#options.memoryLimitBytes} bytes)`,
      { guestStack },
    );
  }

  /** Whether the VM's memory has grown to (nearly) its cap. */
  #nearMemoryCap(): boolean {
    const memory = this.#memory;
    return memory !== null &&
      memory.buffer.byteLength >= this.#options.memoryLimitBytes * NEAR_MEMORY_CAP;
  }

  /** Turns anything thrown while running into an {@link ExecutionError}. */
  #classify(error: unknown): ExecutionError {
    if (this.#abort) return this.#abort;
    if (error instanceof ExecutionError) return error;
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    if (error instanceof RangeError && /call stack/i.test(error.message)) {
      // QuickJS recursing in C (e.g. JSON.stringify of data nested thousands of levels deep)
      // exhausts the host stack before its own stack check fires.
      return new ExecutionError(
        "stack",
        "InternalError",
        "The script nested data or calls too deeply for the engine (host stack exhausted)",
        { cause: error },
      );
    }
    if (/memory/i.test(text)) {
      return new ExecutionError("memory", "RangeError", `The VM ran out of memory: ${text}`, {
        cause: error,
      });
    }
    return new ExecutionError("internal", "Error", `The VM failed: ${text}`, { cause: error });
  }

  #disposeLive(): void {
    const live = this.#live;
    this.#live = null;
    if (!live) return;
    try {
      for (const handle of Object.values(live.controller)) handle.dispose();
      live.context.dispose();
      live.runtime.dispose();
    } catch {
      // A VM that hit a fatal wasm error cannot be freed cleanly; dropping every reference
      // lets the garbage collector reclaim its whole WebAssembly instance.
    }
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

function limitError(message: string): ExecutionError {
  return new ExecutionError("limit", "LimitError", message);
}

function staleError(id: string, pending: readonly string[]): ExecutionError {
  const list = pending.length ? pending.map((p) => `"${p}"`).join(", ") : "none";
  return new ExecutionError(
    "stale",
    "StaleResponseError",
    `Fetch response "${id}" does not answer a pending request (pending: ${list})`,
  );
}

function describeRequest(
  request: FetchRequest | { url: string; method: string; body?: string },
): string {
  const method = "options" in request ? request.options.method ?? "GET" : request.method;
  const body = "options" in request ? request.options.body : request.body;
  const shownBody = body === undefined
    ? ""
    : ` with body ${JSON.stringify(body.length > 80 ? `${body.slice(0, 80)}…` : body)}`;
  return `${method} ${request.url}${shownBody}`;
}

/** Whether two journal entries are the same event (same object, or equal JSON). */
function sameEntry(a: JournalEntry | undefined, b: JournalEntry | undefined): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** The response without its data, and the data as JSON text ("" when absent). */
function deliveryMessage(response: FetchResponse): [string, string] {
  const { data, ...meta } = response;
  return [JSON.stringify(meta), data === undefined ? "" : JSON.stringify(data)];
}

function entryBytes(entry: JournalEntry): number {
  return JSON.stringify(entry).length;
}

function newFetchId(index: number): string {
  const random = crypto.getRandomValues(new Uint8Array(4));
  const hex = Array.from(random, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `fetch_${Date.now()}_${index}_${hex}`;
}

function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

function assertState(state: VMState): void {
  const ok = state !== null && typeof state === "object" && state.version === 1 &&
    typeof state.id === "string" && typeof state.code === "string" &&
    Array.isArray(state.journal) && Array.isArray(state.pending) &&
    Array.isArray(state.logs) && typeof state.seed === "number" &&
    (state.variant === "asyncify" || state.variant === "sync");
  if (!ok) throw new TypeError("Cannot resume: the state is not a FetchFlow VMState (version 1)");
}

function assertResponse(response: FetchResponse): void {
  if (response === null || typeof response !== "object" || typeof response.id !== "string") {
    throw new TypeError("Cannot resume: the fetch response must be an object with a string id");
  }
}
