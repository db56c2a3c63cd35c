/**
 * Guest source: `AbortController` and `AbortSignal` (`abort()`, `any()`, `timeout()`,
 * `throwIfAborted()`, `reason`, `onabort`), as the DOM standard defines them. `timeout()`
 * arms a weak host timer (the timers module's, whatever the script did to `setTimeout`): a
 * durable timer that does not keep a task whose code has finished from completing, as
 * Deno's does not keep it running.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { EventsExports } from "./events.ts";
import type { SchedulerExports } from "./timers.ts";

/** What the abort module exports besides its globals. */
export interface AbortExports extends GuestExports {
  /**
   * Runs `algorithm(reason)` when `signal` aborts (at once if it has); the function returned
   * removes it (the DOM's "remove an abort algorithm"), so a long-lived signal does not keep
   * the algorithms of finished operations.
   */
  onAbort(signal: AbortSignal, algorithm: (reason: unknown) => void): () => void;
  /** The `AbortSignal` class, to check a value is one. */
  AbortSignal: typeof globalThis.AbortSignal;
}

function abortFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { TypeErrorCtor, arrayPush, arrayIndexOf, arraySplice } = core;
  const events = use("events") as EventsExports;
  const EventTarget = events.EventTarget as typeof globalThis.EventTarget;
  const Event = events.Event as typeof globalThis.Event;
  const DOMException = use("domexception").DOMException as typeof globalThis.DOMException;
  const isFinite = Number.isFinite;
  const MAX_TIMEOUT = Number.MAX_SAFE_INTEGER;
  const iteratorSymbol = Symbol.iterator;
  const scheduler = () => use("timers") as unknown as SchedulerExports;

  let create: () => AbortSignal;
  let signalAbort: (signal: AbortSignal, reason: unknown) => void;
  let addAlgorithm: (signal: AbortSignal, algorithm: (reason: unknown) => void) => () => void;
  let makeDependent: (result: AbortSignal, sources: AbortSignal[]) => void;
  let allowed = false;

  class AbortSignal extends EventTarget {
    #aborted = false;
    #reason: unknown = undefined;
    #algorithms: ((reason: unknown) => void)[] = [];
    #dependent = false;
    #sources: AbortSignal[] = [];
    #dependents: AbortSignal[] = [];
    #onabort: ((this: AbortSignal, event: Event) => unknown) | null = null;
    #handler: ((event: Event) => unknown) | null = null;
    static {
      create = () => {
        allowed = true;
        try {
          return new AbortSignal();
        } finally {
          allowed = false;
        }
      };
      addAlgorithm = (signal, algorithm) => {
        arrayPush.call(signal.#algorithms, algorithm);
        return () => {
          const at = arrayIndexOf.call(signal.#algorithms, algorithm);
          if (at !== -1) arraySplice.call(signal.#algorithms, at, 1);
        };
      };
      signalAbort = (signal, reason) => {
        if (signal.#aborted) return;
        signal.#aborted = true;
        signal.#reason = reason === undefined
          ? new DOMException("signal is aborted without reason", "AbortError")
          : reason;
        const toAbort: AbortSignal[] = [];
        for (const dependent of signal.#dependents) {
          if (!dependent.#aborted) {
            dependent.#aborted = true;
            dependent.#reason = signal.#reason;
            arrayPush.call(toAbort, dependent);
          }
        }
        signal.#runAbortSteps();
        for (const dependent of toAbort) dependent.#runAbortSteps();
      };
      makeDependent = (result, sources) => {
        result.#dependent = true;
        for (const source of sources) {
          const roots = source.#dependent ? source.#sources : [source];
          for (const root of roots) {
            if (root.#aborted) continue;
            let known = false;
            for (const s of result.#sources) if (s === root) known = true;
            if (known) continue;
            arrayPush.call(result.#sources, root);
            arrayPush.call(root.#dependents, result);
          }
        }
      };
    }
    constructor() {
      if (!allowed) throw new TypeErrorCtor("Illegal constructor");
      super();
    }
    #runAbortSteps(): void {
      const algorithms = this.#algorithms;
      this.#algorithms = [];
      for (const algorithm of algorithms) algorithm(this.#reason);
      this.dispatchEvent(events.trust(new Event("abort")));
    }
    static abort(reason: unknown = undefined): AbortSignal {
      const signal = create();
      signalAbort(signal, reason);
      return signal;
    }
    static timeout(milliseconds: unknown): AbortSignal {
      if (arguments.length < 1) {
        throw new TypeErrorCtor(
          "Failed to execute 'timeout' on 'AbortSignal': 1 argument required, but only 0 present",
        );
      }
      const ms = +(milliseconds as number);
      if (!isFinite(ms) || ms < 0 || ms > MAX_TIMEOUT) {
        throw new TypeErrorCtor(
          "Failed to execute 'timeout' on 'AbortSignal': " + ms +
            " is not a non-negative safe integer",
        );
      }
      const signal = create();
      scheduler().after(ms - (ms % 1), () => {
        signalAbort(signal, new DOMException("The operation timed out.", "TimeoutError"));
      }, true);
      return signal;
    }
    static any(signals: Iterable<AbortSignal>): AbortSignal {
      if (arguments.length < 1) {
        throw new TypeErrorCtor(
          "Failed to execute 'any' on 'AbortSignal': 1 argument required, but only 0 present",
        );
      }
      if (
        signals === null || (typeof signals !== "object" && typeof signals !== "function") ||
        typeof (signals as unknown as Record<PropertyKey, unknown>)[iteratorSymbol] !== "function"
      ) {
        throw new TypeErrorCtor("Failed to execute 'any' on 'AbortSignal': not a sequence");
      }
      const list: AbortSignal[] = [];
      for (const signal of signals) {
        if (!(signal instanceof AbortSignal)) {
          throw new TypeErrorCtor(
            "Failed to execute 'any' on 'AbortSignal': every item must be an AbortSignal",
          );
        }
        arrayPush.call(list, signal);
      }
      const result = create();
      for (const signal of list) {
        if (signal.aborted) {
          signalAbort(result, signal.reason);
          return result;
        }
      }
      makeDependent(result, list);
      return result;
    }
    get aborted(): boolean {
      return this.#aborted;
    }
    get reason(): unknown {
      return this.#reason;
    }
    throwIfAborted(): void {
      if (this.#aborted) throw this.#reason;
    }
    get onabort(): ((this: AbortSignal, event: Event) => unknown) | null {
      return this.#onabort;
    }
    set onabort(value: ((this: AbortSignal, event: Event) => unknown) | null) {
      const handler = typeof value === "function" || (typeof value === "object" && value)
        ? value
        : null;
      if (this.#handler === null && handler !== null) {
        this.#handler = (event: Event) => {
          const current = this.#onabort;
          return typeof current === "function" ? current.call(this, event) : undefined;
        };
        this.addEventListener("abort", this.#handler);
      } else if (this.#handler !== null && handler === null) {
        this.removeEventListener("abort", this.#handler);
        this.#handler = null;
      }
      this.#onabort = handler;
    }
    get [Symbol.toStringTag](): string {
      return "AbortSignal";
    }
  }

  class AbortController {
    #signal = create();
    get signal(): AbortSignal {
      return this.#signal;
    }
    abort(reason?: unknown): void {
      signalAbort(this.#signal, reason);
    }
    get [Symbol.toStringTag](): string {
      return "AbortController";
    }
  }

  const noop = () => {};
  const onAbort = (signal: AbortSignal, algorithm: (reason: unknown) => void) => {
    if (!signal.aborted) return addAlgorithm(signal, algorithm);
    algorithm(signal.reason);
    return noop;
  };
  for (const ctor of [AbortController, AbortSignal]) core.webIdl(ctor);
  return { AbortController, AbortSignal, onAbort };
}

/** The `AbortController` and `AbortSignal` globals. */
export const abortModule: GuestModule = {
  name: "abort",
  globals: ["AbortController", "AbortSignal"],
  factory: abortFactory,
};
