/**
 * Guest source: `queueMicrotask`. The callback runs as a promise job, in order with the
 * script's other jobs; an exception it throws is reported as a listener's would be.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { EventsExports } from "./events.ts";

function microtaskFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { TypeErrorCtor, promiseThen, promiseResolve } = core;
  return {
    queueMicrotask: function queueMicrotask(callback: () => void): void {
      if (arguments.length < 1) {
        throw new TypeErrorCtor(
          "Failed to execute 'queueMicrotask': 1 argument required, but only 0 present",
        );
      }
      if (typeof callback !== "function") {
        throw new TypeErrorCtor(
          "Failed to execute 'queueMicrotask': the callback is not a function",
        );
      }
      promiseThen.call(promiseResolve(undefined), () => {
        try {
          callback();
        } catch (error) {
          (use("events") as EventsExports).report(error);
        }
      });
    },
  };
}

/** The `queueMicrotask` global. */
export const microtaskModule: GuestModule = {
  name: "microtask",
  globals: ["queueMicrotask"],
  factory: microtaskFactory,
};
