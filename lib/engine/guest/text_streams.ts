/**
 * Guest source: `TextEncoderStream` and `TextDecoderStream`, transform streams over the
 * guest's `TextEncoder` and `TextDecoder` (host-backed; a decoder in `stream` mode keeps its
 * partial bytes on the host, so a character split across chunks comes out whole). An
 * encoder stream keeps a high surrogate that ends a chunk for the next one, and writes
 * U+FFFD for one left at the end, as the Encoding standard says.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";

function textStreamsFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { StringCtor, TypeErrorCtor } = core;
  const { TransformStream } = use("streams") as {
    TransformStream: typeof globalThis.TransformStream;
  };
  const encoding = use("encoding") as {
    TextEncoder: typeof globalThis.TextEncoder;
    TextDecoder: typeof globalThis.TextDecoder;
  };
  const isView = ArrayBuffer.isView;
  const ArrayBufferCtor = ArrayBuffer;
  const charCodeAt = String.prototype.charCodeAt;
  const stringSlice = core.stringSlice;
  const REPLACEMENT = new Uint8Array([0xEF, 0xBF, 0xBD]);

  class TextEncoderStream {
    #transform: TransformStream<unknown, Uint8Array>;
    constructor() {
      const encoder = new encoding.TextEncoder();
      /** A high surrogate that ended the last chunk, waiting for its low half. */
      let pending = "";
      this.#transform = new TransformStream({
        transform(chunk, controller) {
          let text = pending + StringCtor(chunk);
          pending = "";
          const last = text.length > 0 ? charCodeAt.call(text, text.length - 1) : 0;
          if (last >= 0xD800 && last <= 0xDBFF) {
            pending = stringSlice.call(text, text.length - 1);
            text = stringSlice.call(text, 0, text.length - 1);
          }
          if (text !== "") controller.enqueue(encoder.encode(text));
        },
        flush(controller) {
          if (pending !== "") controller.enqueue(new Uint8Array(REPLACEMENT));
        },
      });
    }
    get encoding(): string {
      return "utf-8";
    }
    get readable(): ReadableStream<Uint8Array> {
      return this.#transform.readable;
    }
    get writable(): WritableStream<unknown> {
      return this.#transform.writable;
    }
    get [Symbol.toStringTag](): string {
      return "TextEncoderStream";
    }
  }

  class TextDecoderStream {
    #decoder: TextDecoder;
    #transform: TransformStream<unknown, string>;
    constructor(label: unknown = "utf-8", options?: { fatal?: unknown; ignoreBOM?: unknown }) {
      const decoder = new encoding.TextDecoder(label as string, options as TextDecoderOptions);
      this.#decoder = decoder;
      this.#transform = new TransformStream({
        transform(chunk, controller) {
          if (!(chunk instanceof ArrayBufferCtor) && !isView(chunk)) {
            throw new TypeErrorCtor(
              "TextDecoderStream: a chunk must be an ArrayBuffer or an ArrayBufferView",
            );
          }
          const text = decoder.decode(chunk as BufferSource, { stream: true });
          if (text !== "") controller.enqueue(text);
        },
        flush(controller) {
          const text = decoder.decode();
          if (text !== "") controller.enqueue(text);
        },
      });
    }
    get encoding(): string {
      return this.#decoder.encoding;
    }
    get fatal(): boolean {
      return this.#decoder.fatal;
    }
    get ignoreBOM(): boolean {
      return this.#decoder.ignoreBOM;
    }
    get readable(): ReadableStream<string> {
      return this.#transform.readable;
    }
    get writable(): WritableStream<unknown> {
      return this.#transform.writable;
    }
    get [Symbol.toStringTag](): string {
      return "TextDecoderStream";
    }
  }
  for (const ctor of [TextEncoderStream, TextDecoderStream]) core.webIdl(ctor);
  return { TextEncoderStream, TextDecoderStream };
}

/** The `TextEncoderStream` and `TextDecoderStream` globals. */
export const textStreamsModule: GuestModule = {
  name: "textstreams",
  globals: ["TextEncoderStream", "TextDecoderStream"],
  factory: textStreamsFactory,
};
