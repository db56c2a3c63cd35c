/**
 * Guest source: what aborting a fetch does to the bodies it involves, as the Fetch
 * standard's "abort the fetch() call" says. Internal: loaded only when a fetch's signal
 * aborts, so a script whose signals never abort parses none of it.
 *
 * The host delivers a response whole, so a response's body holds every byte before the
 * script sees it: from the script's side it is still readable until it is read. Aborted then,
 * a body not yet read errors with the signal's reason (its reads, and a stream taken later,
 * reject with it), and a stream already taken errors while bytes are left in it; a body read
 * to its end, or empty (closed from the start), is left as it is. A clone taken before the
 * abort is a body of its own and keeps its bytes. The abort comes from the task's own
 * journaled events, so a replay errors the body at the same point.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule } from "./guest_types.ts";
import type { BodyState } from "./body.ts";

/** What the body_abort module exports. */
export interface BodyAbortExports {
  /** Errors the body of an aborted fetch's response with `reason` if still readable. */
  abortBody(state: BodyState, reason: unknown): void;
  /** Cancels the stream of `state` with `reason` when it is readable and unlocked. */
  cancel(state: BodyState, reason: unknown): void;
}

/** A stream of the streams module (web-streams-polyfill), as far as this module reads it. */
interface StreamInternals {
  /** The standard's [[state]]: "readable", "closed" or "errored". */
  _state: string;
  _readableStreamController: { error(reason: unknown): void };
}

function bodyAbortFactory(core: GuestCore): GuestExports {
  const { promiseThen } = core;
  const noop = () => {};
  const readable = (stream: unknown) => (stream as StreamInternals)._state === "readable";

  const abortBody: BodyAbortExports["abortBody"] = (state, reason) => {
    state.unwatch = undefined;
    if (state.stream !== null) {
      if (!readable(state.stream)) return;
      (state.stream as StreamInternals)._readableStreamController.error(reason);
      state.error = reason;
      return;
    }
    const empty = state.text !== null
      ? state.text.length === 0
      : state.bytes !== null && state.bytes.length === 0;
    if (!state.used && !empty) state.error = reason;
  };

  const cancel: BodyAbortExports["cancel"] = (state, reason) => {
    const stream = state.stream as ReadableStream | null;
    if (stream === null || !readable(stream) || stream.locked) return;
    promiseThen.call(stream.cancel(reason), noop, noop);
  };

  return { abortBody, cancel };
}

/** The internal `bodyabort` module. */
export const bodyAbortModule: GuestModule = {
  name: "bodyabort",
  globals: [],
  factory: bodyAbortFactory,
};
