/**
 * Guest source: the body of a response that arrives in parts. Internal: loaded with the
 * first such response, so a script whose responses come whole parses none of it (nor the
 * streams module it needs).
 *
 * The host delivers the status, headers and first bytes of a response whose body is slow to
 * come, then the rest in parts (`bodyPending`, see `types.ts`). Such a body is a
 * `ReadableStream` from the start: each part is enqueued as it is delivered, the last one
 * closes it, and a failed part errors it with a `TypeError`. A reader loop sees the bytes as
 * they come; `text()` and the other reads wait for the last part. Cancelling the stream
 * aborts the request, as the Fetch standard's "abort the fetch() call" says: the host is told
 * (`stop`), journals the abort and closes the connection. Parts come from the journal in a
 * replay, in the same order, so a replay reads the same bytes at the same points.
 *
 * @module
 */
import type { GuestAsk, GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { BodyExports, BodyState } from "./body.ts";

/** A body being received. */
export interface BodyParts {
  /** The body, with its stream. */
  state: BodyState;
  /** Enqueues a part (its text, or base64 of its bytes when `binary`); `last` closes. */
  push(text: string, binary: boolean, last: boolean): void;
  /** Errors the body with `error` (its request failed, or was aborted). */
  fail(error: unknown): void;
}

/** What the body_parts module exports. */
export interface BodyPartsExports {
  /**
   * A body whose first part is `text` (base64 when `binary`; "" for none). `stop` is called
   * with the reason when the script cancels the stream before the last part came.
   */
  open(text: string, binary: boolean, stop: (reason: unknown) => void): BodyParts;
}

/** A stream of the streams module (web-streams-polyfill), as far as this module reads it. */
interface StreamInternals {
  /** The standard's [[state]]: "readable", "closed" or "errored". */
  _state: string;
}

function bodyPartsFactory(_core: GuestCore, use: GuestUse): GuestExports {
  const Uint8ArrayCtor = Uint8Array;
  const body = use("body") as unknown as BodyExports;
  const { ReadableStream } = use("streams") as unknown as {
    ReadableStream: typeof globalThis.ReadableStream;
  };
  const ask = (op: string, arg: unknown) => (use("hostcall").ask as GuestAsk)(op, arg);
  const bytesOf = (text: string, binary: boolean): Uint8Array =>
    binary ? new Uint8ArrayCtor(ask("base64.decode", text) as ArrayBuffer) : body.utf8(text);

  const open: BodyPartsExports["open"] = (text, binary, stop) => {
    let controller!: ReadableByteStreamController;
    let done = false;
    const stream = new ReadableStream({
      type: "bytes",
      start(c: ReadableByteStreamController) {
        controller = c;
      },
      cancel(reason: unknown) {
        if (done) return;
        done = true;
        stop(reason);
      },
    });
    const readable = () => (stream as unknown as StreamInternals)._state === "readable";
    const parts: BodyParts = {
      state: { text: null, bytes: null, stream, used: false },
      push(text, binary, last) {
        if (!readable()) return;
        if (text !== "") {
          const bytes = bytesOf(text, binary);
          if (bytes.length > 0) controller.enqueue(bytes as Uint8Array<ArrayBuffer>);
        }
        if (last) {
          done = true;
          controller.close();
        }
      },
      fail(error) {
        done = true;
        if (readable()) controller.error(error);
      },
    };
    parts.push(text, binary, false);
    return parts;
  };

  return { open };
}

/** The internal `bodyparts` module. */
export const bodyPartsModule: GuestModule = {
  name: "bodyparts",
  globals: [],
  factory: bodyPartsFactory,
};
