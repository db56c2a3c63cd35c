/**
 * Guest source: `Blob` and `File`, as the File API defines them. A blob holds its bytes in
 * the guest (one `Uint8Array`, never changed after construction, so slices and clones may
 * share it); strings are encoded as UTF-8 by the host's encoder. `stream()` uses the
 * `streams` guest module when the guest world has one.
 *
 * @module
 */
import type { GuestAsk, GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";

/** What the blob module exports besides its globals. */
export interface BlobExports {
  /** The bytes of `blob` (shared: never modify them), or `undefined` when it is no Blob. */
  bytesOf(blob: unknown): Uint8Array | undefined;
  /** A new Blob (or, with `name`, a File) over `bytes` (taken, not copied). */
  make(bytes: Uint8Array, type: string, name?: string, lastModified?: number): globalThis.Blob;
  /** UTF-8 bytes of `text` (made well-formed first). */
  utf8(text: string): Uint8Array;
  /** `bytes` decoded as UTF-8 (a BOM dropped, bad sequences replaced). */
  decodeUtf8(bytes: Uint8Array): string;
  /** `text` when it is an ASCII type (0x20 to 0x7E) lowercased, else "". */
  normalizeType(text: string): string;
}

function blobFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { StringCtor, TypeErrorCtor, toLowerCase, promiseResolve, promiseReject } = core;
  const Uint8ArrayCtor = Uint8Array;
  const ArrayBufferCtor = ArrayBuffer;
  const isView = ArrayBuffer.isView;
  const typedSet = Uint8Array.prototype.set;
  const typedSubarray = Uint8Array.prototype.subarray;
  const typedSlice = Uint8Array.prototype.slice;
  const charCodeAt = String.prototype.charCodeAt;
  const replace = String.prototype.replace as unknown as (
    this: string,
    pattern: RegExp,
    by: string,
  ) => string;
  const iteratorSymbol = Symbol.iterator;
  const MathMax = Math.max;
  const MathMin = Math.min;
  const MathTrunc = Math.trunc;
  const NumberCtor = Number;
  const toWellFormed = (String.prototype as unknown as { toWellFormed(this: string): string })
    .toWellFormed;
  const ask = use("hostcall").ask as GuestAsk;

  const utf8 = (text: string): Uint8Array =>
    text.length === 0
      ? new Uint8ArrayCtor(0)
      : new Uint8ArrayCtor(ask("text.encode", toWellFormed.call(text)) as ArrayBuffer);
  const decodeUtf8 = (bytes: Uint8Array): string =>
    bytes.length === 0
      ? ""
      : ask("text.decode", ["utf-8", false, false, -1, false], copyBuffer(bytes)) as string;
  const copyBuffer = (bytes: Uint8Array): ArrayBuffer =>
    (typedSlice.call(bytes) as Uint8Array).buffer as ArrayBuffer;
  const normalizeType = (text: string): string => {
    for (let i = 0; i < text.length; i++) {
      const c = charCodeAt.call(text, i);
      if (c < 0x20 || c > 0x7e) return "";
    }
    return toLowerCase.call(text);
  };
  const viewBytes = (view: ArrayBufferView): Uint8Array =>
    new Uint8ArrayCtor(view.buffer, view.byteOffset, view.byteLength);
  const relative = (value: unknown, size: number, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = MathTrunc(NumberCtor(value)) || 0;
    return n < 0 ? MathMax(size + n, 0) : MathMin(n, size);
  };

  let bytesOf: BlobExports["bytesOf"] = () => undefined;
  let adopt: (blob: Blob, bytes: Uint8Array) => void = () => {};

  class Blob {
    #bytes: Uint8Array = new Uint8ArrayCtor(0);
    #type = "";
    static {
      bytesOf = (blob) =>
        blob !== null && typeof blob === "object" && #bytes in blob ? blob.#bytes : undefined;
      adopt = (blob, bytes) => {
        blob.#bytes = bytes;
      };
    }
    constructor(parts: unknown = undefined, options?: unknown) {
      if (options !== undefined && options !== null && typeof options !== "object") {
        throw new TypeErrorCtor("Failed to construct 'Blob': options must be an object");
      }
      const opts = (options ?? {}) as { endings?: unknown; type?: unknown };
      const endingsRaw = opts.endings;
      const endings = endingsRaw === undefined ? "transparent" : StringCtor(endingsRaw);
      if (endings !== "transparent" && endings !== "native") {
        throw new TypeErrorCtor(
          'Failed to construct \'Blob\': endings must be "transparent" or "native"',
        );
      }
      const type = opts.type === undefined ? "" : normalizeType(StringCtor(opts.type));
      if (parts !== undefined) {
        if (
          parts === null || (typeof parts !== "object" && typeof parts !== "function") ||
          typeof (parts as Record<symbol, unknown>)[iteratorSymbol] !== "function"
        ) {
          throw new TypeErrorCtor(
            "Failed to construct 'Blob': the parts must be a sequence (an iterable)",
          );
        }
        const chunks: Uint8Array[] = [];
        let total = 0;
        for (const part of parts as Iterable<unknown>) {
          let chunk = bytesOf(part);
          if (chunk === undefined) {
            if (part instanceof ArrayBufferCtor) chunk = new Uint8ArrayCtor(part);
            else if (isView(part)) chunk = viewBytes(part);
            else {
              let text = StringCtor(part);
              if (endings === "native") text = replace.call(text, /\r\n?/g, "\n");
              chunk = utf8(text);
            }
          }
          chunks[chunks.length] = chunk;
          total += chunk.length;
        }
        const all = new Uint8ArrayCtor(total);
        let at = 0;
        for (const chunk of chunks) {
          typedSet.call(all, chunk, at);
          at += chunk.length;
        }
        this.#bytes = all;
      }
      this.#type = type;
    }
    get size(): number {
      return this.#bytes.length;
    }
    get type(): string {
      return this.#type;
    }
    slice(start: unknown = undefined, end?: unknown, contentType?: unknown): Blob {
      const size = this.#bytes.length;
      const from = relative(start, size, 0);
      const to = relative(end, size, size);
      const bytes = typedSubarray.call(this.#bytes, from, MathMax(from, to)) as Uint8Array;
      return make(bytes, contentType === undefined ? "" : normalizeType(StringCtor(contentType)));
    }
    text(): Promise<string> {
      try {
        return promiseResolve(decodeUtf8(this.#bytes));
      } catch (error) {
        return promiseReject(error);
      }
    }
    arrayBuffer(): Promise<ArrayBuffer> {
      return promiseResolve(copyBuffer(this.#bytes));
    }
    bytes(): Promise<Uint8Array> {
      return promiseResolve(new Uint8ArrayCtor(copyBuffer(this.#bytes)));
    }
    stream(): unknown {
      let streams;
      try {
        streams = core.use("streams") as { ReadableStream?: unknown };
      } catch {
        throw new TypeErrorCtor("Blob.stream needs ReadableStream, which this guest lacks");
      }
      const RS = streams.ReadableStream as new (source: unknown) => unknown;
      const bytes = this.#bytes;
      return new RS({
        type: "bytes",
        start(controller: { enqueue(chunk: Uint8Array): void; close(): void }) {
          if (bytes.length > 0) controller.enqueue(new Uint8ArrayCtor(copyBuffer(bytes)));
          controller.close();
        },
      });
    }
    get [Symbol.toStringTag](): string {
      return "Blob";
    }
  }

  class File extends Blob {
    #name: string;
    #lastModified: number;
    constructor(bits: unknown, name: unknown, options: unknown = undefined) {
      if (arguments.length < 2) {
        throw new TypeErrorCtor("Failed to construct 'File': 2 arguments required");
      }
      super(bits, options);
      this.#name = toWellFormed.call(StringCtor(name));
      const last = options === undefined || options === null
        ? undefined
        : (options as { lastModified?: unknown }).lastModified;
      this.#lastModified = last === undefined ? core.clock : MathTrunc(NumberCtor(last)) || 0;
    }
    get name(): string {
      return this.#name;
    }
    get lastModified(): number {
      return this.#lastModified;
    }
    override get [Symbol.toStringTag](): string {
      return "File";
    }
  }

  // A blob over bytes already at hand: built empty, then given the bytes without a copy.
  const make = (
    bytes: Uint8Array,
    type: string,
    name?: string,
    lastModified?: number,
  ): Blob => {
    const blob = name === undefined
      ? new Blob([], { type })
      : new File([], name, { type, lastModified });
    adopt(blob, bytes);
    return blob;
  };
  for (const ctor of [Blob, File]) core.webIdl(ctor);
  return { Blob, File, bytesOf, make, utf8, normalizeType, decodeUtf8 };
}

/** The `Blob` and `File` globals. */
export const blobModule: GuestModule = {
  name: "blob",
  globals: ["Blob", "File"],
  factory: blobFactory,
};
