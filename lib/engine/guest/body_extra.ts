/**
 * Guest source: the parts of the Body mixin a script that only fetches JSON never needs,
 * loaded on first use by `body.ts`: bodies extracted from `ArrayBuffer`s and views, `Blob`s,
 * `URLSearchParams`, `FormData` (multipart, with a boundary) and `ReadableStream`s, each with
 * its standard content type; `blob()`, `formData()` (multipart/form-data and
 * application/x-www-form-urlencoded) and `body` as a `ReadableStream`. The blob, form and
 * URL modules are consulted only when already loaded: a value cannot be a `Blob` before the
 * `Blob` global was first read.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { BlobExports } from "./blob.ts";
import type { BodyExports, BodyState } from "./body.ts";
import type { FormDataExports } from "./form_data.ts";
import type { MultipartExports } from "./multipart.ts";
import type { AbortExports } from "./abort.ts";

/** What the body_extra module exports. */
export interface BodyExtraExports {
  /** The body of a non-string init value and its content type (null when none). */
  extract(value: unknown): { state: BodyState; type: string | null };
  /** Tees the stream of `state`: `state` keeps one branch, the returned body the other. */
  teeInto(state: BodyState): BodyState;
  /** A body reading the stream of `state` through an identity transform (locking it). */
  proxy(state: BodyState): BodyState;
  /**
   * All the bytes of the stream of `state`, read chunk by chunk; when `signal` aborts first,
   * the stream is cancelled with the signal's reason, `aborted` is called with it at once and
   * the promise rejects with it.
   */
  readAll(
    state: BodyState,
    signal: AbortSignal | null,
    aborted: ((reason: unknown) => void) | null,
  ): Promise<Uint8Array>;
  /** A Blob of `bytes` typed by content type `type`. */
  toBlob(bytes: Uint8Array, type: string | null): Blob;
  /** The FormData a body of content type `type` holds; a TypeError when it holds none. */
  toForm(body: Uint8Array | string, type: string | null): FormData;
  /**
   * Gives `state` a stream of the bytes not yet read (`ReadableStream` from `streams`), an
   * errored one when its fetch was aborted.
   */
  streamOf(state: BodyState): void;
}

function bodyExtraFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { StringCtor, TypeErrorCtor, toLowerCase, stringSlice, arrayPush, quote } = core;
  const { promiseThen, OrigPromise } = core;
  const noop = () => {};
  const Uint8ArrayCtor = Uint8Array;
  const ArrayBufferCtor = ArrayBuffer;
  const isView = ArrayBuffer.isView;
  const typedSet = Uint8Array.prototype.set;
  const typedSlice = Uint8Array.prototype.slice;
  const indexOf = String.prototype.indexOf;
  const trim = String.prototype.trim;
  const RegExpCtor = RegExp;
  const toWellFormed = (String.prototype as unknown as { toWellFormed(this: string): string })
    .toWellFormed;
  const body = use("body") as unknown as BodyExports;
  type Streams = { ReadableStream: new (source?: unknown) => ReadableStream };
  const streams = (): Streams => {
    try {
      return core.use("streams") as unknown as Streams;
    } catch {
      throw new TypeErrorCtor("Body streams need ReadableStream, which this guest lacks");
    }
  };

  const extract: BodyExtraExports["extract"] = (value) => {
    if (value instanceof ArrayBufferCtor) {
      return { state: body.make(null, typedSlice.call(new Uint8ArrayCtor(value))), type: null };
    }
    if (isView(value)) {
      const view = new Uint8ArrayCtor(value.buffer, value.byteOffset, value.byteLength);
      return { state: body.make(null, typedSlice.call(view)), type: null };
    }
    if (core.loaded("blob")) {
      const bytes = (core.use("blob") as unknown as BlobExports).bytesOf(value);
      if (bytes !== undefined) {
        const type = (value as Blob).type;
        return { state: body.make(null, bytes), type: type === "" ? null : type };
      }
    }
    if (core.loaded("formdata")) {
      const entries = (core.use("formdata") as unknown as FormDataExports).entriesOf(value);
      if (entries !== undefined) {
        const form = (use("multipart") as unknown as MultipartExports).serialize(entries);
        return { state: body.make(null, form.bytes), type: form.type };
      }
    }
    if (core.loaded("url") && value instanceof (core.use("url").URLSearchParams as never)) {
      return {
        state: body.make(StringCtor(value), null),
        type: "application/x-www-form-urlencoded;charset=UTF-8",
      };
    }
    if (core.loaded("streams") && value instanceof streams().ReadableStream) {
      if (
        (value as ReadableStream).locked ||
        (value as { _disturbed?: unknown })._disturbed === true
      ) throw new TypeErrorCtor("The body stream is locked or has been read");
      return { state: { text: null, bytes: null, stream: value, used: false }, type: null };
    }
    return {
      state: body.make(toWellFormed.call(StringCtor(value)), null),
      type: "text/plain;charset=UTF-8",
    };
  };

  const teeInto: BodyExtraExports["teeInto"] = (state) => {
    const [a, b] = (state.stream as ReadableStream).tee();
    state.stream = a;
    // The clone's branch gets copies of the chunks, as the standard's tee for a body does.
    const clone = use("structuredclone").structuredClone as (value: unknown) => unknown;
    const { TransformStream } = core.use("streams") as unknown as {
      TransformStream: new (transformer: unknown) => TransformStream;
    };
    const copies = b.pipeThrough(
      new TransformStream({
        transform(chunk: unknown, controller: TransformStreamDefaultController) {
          controller.enqueue(clone(chunk));
        },
      }),
    );
    return { text: null, bytes: null, stream: copies, used: false };
  };

  const proxy: BodyExtraExports["proxy"] = (state) => {
    const { TransformStream } = core.use("streams") as unknown as {
      TransformStream: new () => TransformStream;
    };
    const stream = (state.stream as ReadableStream).pipeThrough(new TransformStream());
    return { text: null, bytes: null, stream, used: false };
  };

  const readAll: BodyExtraExports["readAll"] = (state, signal, aborted) =>
    new OrigPromise((resolve, reject) => {
      const reader = (state.stream as ReadableStream).getReader();
      const chunks: Uint8Array[] = [];
      let total = 0;
      let settled = false;
      let unwatch = noop;
      const settle = () => {
        settled = true;
        unwatch();
        // Read to its end or failed: an abort of the body's fetch can no longer error it.
        const unwatchFetch = state.unwatch;
        state.unwatch = undefined;
        if (unwatchFetch !== undefined) unwatchFetch();
      };
      const fail = (error: unknown) => {
        if (settled) return;
        settle();
        reject(error);
      };
      const next = (): void =>
        void promiseThen.call(reader.read(), (result) => {
          if (settled) return;
          const { done, value } = result as ReadableStreamReadResult<unknown>;
          if (done) return finish();
          if (!(value instanceof Uint8ArrayCtor)) {
            return fail(new TypeErrorCtor("A body stream chunk must be a Uint8Array"));
          }
          arrayPush.call(chunks, value);
          total += value.length;
          next();
        }, fail);
      const finish = () => {
        settle();
        const all = new Uint8ArrayCtor(total);
        let at = 0;
        for (const chunk of chunks) {
          typedSet.call(all, chunk, at);
          at += chunk.length;
        }
        resolve(all);
      };
      if (signal !== null) {
        // An abort rejects at once and cancels the stream (its pending read then ends).
        unwatch = (use("abort") as unknown as AbortExports).onAbort(signal, (reason) => {
          fail(reason);
          if (aborted !== null) aborted(reason);
          promiseThen.call(reader.cancel(reason), noop, noop);
        });
      }
      next();
    });

  const toBlob: BodyExtraExports["toBlob"] = (bytes, type) => {
    const blob = use("blob") as unknown as BlobExports;
    return blob.make(bytes, type === null ? "" : blob.normalizeType(type));
  };

  /** The value of parameter `key` of a MIME type, unquoted; undefined when absent. */
  const mimeParam = (type: string, key: string): string | undefined => {
    const match = new RegExpCtor(";\\s*" + key + '\\s*=\\s*(?:"([^"]*)"|([^;]*))', "i").exec(type);
    return match ? trim.call(match[1] ?? match[2]!) : undefined;
  };
  const essence = (type: string): string => {
    const semi = indexOf.call(type, ";");
    return toLowerCase.call(trim.call(semi < 0 ? type : stringSlice.call(type, 0, semi)));
  };

  const toForm: BodyExtraExports["toForm"] = (content, type) => {
    const forms = use("formdata") as unknown as FormDataExports;
    const kind = type === null ? "" : essence(type);
    if (kind === "multipart/form-data") {
      const boundary = mimeParam(type!, "boundary");
      if (boundary === undefined || boundary === "") {
        throw new TypeErrorCtor("Cannot parse the body as FormData: the boundary is missing");
      }
      const multipart = use("multipart") as unknown as MultipartExports;
      const bytes = typeof content === "string" ? body.utf8(content) : content;
      return forms.fromEntries(multipart.parse(bytes, boundary));
    }
    if (kind === "application/x-www-form-urlencoded") {
      const Params = use("url").URLSearchParams as typeof URLSearchParams;
      const text = typeof content === "string" ? content : body.decodeUtf8(content);
      const entries: [string, unknown][] = [];
      for (const [name, value] of new Params(text)) arrayPush.call(entries, [name, value]);
      return forms.fromEntries(entries);
    }
    throw new TypeErrorCtor(
      "Cannot parse the body as FormData: the content type is " +
        (type === null ? "missing" : quote(type)),
    );
  };

  const streamOf: BodyExtraExports["streamOf"] = (state) => {
    const { ReadableStream } = streams();
    const error = state.error;
    const bytes = state.used || error !== undefined
      ? new Uint8ArrayCtor(0)
      : state.bytes !== null
      ? state.bytes
      : body.utf8(state.text!);
    const used = state.used;
    state.text = null;
    state.bytes = null;
    const stream = new ReadableStream({
      type: "bytes",
      start(controller: ReadableByteStreamController) {
        if (error !== undefined) return controller.error(error);
        if (bytes.length > 0) controller.enqueue(typedSlice.call(bytes) as Uint8Array<ArrayBuffer>);
        controller.close();
      },
    });
    // A body already read has a stream that is locked and disturbed, as the standard's is.
    if (used) stream.getReader().read();
    state.stream = stream;
  };

  return { extract, teeInto, proxy, readAll, toBlob, toForm, streamOf };
}

/** The internal `bodyextra` module. */
export const bodyExtraModule: GuestModule = {
  name: "bodyextra",
  globals: [],
  factory: bodyExtraFactory,
};
