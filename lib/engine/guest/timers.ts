/**
 * Guest source: `setTimeout`, `clearTimeout`, `setInterval`, `clearInterval`, as the HTML
 * standard defines their arguments: a handler that is not a function is code (evaluated in
 * the global scope when the timer fires), the delay is converted like a WebIDL `long`
 * (`ToNumber`, then modulo 2^32; negative means 0), extra arguments are passed to the
 * handler, ids are positive integers shared by both kinds, and clearing an unknown id does
 * nothing. Each timer is a host timer: real time passes before it fires, and a replay fires
 * it at the same point of the journal. There is no 4 ms clamping of nested timers.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { SchedulerExports } from "./scheduler.ts";

function timersFactory(core: GuestCore, use: GuestUse): GuestExports {
  const scheduler = use("scheduler") as unknown as SchedulerExports;
  const { OrigMap, mapGet, mapSet, mapDelete, StringCtor, reflectApply, indirectEval } = core;
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
  return { setTimeout, setInterval, clearTimeout, clearInterval };
}

/** The timer globals. */
export const timersModule: GuestModule = {
  name: "timers",
  globals: ["setTimeout", "setInterval", "clearTimeout", "clearInterval"],
  factory: timersFactory,
};
