/**
 * Guest source: `Request`, as the Fetch standard defines it: the constructor from a URL
 * string, a `URL` or a `Request` plus an init (method normalised, forbidden methods and
 * bodies on GET/HEAD refused with TypeErrors, headers, body, signal, redirect and the other
 * modes checked), `clone()` and the body methods (`body.ts`). `fetch()` builds one for each
 * call and sends what it holds.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { BodyExports, BodyState } from "./body.ts";

/** What the request module exports besides its global. */
export interface RequestExports {
  /**
   * The request `fetch(input, init)` sends; a URL string that does not parse is kept as
   * given (the host reports it), unlike the constructor, which refuses it.
   */
  forFetch(input: unknown, init: unknown): globalThis.Request;
  /** The body of `request` (null for none). */
  bodyOf(request: unknown): BodyState | null;
  /** The signal given to `request` (its own, or its input's), if any. */
  signalOf(request: unknown): AbortSignal | null;
}

function requestFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { TypeErrorCtor, StringCtor, quote, toUpperCase, arrayIncludes } = core;
  const Headers = use("headers").Headers as typeof globalThis.Headers;
  const body = use("body") as unknown as BodyExports;
  const NORMALISED = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
  const FORBIDDEN = ["CONNECT", "TRACE", "TRACK"];
  const ENUMS: Record<string, readonly string[]> = {
    mode: ["navigate", "same-origin", "no-cors", "cors"],
    credentials: ["omit", "same-origin", "include"],
    cache: ["default", "no-store", "reload", "no-cache", "force-cache", "only-if-cached"],
    redirect: ["follow", "error", "manual"],
    referrerPolicy: [
      "",
      "no-referrer",
      "no-referrer-when-downgrade",
      "same-origin",
      "origin",
      "strict-origin",
      "origin-when-cross-origin",
      "strict-origin-when-cross-origin",
      "unsafe-url",
    ],
    priority: ["high", "low", "auto"],
    duplex: ["half"],
  };
  const isToken = core.isToken;
  const fail = (why: string): never => {
    throw new TypeErrorCtor("Failed to construct 'Request': " + why);
  };

  interface Fields {
    method: string;
    url: string;
    headers: Headers;
    body: BodyState | null;
    signal: AbortSignal | null;
    mode: string;
    credentials: string;
    cache: string;
    redirect: string;
    referrer: string;
    referrerPolicy: string;
    integrity: string;
    keepalive: boolean;
    priority: string;
  }

  let fieldsOf: (object: unknown) => Fields | undefined = () => undefined;
  let lenient = false;
  /** Set while clone() builds its copy: the constructor leaves the body to clone(). */
  let cloning = false;

  const parseUrl = (text: string): string => {
    const URLCtor = use("url").URL as typeof URL;
    let url;
    try {
      url = new URLCtor(text);
    } catch {
      if (lenient) return text;
      return fail("invalid URL " + quote(text));
    }
    if (url.username !== "" || url.password !== "") {
      fail("the URL " + quote(text) + " includes credentials");
    }
    return url.href;
  };

  class Request {
    #fields: Fields;
    #signal: AbortSignal | null = null;
    static {
      fieldsOf = (o) =>
        o !== null && typeof o === "object" && #fields in o ? (o as Request).#fields : undefined;
    }
    constructor(input: unknown, init: unknown = undefined) {
      if (arguments.length < 1) fail("1 argument required, but only 0 present");
      if (init !== undefined && init !== null && typeof init !== "object") {
        fail("init must be an object");
      }
      const options = (init ?? {}) as Record<string, unknown>;
      const from = fieldsOf(input);
      let fields: Fields;
      if (from !== undefined) {
        fields = {
          method: from.method,
          url: from.url,
          headers: from.headers,
          body: from.body,
          signal: from.signal,
          mode: from.mode,
          credentials: from.credentials,
          cache: from.cache,
          redirect: from.redirect,
          referrer: from.referrer,
          referrerPolicy: from.referrerPolicy,
          integrity: from.integrity,
          keepalive: from.keepalive,
          priority: from.priority,
        };
      } else {
        fields = {
          method: "GET",
          url: parseUrl(StringCtor(input)),
          headers: null as unknown as Headers,
          body: null,
          signal: null,
          mode: "cors",
          credentials: "same-origin",
          cache: "default",
          redirect: "follow",
          referrer: "about:client",
          referrerPolicy: "",
          integrity: "",
          keepalive: false,
          priority: "auto",
        };
      }
      if (options.window !== undefined && options.window !== null) {
        fail("init.window must be null");
      }
      for (const key of core.objectKeys(ENUMS)) {
        const value = options[key];
        if (value === undefined) continue;
        const text = StringCtor(value);
        if (!arrayIncludes.call(ENUMS[key]!, text)) {
          fail(quote(text) + " is not a valid value of init." + key);
        }
        if (key === "mode" && text === "navigate") fail('init.mode cannot be "navigate"');
        if (key !== "duplex") (fields as unknown as Record<string, string>)[key] = text;
      }
      if (fields.cache === "only-if-cached" && fields.mode !== "same-origin") {
        fail('cache "only-if-cached" needs mode "same-origin"');
      }
      if (options.referrer !== undefined) {
        const referrer = StringCtor(options.referrer);
        if (referrer === "") fields.referrer = "";
        else {
          const URLCtor = use("url").URL as typeof URL;
          try {
            const url = new URLCtor(referrer);
            fields.referrer = url.href;
          } catch {
            fail("invalid referrer " + quote(referrer));
          }
        }
      }
      if (options.integrity !== undefined) fields.integrity = StringCtor(options.integrity);
      if (options.keepalive !== undefined) fields.keepalive = !!options.keepalive;
      if (options.method !== undefined) {
        const method = StringCtor(options.method);
        if (!isToken(method)) fail("invalid method " + quote(method));
        const upper = toUpperCase.call(method);
        if (arrayIncludes.call(FORBIDDEN, upper)) fail("forbidden method " + quote(method));
        fields.method = arrayIncludes.call(NORMALISED, upper) ? upper : method;
      }
      if (
        fields.mode === "no-cors" && !arrayIncludes.call(["GET", "HEAD", "POST"], fields.method)
      ) {
        fail('mode "no-cors" allows only GET, HEAD and POST');
      }
      if (options.signal !== undefined) {
        const signal = options.signal;
        if (signal !== null) {
          const AbortSignalCtor = use("abort").AbortSignal as typeof AbortSignal;
          if (!(signal instanceof AbortSignalCtor)) fail("init.signal must be an AbortSignal");
        }
        fields.signal = signal as AbortSignal | null;
      }
      const headerInit = options.headers !== undefined
        ? options.headers
        : from !== undefined
        ? from.headers
        : undefined;
      fields.headers = new Headers(headerInit as HeadersInit);
      const inputBody = from === undefined ? null : from.body;
      const bodyInit = options.body;
      const hasBody = (bodyInit !== undefined && bodyInit !== null) || inputBody !== null;
      if (hasBody && (fields.method === "GET" || fields.method === "HEAD")) {
        fail("a " + fields.method + " request cannot have a body");
      }
      if (bodyInit !== undefined && bodyInit !== null) {
        const { state, type } = body.extract(bodyInit);
        fields.body = state;
        if (type !== null && !fields.headers.has("content-type")) {
          fields.headers.append("content-type", type);
        }
      } else if (inputBody !== null) {
        if (body.unusable(inputBody)) fail("the input request's body has already been read");
        // The new request takes the input's body over: the input's is now used.
        fields.body = cloning ? null : body.take(inputBody);
      }
      this.#fields = fields;
    }
    get method(): string {
      return this.#fields.method;
    }
    get url(): string {
      return this.#fields.url;
    }
    get headers(): Headers {
      return this.#fields.headers;
    }
    get destination(): string {
      return "";
    }
    get referrer(): string {
      return this.#fields.referrer;
    }
    get referrerPolicy(): string {
      return this.#fields.referrerPolicy;
    }
    get mode(): string {
      return this.#fields.mode;
    }
    get credentials(): string {
      return this.#fields.credentials;
    }
    get cache(): string {
      return this.#fields.cache;
    }
    get redirect(): string {
      return this.#fields.redirect;
    }
    get integrity(): string {
      return this.#fields.integrity;
    }
    get keepalive(): boolean {
      return this.#fields.keepalive;
    }
    get isReloadNavigation(): boolean {
      return false;
    }
    get isHistoryNavigation(): boolean {
      return false;
    }
    get duplex(): string {
      return "half";
    }
    /** A signal that follows the one given (made on first read: it loads the abort module). */
    get signal(): AbortSignal {
      if (this.#signal === null) {
        const AbortSignalCtor = use("abort").AbortSignal as typeof AbortSignal;
        const source = this.#fields.signal;
        this.#signal = source === null
          ? new (use("abort").AbortController as typeof AbortController)().signal
          : AbortSignalCtor.any([source]);
      }
      return this.#signal;
    }
    clone(): Request {
      const fields = this.#fields;
      if (body.unusable(fields.body)) {
        throw new TypeErrorCtor("Request.clone: the body has already been read");
      }
      cloning = true;
      let copy;
      try {
        copy = new Request(this);
      } finally {
        cloning = false;
      }
      const copied = copy.#fields;
      copied.headers = new Headers(fields.headers);
      copied.body = fields.body === null ? null : body.clone(fields.body);
      copied.signal = fields.signal === null && this.#signal !== null
        ? this.#signal
        : fields.signal;
      return copy;
    }
    get [Symbol.toStringTag](): string {
      return "Request";
    }
  }
  body.mixin(
    Request.prototype,
    (o) => {
      const fields = fieldsOf(o);
      return fields === undefined ? undefined : fields.body;
    },
    (o) => fieldsOf(o)!.headers.get("content-type"),
  );

  const forFetch = (input: unknown, init: unknown): Request => {
    lenient = true;
    try {
      return new Request(input, init);
    } finally {
      lenient = false;
    }
  };
  const bodyOf: RequestExports["bodyOf"] = (request) => fieldsOf(request)!.body;
  const signalOf: RequestExports["signalOf"] = (request) => fieldsOf(request)!.signal;
  core.webIdl(Request);
  return { Request, forFetch, bodyOf, signalOf };
}

/** The `Request` global. */
export const requestModule: GuestModule = {
  name: "request",
  globals: ["Request"],
  factory: requestFactory,
};
