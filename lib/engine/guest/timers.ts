/**
 * Guest source: `setTimeout`, `clearTimeout`, `setInterval`, `clearInterval`, as the HTML
 * standard defines their arguments: a handler that is not a function is code (evaluated in
 * the global scope when the timer fires), the delay is converted like a WebIDL `long`
 * (`ToNumber`, then modulo 2^32; negative means 0), extra arguments are passed to the
 * handler, ids are positive integers shared by both kinds, and clearing an unknown id does
 * nothing. Each timer is a host timer: real time passes before it fires, and a replay fires
 * it at the same point of the journal. There is no 4 ms clamping of nested timers.
 *
 * The module also exports the guest side of host timers ({@link SchedulerExports}), which
 * `FlowState` shares: arming asks the host for a timer id and keeps the callback; the host
 * fires a timer through the controller's `fire` when it is due (or when a replay's journal
 * says it fired), which runs the callback once.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule } from "./guest_types.ts";

/** The host timers' guest side, exported by the timers module besides its globals. */
export interface SchedulerExports {
  /**
   * Runs `callback` once, `delayMs` (finite, >= 0) after the guest clock; returns the id. A
   * `weak` timer does not keep a task whose code has finished from completing (like an
   * unref'd timer in Deno: `AbortSignal.timeout`'s).
   */
  after(delayMs: number, callback: () => void, weak?: boolean): number;
  /** Disarms timer `id` (no-op when it already fired or was cancelled). */
  cancel(id: number): void;
  /** Runs the callback of timer `id`; false when it is not armed. */
  fire(id: number): boolean;
}

function timersFactory(core: GuestCore): GuestExports {
  const { OrigMap, mapGet, mapSet, mapDelete, StringCtor, reflectApply, indirectEval } = core;
  const setTimer = core.host.setTimer;
  const clearTimer = core.host.clearTimer;
  /** Callbacks of the armed host timers, by host timer id. */
  const callbacks = new OrigMap<number, () => void>();
  const scheduler: SchedulerExports = {
    after(delayMs, callback, weak) {
      const id = setTimer(delayMs, weak === true);
      mapSet.call(callbacks, id, callback);
      return id;
    },
    cancel(id) {
      if (mapDelete.call(callbacks, id)) clearTimer(id);
    },
    fire(id) {
      const callback = mapGet.call(callbacks, id) as (() => void) | undefined;
      if (callback === undefined) return false;
      mapDelete.call(callbacks, id);
      callback();
      return true;
    },
  };
  /** Armed guest timers: id -> host timer id. */
  const active = new OrigMap<number, number>();
  let lastId = 0;

  const arm = (
    id: number,
    handler: string | ((...args: unknown[]) => unknown),
    delay: number,
    args: unknown[],
    repeat: boolean,
  ) => {
    const hostId = scheduler.after(delay, () => {
      // An interval is armed again before its handler runs, so the handler may clear it.
      if (repeat) arm(id, handler, delay, args, repeat);
      else mapDelete.call(active, id);
      if (typeof handler === "function") reflectApply(handler, globalThis, args);
      else indirectEval(handler);
    });
    mapSet.call(active, id, hostId);
  };

  const start = (handler: unknown, timeout: unknown, args: unknown[], repeat: boolean) => {
    const code = typeof handler === "function"
      ? handler as (...args: unknown[]) => unknown
      : StringCtor(handler);
    const delay = +(timeout as number) | 0;
    const id = ++lastId;
    arm(id, code, delay < 0 ? 0 : delay, args, repeat);
    return id;
  };

  const clear = (id: unknown) => {
    const key = +(id as number) | 0;
    const hostId = mapGet.call(active, key) as number | undefined;
    if (hostId === undefined) return;
    mapDelete.call(active, key);
    scheduler.cancel(hostId);
  };

  function setTimeout(handler: unknown, timeout: unknown = 0, ...args: unknown[]): number {
    return start(handler, timeout, args, false);
  }
  function setInterval(handler: unknown, timeout: unknown = 0, ...args: unknown[]): number {
    return start(handler, timeout, args, true);
  }
  function clearTimeout(id: unknown = 0): void {
    clear(id);
  }
  function clearInterval(id: unknown = 0): void {
    clear(id);
  }
  return { setTimeout, setInterval, clearTimeout, clearInterval, ...scheduler };
}

/** The timer globals. */
export const timersModule: GuestModule = {
  name: "timers",
  globals: ["setTimeout", "setInterval", "clearTimeout", "clearInterval"],
  factory: timersFactory,
};
