/**
 * Guest source: `Response`, as the Fetch standard defines it: the constructor `(body, init)`
 * with its status, status text and body checks, `Response.json()`, `Response.error()`,
 * `Response.redirect()`, `clone()` and the body methods (`body.ts`). A response `fetch()`
 * resolves is built by {@link ResponseExports.fromHost} from the host's answer: its headers
 * (normalised by the host) become immutable `Headers` only when read, and its body is the
 * exact bytes the server sent.
 *
 * @module
 */
import type { GuestAsk, GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { BodyExports, BodyState } from "./body.ts";
import type { BodyAbortExports } from "./body_abort.ts";
import type { AbortExports } from "./abort.ts";

/** The host's answer to a request, as the guest reads it (see `vm_state.ts`). */
export interface ResponsePayload {
  status?: number;
  statusText?: string;
  url?: string;
  /** The headers, names lowercased and values checked by the host. */
  headerList?: [string, string][];
  /** The body text, or base64 of the bytes when `binary`; absent for no body. */
  body?: string;
  binary?: boolean;
  /** The nesting limit the body exceeds, so `json()` does not parse it (the host checked). */
  tooDeep?: number;
}

/** What the response module exports besides its global. */
export interface ResponseExports {
  /**
   * The response `fetch()` resolves with, for `payload` answering a request to `url`; its
   * body is `parts` when given (a body arriving in parts), else the payload's.
   */
  fromHost(payload: ResponsePayload, url: string, parts?: BodyState): globalThis.Response;
  /**
   * Errors the body of `response` with the reason when `signal` aborts while the body is
   * still readable (see `body_abort.ts`).
   */
  watchAbort(response: globalThis.Response, signal: AbortSignal): void;
}

function responseFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { TypeErrorCtor, RangeErrorCtor, JSONstringify, StringCtor, quote } = core;
  const charCodeAt = String.prototype.charCodeAt;
  const Uint8ArrayCtor = Uint8Array;
  const headersModule = use("headers");
  const Headers = headersModule.Headers as new (init?: unknown, guard?: unknown) => Headers;
  const TRUSTED = headersModule.TRUSTED;
  const body = use("body") as unknown as BodyExports;
  const NULL_BODY = [101, 103, 204, 205, 304];
  const REDIRECTS = [301, 302, 303, 307, 308];

  const isReasonPhrase = (text: string) => {
    for (let i = 0; i < text.length; i++) {
      const c = charCodeAt.call(text, i);
      if (!(c === 9 || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff))) return false;
    }
    return true;
  };
  /** An immutable copy of `headers` (its sorted, combined entries). */
  const frozenCopy = (headers: Headers) => {
    const list: [string, string][] = [];
    for (const pair of headers) list[list.length] = [pair[0], pair[1]];
    return new Headers(list, TRUSTED);
  };

  let stateOf: (object: unknown) => BodyState | null | undefined = () => undefined;
  let typeOf: (object: unknown) => string | null = () => null;
  let build: (
    status: number,
    statusText: string,
    headers: Headers | null,
    list: [string, string][] | null,
    state: BodyState | null,
    type: string,
    url: string,
    redirected: boolean,
  ) => Response;
  let internal = false;

  class Response {
    #status = 200;
    #statusText = "";
    #headers: Headers | null = null;
    /** The host's header list, until the headers are first read. */
    #list: [string, string][] | null = null;
    #body: BodyState | null = null;
    #type = "default";
    #url = "";
    #redirected = false;
    /** Whether the headers are immutable (fetched, error and redirect responses). */
    #frozen = true;
    static {
      stateOf = (o) =>
        o !== null && typeof o === "object" && #body in o ? (o as Response).#body : undefined;
      typeOf = (o) => (o as Response).headers.get("content-type");
      build = (status, statusText, headers, list, state, type, url, redirected) => {
        internal = true;
        let response;
        try {
          response = new Response();
        } finally {
          internal = false;
        }
        response.#status = status;
        response.#statusText = statusText;
        response.#headers = headers;
        response.#list = list;
        response.#body = state;
        response.#type = type;
        response.#url = url;
        response.#redirected = redirected;
        return response;
      };
    }
    constructor(bodyInit: unknown = null, init?: unknown) {
      if (internal) return;
      if (init !== undefined && init !== null && typeof init !== "object") {
        throw new TypeErrorCtor("Failed to construct 'Response': init must be an object");
      }
      const options = (init ?? {}) as { status?: unknown; statusText?: unknown; headers?: unknown };
      const status = options.status === undefined ? 200 : unsignedShort(options.status);
      if (status < 200 || status > 599) {
        throw new RangeErrorCtor(
          "Failed to construct 'Response': the status " + status +
            " is outside the range [200, 599]",
        );
      }
      const statusText = options.statusText === undefined ? "" : StringCtor(options.statusText);
      if (!isReasonPhrase(statusText)) {
        throw new TypeErrorCtor(
          "Failed to construct 'Response': invalid status text " + quote(statusText),
        );
      }
      this.#status = status;
      this.#statusText = statusText;
      const headers = new Headers(options.headers as HeadersInit);
      this.#headers = headers;
      this.#frozen = false;
      if (bodyInit !== null && bodyInit !== undefined) {
        if (NULL_BODY.includes(status)) {
          throw new TypeErrorCtor(
            "Failed to construct 'Response': a response with status " + status +
              " cannot have a body",
          );
        }
        const { state, type } = body.extract(bodyInit);
        this.#body = state;
        if (type !== null && !headers.has("content-type")) headers.append("content-type", type);
      }
    }
    static error(): Response {
      return build(0, "", new Headers([], TRUSTED), null, null, "error", "", false);
    }
    static redirect(url: unknown, status: unknown = 302): Response {
      const URLCtor = use("url").URL as typeof URL;
      let parsed;
      try {
        parsed = new URLCtor(StringCtor(url));
      } catch {
        throw new TypeErrorCtor("Response.redirect: invalid URL " + quote(url));
      }
      const code = unsignedShort(status);
      if (!REDIRECTS.includes(code)) {
        throw new RangeErrorCtor("Response.redirect: " + code + " is not a redirect status");
      }
      const headers = new Headers([["location", parsed.href]], TRUSTED);
      return build(code, "", headers, null, null, "default", "", false);
    }
    static json(data: unknown = undefined, init?: unknown): Response {
      const text = JSONstringify(data);
      if (text === undefined) {
        throw new TypeErrorCtor("Response.json: the data cannot be serialised as JSON");
      }
      const response = new Response(null, init);
      if (NULL_BODY.includes(response.#status)) {
        throw new TypeErrorCtor(
          "Response.json: a response with status " + response.#status + " cannot have a body",
        );
      }
      response.#body = body.make(text, null);
      const headers = response.#headers!;
      if (!headers.has("content-type")) headers.append("content-type", "application/json");
      return response;
    }
    get type(): string {
      return this.#type;
    }
    get url(): string {
      return this.#url;
    }
    get redirected(): boolean {
      return this.#redirected;
    }
    get status(): number {
      return this.#status;
    }
    get ok(): boolean {
      return this.#status >= 200 && this.#status <= 299;
    }
    get statusText(): string {
      return this.#statusText;
    }
    get headers(): Headers {
      if (this.#headers === null) {
        this.#headers = new Headers(this.#list ?? [], TRUSTED);
        this.#list = null;
      }
      return this.#headers;
    }
    clone(): Response {
      if (body.unusable(this.#body)) {
        throw new TypeErrorCtor("Response.clone: the body has already been read");
      }
      const copy = this.#frozen ? frozenCopy(this.headers) : new Headers(this.headers);
      const response = build(
        this.#status,
        this.#statusText,
        copy,
        null,
        this.#body === null ? null : body.clone(this.#body),
        this.#type,
        this.#url,
        this.#redirected,
      );
      response.#frozen = this.#frozen;
      return response;
    }
    get [Symbol.toStringTag](): string {
      return "Response";
    }
  }
  body.mixin(Response.prototype, stateOf, typeOf);

  function unsignedShort(value: unknown): number {
    const n = Number(value);
    if (!Number.isFinite(n)) return 0;
    const int = Math.trunc(n) % 65536;
    return int < 0 ? int + 65536 : int;
  }

  let ask: GuestAsk | undefined;
  const fromHost = (payload: ResponsePayload, url: string, parts?: BodyState): Response => {
    let state: BodyState | null = parts ?? null;
    if (parts === undefined && payload.body !== undefined) {
      if (payload.binary) {
        if (ask === undefined) ask = use("hostcall").ask as GuestAsk;
        const bytes = new Uint8ArrayCtor(ask("base64.decode", payload.body) as ArrayBuffer);
        state = body.make(null, bytes);
      } else state = body.make(payload.body, null);
      if (payload.tooDeep !== undefined) state.tooDeep = payload.tooDeep;
    }
    const finalUrl = payload.url === undefined ? url : payload.url;
    return build(
      payload.status ?? 0,
      payload.statusText ?? "",
      null,
      payload.headerList ?? [],
      state,
      "basic",
      finalUrl,
      payload.url !== undefined && payload.url !== url,
    );
  };
  const watchAbort = (response: Response, signal: AbortSignal) => {
    const state = stateOf(response);
    if (!state) return;
    state.unwatch = (use("abort") as unknown as AbortExports).onAbort(signal, (reason) => {
      (use("bodyabort") as unknown as BodyAbortExports).abortBody(state, reason);
    });
  };
  core.webIdl(Response);
  return { Response, fromHost, watchAbort };
}

/** The `Response` global. */
export const responseModule: GuestModule = {
  name: "response",
  globals: ["Response"],
  factory: responseFactory,
};
