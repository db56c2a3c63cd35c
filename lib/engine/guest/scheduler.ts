/**
 * Guest source: the guest side of host timers, shared by `setTimeout`/`setInterval` and
 * `FlowState`. Arming asks the host for a timer id and keeps the callback; the host fires a
 * timer through the controller's `fire` when it is due (or when a replay's journal says it
 * fired), which runs the callback once.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule } from "./guest_types.ts";

/** What the scheduler module exports (it defines no global). */
export interface SchedulerExports {
  /** Runs `callback` once, `delayMs` (finite, >= 0) after the guest clock; returns the id. */
  after(delayMs: number, callback: () => void): number;
  /** Disarms timer `id` (no-op when it already fired or was cancelled). */
  cancel(id: number): void;
  /** Runs the callback of timer `id`; false when it is not armed. */
  fire(id: number): boolean;
}

function schedulerFactory(core: GuestCore): GuestExports {
  const { OrigMap, mapGet, mapSet, mapDelete } = core;
  const setTimer = core.host.setTimer;
  const clearTimer = core.host.clearTimer;
  const callbacks = new OrigMap<number, () => void>();
  const exports: SchedulerExports = {
    after(delayMs, callback) {
      const id = setTimer(delayMs);
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
  return exports as unknown as GuestExports;
}

/** The host timers' guest side (no global). */
export const schedulerModule: GuestModule = {
  name: "scheduler",
  globals: [],
  factory: schedulerFactory,
};
