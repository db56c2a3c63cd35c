/**
 * Types shared by the guest sources. The guest sources are TypeScript functions that run
 * inside QuickJS, shipped there by their source text (`String(fn)`): such a function may use
 * only its parameters and the JavaScript built-ins, never a binding of the module it is
 * written in, and no line of it may be inside a multi-line template literal (the assembly
 * trims every line). `deno check` and `deno lint` read them like any other code.
 *
 * @module
 */

/** Functions and values the host gives the guest (removed from the global object at once). */
export interface GuestHost {
  /** Records a request (JSON of `{ url, method, headers, body? }`); returns its id. */
  record(json: string): string;
  /** Aborts request `id` (the guest no longer waits for it; journaled). */
  abortRequest(id: string): void;
  /** Writes a console line. */
  log(level: string, message: string): void;
  /**
   * Arms a host timer due `delayMs` (finite, >= 0) after the guest clock; returns its id. A
   * `weak` one does not keep a finished task from completing.
   */
  setTimer(delayMs: number, weak: boolean): number;
  /** Disarms host timer `id`. */
  clearTimer(id: number): void;
  /** The factory of a lazy guest module, evaluated on first use. */
  load(name: string): GuestFactory;
  /**
   * A pure host call (see `host_calls.ts`): `arg` is JSON, the result JSON text or, for byte
   * results, an `ArrayBuffer`. Throws the host's `TypeError`, `RangeError` or error name.
   */
  call(op: string, arg: string, bytes?: ArrayBuffer): string | ArrayBuffer;
}

/** Exports of a guest module: its globals by name, and internals other modules use. */
export type GuestExports = Record<string, unknown>;

/** Loads (once) and returns the exports of the guest module `name`. */
export type GuestUse = (name: string) => GuestExports;

/** The function a guest module's source evaluates to. */
export type GuestFactory = (core: GuestCore, use: GuestUse) => GuestExports;

/**
 * A guest API loaded on first use: the getters of its globals evaluate it. A module without
 * globals is internal: another module (or the controller) loads it with `use(name)`.
 */
export interface GuestModule {
  /** Module name, as `use(name)` asks for it. */
  name: string;
  /** Globals it defines (each must be a key of its exports). */
  globals: readonly string[];
  /**
   * The module's code: a factory shipped by its source text, or the source text itself for
   * code generated from a package (`{ source }`, a script whose value is the factory).
   */
  factory: GuestFactory | { source: string };
}

/**
 * What every guest source shares: the host bridge, the built-ins captured before user code
 * ran (so a script that replaces `JSON`, `Promise` or `Object.prototype` methods cannot
 * change how the host is answered), small helpers, and the guest clock.
 */
export interface GuestCore {
  host: GuestHost;
  /** Whether `value` is a Proxy the guest created (reading it would run its traps). */
  isProxy(value: unknown): boolean;
  /** Id of the execution (the task id on the server), set by the controller's `identify`. */
  taskId: string;
  /** Seeds the deterministic `Math.random` (the controller's `identify`). */
  reseed(seed: number): void;
  /** The guest clock (ms since the epoch): stands still within a run segment. */
  clock: number;
  /** The guest clock when the task started (`performance.timeOrigin`). */
  origin: number;
  /** Reads of the clock (`Date.now()`, `new Date()`) in this run segment. */
  clockReads: number;
  /** Own globals before user code ran (set by the controller). */
  baselineGlobals: string[];
  /** Loads a guest module and returns its exports. */
  use: GuestUse;
  /** Whether module `name` has been loaded. */
  loaded(name: string): boolean;
  /** The globals the host defined for the task (`input`...), as it defined them. */
  taskGlobals: Record<string, unknown>;
  JSONstringify: typeof JSON.stringify;
  JSONparse: typeof JSON.parse;
  OrigPromise: PromiseConstructor;
  promiseThen: typeof Promise.prototype.then;
  promiseResolve: <T>(value: T) => Promise<Awaited<T>>;
  promiseReject: (reason: unknown) => Promise<never>;
  OrigDate: DateConstructor;
  OrigMap: MapConstructor;
  mapGet: typeof Map.prototype.get;
  mapSet: typeof Map.prototype.set;
  mapHas: typeof Map.prototype.has;
  mapDelete: typeof Map.prototype.delete;
  setHas: typeof Set.prototype.has;
  defineProperty: typeof Object.defineProperty;
  objectKeys: typeof Object.keys;
  getOwnPropertyNames: typeof Object.getOwnPropertyNames;
  getOwnPropertyDescriptor: typeof Object.getOwnPropertyDescriptor;
  hasOwn: typeof Object.prototype.hasOwnProperty;
  isArray: typeof Array.isArray;
  arrayIncludes: typeof Array.prototype.includes;
  arrayPush: typeof Array.prototype.push;
  arrayShift: typeof Array.prototype.shift;
  arraySplice: typeof Array.prototype.splice;
  arrayIndexOf: typeof Array.prototype.indexOf;
  reflectApply: typeof Reflect.apply;
  StringCtor: StringConstructor;
  ErrorCtor: ErrorConstructor;
  TypeErrorCtor: TypeErrorConstructor;
  SyntaxErrorCtor: SyntaxErrorConstructor;
  RangeErrorCtor: RangeErrorConstructor;
  mathImul: typeof Math.imul;
  stringSlice: typeof String.prototype.slice;
  toLowerCase: typeof String.prototype.toLowerCase;
  toUpperCase: typeof String.prototype.toUpperCase;
  indirectEval: typeof eval;
  /** A JSON string literal of `String(text)` (never runs guest code). */
  quote(text: unknown): string;
  /** Whether a string is an HTTP token (a method or a header name). */
  isToken(text: string): boolean;
  /** `obj[key]` when it is an own property, else `undefined`. */
  own(obj: object, key: string): unknown;
  /** Defines a writable, configurable, non-enumerable data property. */
  hide(obj: object, name: PropertyKey, value: unknown): void;
  /**
   * Makes the string-named members of class `ctor` (prototype and static) enumerable, as
   * Web IDL defines an interface's operations and attributes.
   */
  webIdl(ctor: abstract new (...args: never[]) => unknown): void;
  /** One console argument as text. */
  describe(value: unknown): string;
}

/**
 * A pure host call: `arg` crosses as JSON, a JSON result is parsed, bytes come back as an
 * `ArrayBuffer`; a host `TypeError`, `RangeError` or `SyntaxError` is thrown as the guest's
 * own class, any other error as an `Error` with the host error's name. The `ask` export of
 * the `hostcall` module.
 */
export type GuestAsk = (op: string, arg: unknown, bytes?: ArrayBuffer) => unknown;
