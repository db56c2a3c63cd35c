/**
 * Guest source: the `FlowState` namespace, for what the web platform has no word for: the
 * task's own id and input, durable sleeps of any length, and signals from the outside world
 * (`POST /signal`).
 *
 * A signal is journaled once, when it arrives. If a `waitForSignal` of its name is waiting,
 * the oldest one resolves with its data; otherwise the signal is kept, and the next
 * `waitForSignal` of that name takes it at once. Each signal is taken by one wait.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { SchedulerExports } from "./timers.ts";

/** What the module exports besides the `FlowState` global. */
export interface FlowStateExports {
  /** A signal arrived: resolve the oldest wait for `name`, or keep `data` for the next one. */
  deliver(name: string, data: unknown): void;
  /** Names of the signals awaited, one per waiting call, oldest first. */
  awaited(): string[];
}

interface Waiter {
  resolve(value: unknown): void;
  timer: number;
}

function flowStateFactory(core: GuestCore, use: GuestUse): GuestExports {
  const scheduler = use("timers") as unknown as SchedulerExports;
  const { OrigMap, OrigPromise, mapGet, mapSet, mapDelete, StringCtor, TypeErrorCtor } = core;
  const { arrayPush, arrayShift, arraySplice, arrayIndexOf, own, quote, ErrorCtor } = core;
  /** Signals not yet taken, by name, oldest first. */
  const kept = new OrigMap<string, unknown[]>();
  /** Waiting calls, by name, oldest first. */
  const waiting = new OrigMap<string, Waiter[]>();
  /** Every waiting call's name, oldest first. */
  const order: string[] = [];

  const RangeErrorCtor = core.RangeErrorCtor;
  const delayOf = (value: unknown, what: string): number => {
    const ms = typeof value === "number" ? value : NaN;
    if (!(ms >= 0) || ms === Infinity) {
      throw new RangeErrorCtor(what + " must be a finite number of ms >= 0, got " + quote(value));
    }
    return ms;
  };

  const timeoutError = (message: string): Error => {
    // DOMException when the guest world has it; otherwise an Error with the same name and code.
    const DOMExceptionCtor = (globalThis as { DOMException?: new (m: string, n: string) => Error })
      .DOMException;
    if (typeof DOMExceptionCtor === "function") {
      return new DOMExceptionCtor(message, "TimeoutError");
    }
    const error = new ErrorCtor(message);
    core.hide(error, "name", "TimeoutError");
    core.hide(error, "code", 23);
    return error;
  };

  const forget = (name: string, waiter: Waiter) => {
    const list = mapGet.call(waiting, name) as Waiter[];
    arraySplice.call(list, arrayIndexOf.call(list, waiter), 1);
    if (list.length === 0) mapDelete.call(waiting, name);
    arraySplice.call(order, arrayIndexOf.call(order, name), 1);
  };

  function waitForSignal(name: unknown, options?: { timeoutMs?: unknown }): Promise<unknown> {
    return new OrigPromise((resolve, reject) => {
      const key = StringCtor(name);
      let timeoutMs: number | undefined;
      if (options !== undefined && options !== null) {
        if (typeof options !== "object") {
          throw new TypeErrorCtor("FlowState.waitForSignal: options must be an object");
        }
        const raw = options.timeoutMs;
        if (raw !== undefined) timeoutMs = delayOf(raw, "FlowState.waitForSignal: timeoutMs");
      }
      const queue = mapGet.call(kept, key) as unknown[] | undefined;
      if (queue !== undefined) {
        const data = arrayShift.call(queue);
        if (queue.length === 0) mapDelete.call(kept, key);
        resolve(data);
        return;
      }
      const waiter: Waiter = { resolve, timer: 0 };
      let list = mapGet.call(waiting, key) as Waiter[] | undefined;
      if (list === undefined) mapSet.call(waiting, key, list = []);
      arrayPush.call(list, waiter);
      arrayPush.call(order, key);
      if (timeoutMs !== undefined) {
        waiter.timer = scheduler.after(timeoutMs, () => {
          forget(key, waiter);
          reject(timeoutError("No signal " + quote(key) + " arrived within " + timeoutMs + " ms"));
        });
      }
    });
  }

  function sleep(ms: unknown): Promise<void> {
    return new OrigPromise((resolve) => {
      scheduler.after(delayOf(ms, "FlowState.sleep: ms"), () => resolve());
    });
  }

  const FlowState = {};
  core.hide(FlowState, "taskId", core.taskId);
  core.hide(FlowState, "input", own(core.taskGlobals, "input"));
  core.hide(FlowState, "waitForSignal", waitForSignal);
  core.hide(FlowState, "sleep", sleep);

  const exports: FlowStateExports = {
    deliver(name, data) {
      const list = mapGet.call(waiting, name) as Waiter[] | undefined;
      if (list === undefined) {
        let queue = mapGet.call(kept, name) as unknown[] | undefined;
        if (queue === undefined) mapSet.call(kept, name, queue = []);
        arrayPush.call(queue, data);
        return;
      }
      const waiter = list[0]!;
      forget(name, waiter);
      if (waiter.timer) scheduler.cancel(waiter.timer);
      waiter.resolve(data);
    },
    awaited() {
      return order;
    },
  };
  return { FlowState, ...exports };
}

/** The `FlowState` global. */
export const flowStateModule: GuestModule = {
  name: "flowstate",
  globals: ["FlowState"],
  factory: flowStateFactory,
};
