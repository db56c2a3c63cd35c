/**
 * Guest source: the controller, the object only the host holds. The host drives the guest
 * through it: deliver a response, set the clock, define the task's globals, watch the
 * script's promise, read its outcome and the `variables` view.
 *
 * @module
 */
import type { GuestCore } from "./guest_types.ts";
import type { FetchExports } from "./fetch.ts";
import type { FlowStateExports } from "./flowstate.ts";
import type { SchedulerExports } from "./timers.ts";

/** The controller's functions, as the host calls them. */
export interface GuestController {
  /** Names the execution (`FlowState.taskId`) and seeds `Math.random`, before any script. */
  identify(taskId: string, seed: number): void;
  /** Loads the guest modules named in `namesJson` (a VM image holds them loaded). */
  preload(namesJson: string): void;
  deliver(id: string, json: string, dataText: string, clockMs: number): boolean;
  /** Runs the callback of host timer `id` at guest clock `clockMs`: `"fired"`, or `"unarmed"`. */
  fire(id: number, clockMs: number): string;
  /** A signal arrived (`dataText` its data as JSON text, "" for none) at `clockMs`. */
  signal(name: string, dataText: string, clockMs: number): void;
  /** JSON array of the names of the signals awaited. */
  waits(): string;
  setClock(ms: number): void;
  defineGlobals(json: string): void;
  settle(promise: Promise<{ value: unknown }>): void;
  outcome(): string | undefined;
  variables(namesJson: string, maxChars: number): string;
}

/**
 * Builds the controller. It notes the globals that exist before user code runs, which the
 * `variables` view (a guest module loaded on the first request) leaves out.
 */
export function guestController(core: GuestCore): GuestController {
  const { JSONstringify, JSONparse, promiseThen, objectKeys, hide, quote, describe } = core;
  const { ErrorCtor, StringCtor } = core;

  const errorJson = (error: unknown) => {
    let name = "Error";
    let message;
    let stack = "";
    try {
      if (error instanceof ErrorCtor) {
        name = StringCtor(error.name);
        message = StringCtor(error.message);
        stack = error.stack === undefined ? "" : StringCtor(error.stack);
      } else {
        message = describe(error);
      }
    } catch {
      message = "[unprintable error]";
    }
    return '{"name":' + quote(name) + ',"message":' + quote(message) + ',"stack":' +
      quote(stack) + "}";
  };

  let outcome: string | undefined;
  let currentStep = -1;
  let started = false;
  core.baselineGlobals = core.getOwnPropertyNames(globalThis);
  const setClock = (ms: number) => {
    core.clock = ms;
    core.clockReads = 0;
    if (!started) {
      started = true;
      core.origin = ms;
    }
  };

  return {
    identify(taskId, seed) {
      core.taskId = taskId;
      core.reseed(seed);
    },
    preload(namesJson) {
      const names = JSONparse(namesJson) as string[];
      for (let i = 0; i < names.length; i++) core.use(names[i]!);
    },
    deliver(id, json, dataText, clockMs) {
      setClock(clockMs);
      if (!core.loaded("fetch")) return false;
      return (core.use("fetch") as unknown as FetchExports).deliver(id, json, dataText);
    },
    fire(id, clockMs) {
      setClock(clockMs);
      if (!core.loaded("timers")) return "unarmed";
      return (core.use("timers") as unknown as SchedulerExports).fire(id) ? "fired" : "unarmed";
    },
    signal(name, dataText, clockMs) {
      setClock(clockMs);
      (core.use("flowstate") as unknown as FlowStateExports)
        .deliver(name, dataText === "" ? undefined : JSONparse(dataText));
    },
    waits() {
      if (!core.loaded("flowstate")) return "[]";
      const names = (core.use("flowstate") as unknown as FlowStateExports).awaited();
      let out = "";
      for (let i = 0; i < names.length; i++) out += (i ? "," : "") + quote(names[i]);
      return "[" + out + "]";
    },
    setClock,
    defineGlobals(json) {
      const values = JSONparse(json);
      core.taskGlobals = values;
      for (const name of objectKeys(values)) hide(globalThis, name, values[name]);
    },
    settle(promise) {
      const step = ++currentStep;
      outcome = undefined;
      promiseThen.call(
        promiseThen.call(promise, (record: { value: unknown }) => record.value),
        (value) => {
          if (step !== currentStep) return;
          try {
            const json = JSONstringify(value);
            outcome = '{"done":true' + (json === undefined ? "" : ',"json":' + quote(json)) + "}";
          } catch (error) {
            outcome = '{"done":true,"result":true,"error":' + errorJson(error) + "}";
          }
        },
        (error) => {
          if (step !== currentStep) return;
          outcome = '{"done":true,"error":' + errorJson(error) + "}";
        },
      );
    },
    outcome() {
      return outcome;
    },
    variables(namesJson, maxChars) {
      const view = core.use("variables").view as (names: string, max: number) => string;
      return view(namesJson, maxChars);
    },
  };
}
