/**
 * Guest source: `TextEncoder` and `TextDecoder`, backed by the host's (every encoding Deno
 * knows, `fatal`, `ignoreBOM`, `stream`). A streaming decoder keeps its partial bytes on the
 * host, keyed by a number the guest assigns in order, so a replay rebuilds the same state.
 *
 * @module
 */
import type { GuestAsk, GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";

function encodingFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { JSONstringify, StringCtor, TypeErrorCtor } = core;
  const Uint8ArrayCtor = Uint8Array;
  const ArrayBufferCtor = ArrayBuffer;
  const isView = ArrayBuffer.isView;
  const bufferSlice = ArrayBuffer.prototype.slice;
  // ES2024: typed by hand so the engine also compiles against ES2023 libraries.
  const toWellFormed = (String.prototype as unknown as { toWellFormed(this: string): string })
    .toWellFormed;
  const toLowerCase = core.toLowerCase;
  const typedArraySet = Uint8Array.prototype.set;
  const ask = use("hostcall").ask as GuestAsk;
  let nextStream = 0;

  /** A copy of the bytes of a BufferSource, as an ArrayBuffer. */
  const bytesOf = (input: unknown, what: string): ArrayBuffer => {
    if (input instanceof ArrayBufferCtor) return bufferSlice.call(input, 0);
    if (isView(input)) {
      const view = input as ArrayBufferView;
      return bufferSlice.call(view.buffer, view.byteOffset, view.byteOffset + view.byteLength);
    }
    if (
      typeof SharedArrayBuffer === "function" && input instanceof SharedArrayBuffer
    ) {
      const copy = new Uint8ArrayCtor(input.byteLength);
      typedArraySet.call(copy, new Uint8ArrayCtor(input));
      return copy.buffer;
    }
    throw new TypeErrorCtor(
      what + ": the input must be an ArrayBuffer, a SharedArrayBuffer or an ArrayBufferView",
    );
  };

  class TextEncoder {
    get encoding(): string {
      return "utf-8";
    }
    encode(input: unknown = ""): Uint8Array {
      return new Uint8ArrayCtor(
        ask("text.encode", toWellFormed.call(StringCtor(input))) as ArrayBuffer,
      );
    }
    encodeInto(source: unknown, destination: Uint8Array): { read: number; written: number } {
      if (!(destination instanceof Uint8ArrayCtor)) {
        throw new TypeErrorCtor("TextEncoder.encodeInto: the destination must be a Uint8Array");
      }
      const text = toWellFormed.call(StringCtor(source));
      const [read, written] = ask("text.encodeInto", [text, destination.length]) as number[];
      if (written! > 0) {
        const bytes = ask("text.encode", text.slice(0, read)) as ArrayBuffer;
        typedArraySet.call(destination, new Uint8ArrayCtor(bytes));
      }
      return { read: read!, written: written! };
    }
    get [Symbol.toStringTag](): string {
      return "TextEncoder";
    }
  }

  class TextDecoder {
    #encoding: string;
    #fatal: boolean;
    #ignoreBOM: boolean;
    /** The host's id of this decoder's stream while one is open, else -1. */
    #stream = -1;
    constructor(label: unknown = "utf-8", options?: { fatal?: unknown; ignoreBOM?: unknown }) {
      const name = ask("text.label", StringCtor(label));
      if (name === null) {
        throw new RangeError(
          "TextDecoder: the encoding label " + JSONstringify(StringCtor(label)) +
            " is not supported",
        );
      }
      if (options !== undefined && options !== null && typeof options !== "object") {
        throw new TypeErrorCtor("TextDecoder: options must be an object");
      }
      this.#encoding = toLowerCase.call(name as string);
      this.#fatal = !!(options && options.fatal);
      this.#ignoreBOM = !!(options && options.ignoreBOM);
    }
    get encoding(): string {
      return this.#encoding;
    }
    get fatal(): boolean {
      return this.#fatal;
    }
    get ignoreBOM(): boolean {
      return this.#ignoreBOM;
    }
    decode(input: unknown = undefined, options?: { stream?: unknown }): string {
      if (options !== undefined && options !== null && typeof options !== "object") {
        throw new TypeErrorCtor("TextDecoder.decode: options must be an object");
      }
      const stream = !!(options && options.stream);
      const bytes = input === undefined || input === null
        ? undefined
        : bytesOf(input, "TextDecoder.decode");
      if (stream && this.#stream < 0) this.#stream = nextStream++;
      const id = this.#stream;
      if (!stream) this.#stream = -1;
      return ask(
        "text.decode",
        [this.#encoding, this.#fatal, this.#ignoreBOM, id, stream],
        bytes,
      ) as string;
    }
    get [Symbol.toStringTag](): string {
      return "TextDecoder";
    }
  }
  for (const ctor of [TextEncoder, TextDecoder]) core.webIdl(ctor);
  return { TextEncoder, TextDecoder };
}

/** The `TextEncoder` and `TextDecoder` globals. */
export const encodingModule: GuestModule = {
  name: "encoding",
  globals: ["TextEncoder", "TextDecoder"],
  factory: encodingFactory,
};
