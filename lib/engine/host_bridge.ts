/**
 * The host bridge: the functions the guest may call (record and abort a request, write a
 * console line, arm and disarm a timer, load a guest API's source), the prelude evaluated with them, and the controller
 * handles the host drives the guest through. Every host function is pure or journaled, so a
 * replay sees the same guest world.
 *
 * @module
 */
import type {
  QuickJSContext,
  QuickJSHandle,
  VmFunctionImplementation,
  // deno-lint-ignore no-import-prefix -- the engine is imported by path from other projects
} from "npm:quickjs-emscripten@0.32.0";
import { GUEST_PRELUDE, guestModuleSource } from "./guest/prelude.ts";
import type { HostCalls } from "./host_calls.ts";

/** Handles of the guest controller's functions (see `guest/controller.ts`). */
export interface Controller {
  object: QuickJSHandle;
  identify: QuickJSHandle;
  preload: QuickJSHandle;
  deliver: QuickJSHandle;
  fire: QuickJSHandle;
  signal: QuickJSHandle;
  waits: QuickJSHandle;
  setClock: QuickJSHandle;
  defineGlobals: QuickJSHandle;
  settle: QuickJSHandle;
  outcome: QuickJSHandle;
  variables: QuickJSHandle;
}

/** What the host does when the guest calls it. */
export interface HostFunctions {
  /** The guest called `fetch()`: record the request (JSON) and return its id. */
  record(json: string): string;
  /** The guest aborted request `id` (its signal aborted before the response came). */
  abortRequest(id: string): void;
  /** The guest wrote a console line. */
  log(level: string, message: string): void;
  /**
   * The guest armed a timer due `delayMs` after its clock; returns the timer's id. A `weak`
   * one does not keep a task whose code has finished from completing.
   */
  setTimer(delayMs: number, weak: boolean): number;
  /** The guest disarmed timer `id`. */
  clearTimer(id: number): void;
  /** The pure host calls (URL, encoding, base64, digests, entropy) of this VM. */
  calls: Pick<HostCalls, "call">;
}

/** The error message a guest error value yields: name, message and stack. */
export interface GuestErrorInfo {
  name: string;
  message: string;
  stack: string;
}

/** The bridge's functions, in the order they are created (a VM image depends on it). */
export type HostFunctionTable =
  readonly (readonly [string, VmFunctionImplementation<QuickJSHandle>])[];

/** The functions the guest calls, for `context`, each turning its handles into `host` calls. */
export function hostFunctionTable(
  context: QuickJSContext,
  host: HostFunctions,
): HostFunctionTable {
  return [
    ["record", (json) => context.newString(host.record(context.getString(json)))],
    ["abortRequest", (id) => {
      host.abortRequest(context.getString(id));
    }],
    ["log", (level, message) => {
      host.log(context.getString(level), context.getString(message));
    }],
    ["setTimer", (delay, weak) => {
      const isWeak = weak !== undefined && context.typeof(weak) === "boolean" &&
        context.dump(weak) === true;
      return context.newNumber(host.setTimer(context.getNumber(delay), isWeak));
    }],
    ["clearTimer", (id) => {
      host.clearTimer(context.getNumber(id));
    }],
    ["load", (nameHandle) => {
      const name = context.getString(nameHandle);
      const source = guestModuleSource(name);
      if (source === undefined) throw new Error(`There is no guest module "${name}"`);
      return context.evalCode(source, `flowstate:${name}.js`, 0);
    }],
    ["call", (op, arg, bytes) => {
      let input: Uint8Array | undefined;
      if (bytes !== undefined && context.typeof(bytes) === "object") {
        using buffer = context.getArrayBuffer(bytes);
        input = buffer.value.slice();
      }
      const result = host.calls.call(context.getString(op), context.getString(arg), input);
      if (typeof result === "string") return context.newString(result);
      const copy = new Uint8Array(result.length);
      copy.set(result);
      return context.newArrayBuffer(copy.buffer);
    }],
  ];
}

/**
 * Evaluates the prelude in `context` and calls it with a bridge of `functions`; returns the
 * controller. Every handle it makes but the controller's is freed before it returns, so the
 * VM at rest holds nothing of the host's but those (what a VM image needs).
 */
export function installPrelude(context: QuickJSContext, functions: HostFunctionTable): Controller {
  const prelude = context.unwrapResult(context.evalCode(GUEST_PRELUDE, "prelude.js", 0));
  let object: QuickJSHandle;
  try {
    const bridge = context.newObject();
    try {
      for (const [name, implementation] of functions) {
        const fn = context.newFunction(name, implementation);
        context.setProp(bridge, name, fn);
        fn.dispose();
      }
      object = context.unwrapResult(context.callFunction(prelude, context.undefined, bridge));
    } finally {
      bridge.dispose();
    }
  } finally {
    prelude.dispose();
  }
  return controllerOf(context, object);
}

/** The controller's function handles, read from its `object`. */
export function controllerOf(context: QuickJSContext, object: QuickJSHandle): Controller {
  const member = (name: string) => context.getProp(object, name);
  return {
    object,
    identify: member("identify"),
    preload: member("preload"),
    deliver: member("deliver"),
    fire: member("fire"),
    signal: member("signal"),
    waits: member("waits"),
    setClock: member("setClock"),
    defineGlobals: member("defineGlobals"),
    settle: member("settle"),
    outcome: member("outcome"),
    variables: member("variables"),
  };
}

/**
 * Calls a controller function with string/number arguments and returns its result when it
 * is a string; disposes every handle it creates. A guest exception is turned into an error
 * by `fail`.
 */
export function callController(
  context: QuickJSContext,
  fn: QuickJSHandle,
  args: readonly (string | number)[],
  fail: (info: GuestErrorInfo) => Error,
): string | undefined {
  const handles = args.map((arg) =>
    typeof arg === "string" ? context.newString(arg) : context.newNumber(arg)
  );
  try {
    const result = context.callFunction(fn, context.undefined, handles);
    if (result.error) {
      const info = errorInfo(context, result.error);
      result.error.dispose();
      throw fail(info);
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

/** Name, message and stack of a guest error value (never throws). */
export function errorInfo(context: QuickJSContext, handle: QuickJSHandle): GuestErrorInfo {
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

/** Frees the controller's handles. */
export function disposeController(controller: Controller): void {
  for (const handle of Object.values(controller)) handle.dispose();
}
