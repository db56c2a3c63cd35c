/**
 * Guest source: the Body mixin of the Fetch standard, shared by `Request` and `Response`:
 * `text`, `json`, `arrayBuffer`, `bytes`, `blob`, `formData`, `body` and `bodyUsed`, and the
 * body an init value gives. Internal: loaded with the first response or request.
 *
 * A body is text (a string body, or a delivered response that is valid UTF-8: `text()` gives
 * it back without a round trip through bytes) or bytes, or a stream; it is read once. This
 * module holds only what a script that fetches JSON needs; bodies of other kinds, forms and
 * streams are in `body_extra.ts`, loaded when first needed.
 *
 * @module
 */
import type { GuestAsk, GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { BodyExtraExports } from "./body_extra.ts";

/** A body: text or bytes, or a stream; read at most once. */
export interface BodyState {
  text: string | null;
  bytes: Uint8Array | null;
  stream: unknown;
  used: boolean;
  /** The nesting limit a delivered JSON body exceeds (the host checked), so json() refuses. */
  tooDeep?: number;
  /** Why the body cannot be read (its fetch was aborted): reads reject with it. */
  error?: unknown;
  /** Stops watching the signal of the body's fetch (set while an abort can still error it). */
  unwatch?: () => void;
}

/** What the body module exports. */
export interface BodyExports {
  /** The body of init value `value` and its content type (null when it has none). */
  extract(value: unknown): { state: BodyState; type: string | null };
  /** A body over `text` or `bytes` (taken as they are). */
  make(text: string | null, bytes: Uint8Array | null): BodyState;
  /** A second body with the same content (a stream is teed; `state` keeps one branch). */
  clone(state: BodyState): BodyState;
  /** A body with the content of `state`, which becomes used (a stream is piped through). */
  take(state: BodyState): BodyState;
  /** Whether the body can no longer be read (read, or its stream locked). */
  unusable(state: BodyState | null): boolean;
  /**
   * Reads a body whole; rejects with a TypeError when it was read. A `signal` that aborts
   * while a stream is read cancels the stream, calls `aborted` with the signal's reason at
   * once and rejects with it.
   */
  consume(
    state: BodyState | null,
    signal?: AbortSignal | null,
    aborted?: (reason: unknown) => void,
  ): Promise<Uint8Array | string>;
  /** UTF-8 bytes of `text` (made well-formed first). */
  utf8(text: string): Uint8Array;
  /** `bytes` decoded as UTF-8 (a BOM dropped, bad sequences replaced). */
  decodeUtf8(bytes: Uint8Array): string;
  /**
   * Defines the body members on `proto`: `stateOf(object)` is its body (null for none,
   * undefined for an object that is not of the class), `typeOf(object)` its content type.
   */
  mixin(
    proto: object,
    stateOf: (object: unknown) => BodyState | null | undefined,
    typeOf: (object: unknown) => string | null,
  ): void;
}

function bodyFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { TypeErrorCtor, SyntaxErrorCtor, JSONparse, promiseResolve, promiseReject } = core;
  const { defineProperty, promiseThen, stringSlice } = core;
  const charCodeAt = String.prototype.charCodeAt;
  const Uint8ArrayCtor = Uint8Array;
  const typedSlice = Uint8Array.prototype.slice;
  const toWellFormed = (String.prototype as unknown as { toWellFormed(this: string): string })
    .toWellFormed;
  const extra = () => use("bodyextra") as unknown as BodyExtraExports;
  const ask = (op: string, arg: unknown, bytes?: ArrayBuffer) =>
    (use("hostcall").ask as GuestAsk)(op, arg, bytes);

  const utf8 = (text: string): Uint8Array =>
    text.length === 0
      ? new Uint8ArrayCtor(0)
      : new Uint8ArrayCtor(ask("text.encode", toWellFormed.call(text)) as ArrayBuffer);
  const decodeUtf8 = (bytes: Uint8Array): string =>
    bytes.length === 0 ? "" : ask(
      "text.decode",
      ["utf-8", false, false, -1, false],
      (typedSlice.call(bytes) as Uint8Array).buffer as ArrayBuffer,
    ) as string;

  const make: BodyExports["make"] = (text, bytes) => ({ text, bytes, stream: null, used: false });
  const extract: BodyExports["extract"] = (value) =>
    typeof value === "string"
      ? { state: make(toWellFormed.call(value), null), type: "text/plain;charset=UTF-8" }
      : extra().extract(value);
  // The streams module is web-streams-polyfill: a stream read from or cancelled has its
  // `_disturbed` set, which the standard's "disturbed" is.
  const disturbed = (state: BodyState) =>
    state.stream !== null && (state.stream as { _disturbed?: unknown })._disturbed === true;
  const unusable: BodyExports["unusable"] = (state) =>
    state !== null &&
    (state.used || disturbed(state) ||
      (state.stream !== null && (state.stream as ReadableStream).locked));
  const clone: BodyExports["clone"] = (state) => {
    if (state.stream !== null) return extra().teeInto(state);
    const copy = make(state.text, state.bytes);
    if (state.tooDeep !== undefined) copy.tooDeep = state.tooDeep;
    if (state.error !== undefined) copy.error = state.error;
    return copy;
  };
  const take: BodyExports["take"] = (state) => {
    const taken = state.stream !== null ? extra().proxy(state) : make(state.text, state.bytes);
    if (state.tooDeep !== undefined) taken.tooDeep = state.tooDeep;
    if (state.error !== undefined) taken.error = state.error;
    state.used = true;
    return taken;
  };
  const consume: BodyExports["consume"] = (state, signal, aborted) => {
    if (state === null) return promiseResolve(new Uint8ArrayCtor(0));
    if (state.error !== undefined) return promiseReject(state.error);
    if (unusable(state)) {
      return promiseReject(new TypeErrorCtor("Body is unusable: the body has already been read"));
    }
    state.used = true;
    if (state.stream !== null) return extra().readAll(state, signal ?? null, aborted ?? null);
    // Read whole: an abort can no longer error it.
    const unwatch = state.unwatch;
    if (unwatch !== undefined) {
      state.unwatch = undefined;
      unwatch();
    }
    return promiseResolve(state.text !== null ? state.text : state.bytes!);
  };

  // UTF-8 decode drops a leading BOM, also from a body that is held as text.
  const asText = (body: Uint8Array | string) =>
    typeof body !== "string"
      ? decodeUtf8(body)
      : charCodeAt.call(body, 0) === 0xfeff
      ? stringSlice.call(body, 1)
      : body;
  const asBytes = (body: Uint8Array | string) =>
    typeof body === "string" ? utf8(body) : typedSlice.call(body) as Uint8Array;

  const mixin: BodyExports["mixin"] = (proto, stateOf, typeOf) => {
    const checked = (self: unknown, what: string): BodyState | null => {
      const state = stateOf(self);
      if (state === undefined) throw new TypeErrorCtor("Illegal invocation of " + what);
      return state;
    };
    const read = <T>(
      self: unknown,
      what: string,
      then: (body: Uint8Array | string, state: BodyState | null, self: unknown) => T,
    ): Promise<T> => {
      let state: BodyState | null;
      try {
        state = checked(self, what);
      } catch (error) {
        return promiseReject(error);
      }
      // A body that cannot be read rejects at once, not a microtask later.
      if (state !== null && (state.error !== undefined || unusable(state))) {
        return consume(state) as never;
      }
      return promiseThen.call(consume(state), (body) => then(body, state, self)) as Promise<T>;
    };
    const methods: Record<string, (this: unknown) => unknown> = {
      text() {
        return read(this, "text", asText);
      },
      json() {
        return read(this, "json", (body, state) => {
          if (state !== null && state.tooDeep !== undefined) {
            throw new SyntaxErrorCtor(
              "Cannot parse the response body as JSON: nested deeper than " + state.tooDeep +
                " levels",
            );
          }
          return JSONparse(asText(body));
        });
      },
      arrayBuffer() {
        return read(this, "arrayBuffer", (body) => asBytes(body).buffer);
      },
      bytes() {
        return read(this, "bytes", asBytes);
      },
      blob() {
        return read(this, "blob", (body, _, self) => extra().toBlob(asBytes(body), typeOf(self)));
      },
      formData() {
        return read(this, "formData", (body, _, self) => extra().toForm(body, typeOf(self)));
      },
    };
    for (const name of core.objectKeys(methods)) {
      defineProperty(proto, name, {
        value: methods[name],
        writable: true,
        configurable: true,
        enumerable: true,
      });
    }
    defineProperty(proto, "bodyUsed", {
      configurable: true,
      enumerable: true,
      get(this: unknown) {
        const state = checked(this, "bodyUsed");
        return state !== null && (state.used || disturbed(state));
      },
    });
    defineProperty(proto, "body", {
      configurable: true,
      enumerable: true,
      get(this: unknown) {
        const state = checked(this, "body");
        if (state === null) return null;
        if (state.stream === null) extra().streamOf(state);
        return state.stream;
      },
    });
  };
  return { extract, make, clone, take, unusable, consume, utf8, mixin, decodeUtf8 };
}

/** The internal `body` module. */
export const bodyModule: GuestModule = {
  name: "body",
  globals: [],
  factory: bodyFactory,
};
