/**
 * Guest source: `Event`, `CustomEvent`, `ErrorEvent`, `EventTarget`, and the global object's
 * own listeners (`addEventListener`, `removeEventListener`, `dispatchEvent`) with
 * `reportError`, as the DOM standard defines them for a target outside any tree. An
 * exception thrown by a listener is reported: an `error` event on the global object, and a
 * console error line unless a listener cancels it. It never stops the dispatch.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";

/** What the events module exports besides its globals. */
export interface EventsExports extends GuestExports {
  /** Marks `event` trusted (events the platform fires, like `abort`). */
  trust(event: Event): Event;
  /** Reports an exception as a listener's would be. */
  report(error: unknown): void;
}

function eventsFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { StringCtor, TypeErrorCtor, defineProperty, describe, arrayPush } = core;
  const arraySlice = Array.prototype.slice;
  const arraySplice = Array.prototype.splice;
  const DOMException = use("domexception").DOMException as typeof globalThis.DOMException;
  const hostLog = core.host.log;
  const need = (count: number, wanted: number, what: string) => {
    if (count < wanted) {
      throw new TypeErrorCtor(
        what + ": " + wanted + " argument" + (wanted > 1 ? "s" : "") + " required, but only " +
          count + " present",
      );
    }
  };
  const NONE = 0, CAPTURING_PHASE = 1, AT_TARGET = 2, BUBBLING_PHASE = 3;

  interface EventInit {
    bubbles?: unknown;
    cancelable?: unknown;
    composed?: unknown;
  }
  interface Listener {
    callback: unknown;
    capture: boolean;
    once: boolean;
    passive: boolean;
    removed: boolean;
  }

  let setTrusted: (event: Event) => void;
  let beginDispatch: (event: Event, target: EventTarget) => void;
  let endDispatch: (event: Event) => void;
  let setCurrent: (event: Event, target: EventTarget | null, phase: number) => void;
  let inPassive: (event: Event, passive: boolean) => void;
  let stopped: (event: Event) => [boolean, boolean];

  class Event {
    #type: string;
    #bubbles: boolean;
    #cancelable: boolean;
    #composed: boolean;
    #target: EventTarget | null = null;
    #current: EventTarget | null = null;
    #phase = NONE;
    #canceled = false;
    #stop = false;
    #stopImmediate = false;
    #dispatching = false;
    #passive = false;
    #trusted = false;
    #timeStamp: number;
    static {
      setTrusted = (event) => {
        event.#trusted = true;
      };
      beginDispatch = (event, target) => {
        if (event.#dispatching) {
          throw new DOMException(
            "Failed to execute 'dispatchEvent': the event is already being dispatched",
            "InvalidStateError",
          );
        }
        event.#dispatching = true;
        event.#target = target;
      };
      endDispatch = (event) => {
        event.#dispatching = false;
        event.#phase = NONE;
        event.#current = null;
        event.#stop = false;
        event.#stopImmediate = false;
      };
      setCurrent = (event, target, phase) => {
        event.#current = target;
        event.#phase = phase;
      };
      inPassive = (event, passive) => {
        event.#passive = passive;
      };
      stopped = (event) => [event.#stop, event.#stopImmediate];
    }
    constructor(type: unknown, init: EventInit | null | undefined = undefined) {
      need(arguments.length, 1, "Failed to construct 'Event'");
      if (init !== undefined && init !== null && typeof init !== "object") {
        throw new TypeErrorCtor("Failed to construct 'Event': the init must be an object");
      }
      this.#type = StringCtor(type);
      this.#bubbles = !!(init && init.bubbles);
      this.#cancelable = !!(init && init.cancelable);
      this.#composed = !!(init && init.composed);
      this.#timeStamp = core.clock - core.origin;
    }
    get type(): string {
      return this.#type;
    }
    get isTrusted(): boolean {
      return this.#trusted;
    }
    get target(): EventTarget | null {
      return this.#target;
    }
    get srcElement(): EventTarget | null {
      return this.#target;
    }
    get currentTarget(): EventTarget | null {
      return this.#current;
    }
    get eventPhase(): number {
      return this.#phase;
    }
    get bubbles(): boolean {
      return this.#bubbles;
    }
    get cancelable(): boolean {
      return this.#cancelable;
    }
    get composed(): boolean {
      return this.#composed;
    }
    get defaultPrevented(): boolean {
      return this.#canceled;
    }
    get returnValue(): boolean {
      return !this.#canceled;
    }
    set returnValue(value: boolean) {
      if (!value) this.preventDefault();
    }
    get cancelBubble(): boolean {
      return this.#stop;
    }
    set cancelBubble(value: boolean) {
      if (value) this.#stop = true;
    }
    get timeStamp(): number {
      return this.#timeStamp;
    }
    composedPath(): EventTarget[] {
      return this.#dispatching && this.#target ? [this.#target] : [];
    }
    stopPropagation(): void {
      this.#stop = true;
    }
    stopImmediatePropagation(): void {
      this.#stop = true;
      this.#stopImmediate = true;
    }
    preventDefault(): void {
      if (this.#cancelable && !this.#passive) this.#canceled = true;
    }
    initEvent(type: unknown, bubbles?: unknown, cancelable?: unknown): void {
      need(arguments.length, 1, "Failed to execute 'initEvent' on 'Event'");
      if (this.#dispatching) return;
      this.#type = StringCtor(type);
      this.#bubbles = !!bubbles;
      this.#cancelable = !!cancelable;
      this.#canceled = false;
      this.#stop = false;
      this.#stopImmediate = false;
      this.#target = null;
    }
    get [Symbol.toStringTag](): string {
      return "Event";
    }
  }
  for (
    const [name, value] of [["NONE", NONE], ["CAPTURING_PHASE", CAPTURING_PHASE], [
      "AT_TARGET",
      AT_TARGET,
    ], ["BUBBLING_PHASE", BUBBLING_PHASE]] as const
  ) {
    const descriptor = { value, enumerable: true, writable: false, configurable: false };
    defineProperty(Event, name, descriptor);
    defineProperty(Event.prototype, name, descriptor);
  }

  class CustomEvent extends Event {
    #detail: unknown;
    constructor(
      type: unknown,
      init: (EventInit & { detail?: unknown }) | null | undefined = undefined,
    ) {
      need(arguments.length, 1, "Failed to construct 'CustomEvent'");
      super(type, init);
      this.#detail = init && init.detail !== undefined ? init.detail : null;
    }
    get detail(): unknown {
      return this.#detail;
    }
    initCustomEvent(type: unknown, bubbles?: unknown, cancelable?: unknown, detail?: unknown) {
      this.initEvent(type, bubbles, cancelable);
      this.#detail = detail === undefined ? null : detail;
    }
    override get [Symbol.toStringTag](): string {
      return "CustomEvent";
    }
  }

  type ErrorInit = EventInit & {
    message?: unknown;
    filename?: unknown;
    lineno?: unknown;
    colno?: unknown;
    error?: unknown;
  };
  class ErrorEvent extends Event {
    #init: ErrorInit;
    constructor(type: unknown, init: ErrorInit | null | undefined = undefined) {
      need(arguments.length, 1, "Failed to construct 'ErrorEvent'");
      super(type, init);
      this.#init = init ?? {};
    }
    get message(): string {
      return this.#init.message === undefined ? "" : StringCtor(this.#init.message);
    }
    get filename(): string {
      return this.#init.filename === undefined ? "" : StringCtor(this.#init.filename);
    }
    get lineno(): number {
      return (this.#init.lineno as number) >>> 0;
    }
    get colno(): number {
      return (this.#init.colno as number) >>> 0;
    }
    get error(): unknown {
      return this.#init.error;
    }
    override get [Symbol.toStringTag](): string {
      return "ErrorEvent";
    }
  }

  const flatten = (options: unknown): boolean =>
    typeof options === "object" && options !== null
      ? !!(options as { capture?: unknown }).capture
      : !!options;

  class EventTarget {
    #listeners: Record<string, Listener[]> = { __proto__: null } as unknown as Record<
      string,
      Listener[]
    >;
    addEventListener(type: unknown, callback: unknown, options?: unknown): void {
      need(arguments.length, 2, "Failed to execute 'addEventListener' on 'EventTarget'");
      const name = StringCtor(type);
      const capture = flatten(options);
      let once = false, passive = false;
      let signal: AbortSignal | undefined;
      if (typeof options === "object" && options !== null) {
        const o = options as { once?: unknown; passive?: unknown; signal?: unknown };
        once = !!o.once;
        passive = !!o.passive;
        if (o.signal !== undefined) {
          signal = o.signal as AbortSignal;
          const AbortSignal = use("abort").AbortSignal as typeof globalThis.AbortSignal;
          if (!(signal instanceof AbortSignal)) {
            throw new TypeErrorCtor(
              "Failed to execute 'addEventListener': options.signal is not an AbortSignal",
            );
          }
        }
      }
      if (callback === null || callback === undefined) return;
      if (typeof callback !== "function" && typeof callback !== "object") {
        throw new TypeErrorCtor(
          "Failed to execute 'addEventListener': the listener is not an object or a function",
        );
      }
      if (signal && signal.aborted) return;
      const list = this.#listeners[name] ??= [];
      for (const l of list) if (l.callback === callback && l.capture === capture) return;
      const listener: Listener = { callback, capture, once, passive, removed: false };
      arrayPush.call(list, listener);
      if (signal) {
        signal.addEventListener("abort", () => this.removeEventListener(name, callback, capture));
      }
    }
    removeEventListener(type: unknown, callback: unknown, options?: unknown): void {
      need(arguments.length, 2, "Failed to execute 'removeEventListener' on 'EventTarget'");
      const list = this.#listeners[StringCtor(type)];
      if (!list) return;
      const capture = flatten(options);
      for (let i = 0; i < list.length; i++) {
        const l = list[i]!;
        if (l.callback === callback && l.capture === capture) {
          l.removed = true;
          arraySplice.call(list, i, 1);
          return;
        }
      }
    }
    dispatchEvent(event: Event): boolean {
      need(arguments.length, 1, "Failed to execute 'dispatchEvent' on 'EventTarget'");
      if (!(event instanceof Event)) {
        throw new TypeErrorCtor("Failed to execute 'dispatchEvent': the argument is not an Event");
      }
      beginDispatch(event, this);
      try {
        setCurrent(event, this, AT_TARGET);
        const list = this.#listeners[event.type];
        if (list) {
          const snapshot = arraySlice.call(list) as Listener[];
          for (const capturing of [true, false]) {
            for (const listener of snapshot) {
              if (stopped(event)[1]) break;
              if (listener.removed || listener.capture !== capturing) continue;
              if (listener.once) this.removeEventListener(event.type, listener.callback, capturing);
              invoke(this, listener, event);
            }
          }
        }
      } finally {
        endDispatch(event);
      }
      return !event.defaultPrevented;
    }
    get [Symbol.toStringTag](): string {
      return "EventTarget";
    }
  }

  const invoke = (target: EventTarget, listener: Listener, event: Event) => {
    const callback = listener.callback as
      | ((event: Event) => unknown)
      | { handleEvent?: unknown };
    try {
      if (listener.passive) inPassive(event, true);
      if (typeof callback === "function") {
        callback.call(target, event);
      } else {
        const handle = callback.handleEvent;
        if (typeof handle !== "function") {
          throw new TypeErrorCtor("The listener has no handleEvent method");
        }
        handle.call(callback, event);
      }
    } catch (error) {
      report(error);
    } finally {
      inPassive(event, false);
    }
  };

  const globalTarget = new EventTarget();
  let reporting = false;
  /** Reports an exception: an `error` event on the global object, else a console line. */
  const report = (error: unknown) => {
    const message = error instanceof core.ErrorCtor ? StringCtor(error.message) : describe(error);
    const event = new ErrorEvent("error", { cancelable: true, message, error });
    let handled = false;
    if (!reporting) {
      reporting = true;
      try {
        handled = !globalTarget.dispatchEvent(event);
      } finally {
        reporting = false;
      }
    }
    if (!handled) hostLog("error", "Uncaught " + describe(error));
  };

  for (const ctor of [Event, CustomEvent, ErrorEvent, EventTarget]) core.webIdl(ctor);
  return {
    Event,
    CustomEvent,
    ErrorEvent,
    EventTarget,
    addEventListener: function addEventListener(
      type: unknown,
      callback: unknown,
      options?: unknown,
    ) {
      need(arguments.length, 2, "Failed to execute 'addEventListener'");
      globalTarget.addEventListener(type, callback, options);
    },
    removeEventListener: function removeEventListener(
      type: unknown,
      callback: unknown,
      options?: unknown,
    ) {
      need(arguments.length, 2, "Failed to execute 'removeEventListener'");
      globalTarget.removeEventListener(type, callback, options);
    },
    dispatchEvent: function dispatchEvent(event: Event) {
      need(arguments.length, 1, "Failed to execute 'dispatchEvent'");
      return globalTarget.dispatchEvent(event);
    },
    reportError: function reportError(error: unknown) {
      need(arguments.length, 1, "Failed to execute 'reportError'");
      report(error);
    },
    trust(event: Event) {
      setTrusted(event);
      return event;
    },
    report,
  };
}

/** The `Event`, `EventTarget` and related globals. */
export const eventsModule: GuestModule = {
  name: "events",
  globals: [
    "Event",
    "CustomEvent",
    "ErrorEvent",
    "EventTarget",
    "addEventListener",
    "removeEventListener",
    "dispatchEvent",
    "reportError",
  ],
  factory: eventsFactory,
};
