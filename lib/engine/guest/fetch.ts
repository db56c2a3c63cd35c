/**
 * Guest source: `fetch(input, init)`. A call records the request with the host and returns
 * a promise that the host settles later through {@link FetchExports.deliver} (the
 * controller's `deliver`), possibly in another process after a replay.
 *
 * `input` is a URL string, a `URL` or a `Request`; the init is checked as the `Request`
 * constructor checks it. A call with a string or `URL` and a string body (or none) takes a
 * short path that loads neither the request nor the body module: most fetches of a script
 * pay only for this module and the response. An `init.signal` already aborted rejects the
 * call with its reason and records nothing; one that aborts while the request waits for its
 * response rejects the call with its reason and tells the host, which journals the abort and
 * stops waiting for the request (a response that comes later is not delivered). Aborted
 * after the response came, the response's body errors with the reason unless it is read or
 * empty; aborted before or while a request body stream is read, that stream is cancelled.
 * A response whose body arrives in parts (`bodyPending`) resolves the call with its first
 * part and stays pending until its last (`body_parts.ts`): an abort then also aborts the
 * request.
 * The abort comes from the guest's own deterministic events, so a replay takes the same
 * path.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { ResponseExports, ResponsePayload } from "./response.ts";
import type { RequestExports } from "./request.ts";
import type { BodyExports, BodyState } from "./body.ts";
import type { AbortExports } from "./abort.ts";
import type { BodyAbortExports } from "./body_abort.ts";
import type { BodyParts, BodyPartsExports } from "./body_parts.ts";

/** What the fetch module exports besides the `fetch` global. */
export interface FetchExports {
  /** Settles pending request `id` with the host's answer; false when `id` is not pending. */
  deliver(id: string, json: string, dataText: string): boolean;
}

interface Waiter {
  resolve(value: unknown): void;
  reject(reason: unknown): void;
  url: string;
  /** The call's signal, if any. */
  signal: AbortSignal | null;
  /** Stops watching the signal for the request's abort (a no-op without one). */
  unwatch(): void;
  /** Set once the response came and its body arrives in parts. */
  parts?: BodyParts;
}

function fetchFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { OrigPromise, OrigMap, mapGet, mapSet, mapDelete, StringCtor, TypeErrorCtor } = core;
  const { toUpperCase, quote, own, JSONparse, arrayIncludes, promiseThen } = core;
  const hostRecord = core.host.record;
  const hostAbort = core.host.abortRequest;
  const noop = () => {};
  const toWellFormed = (String.prototype as unknown as { toWellFormed(this: string): string })
    .toWellFormed;
  const pending = new OrigMap<string, Waiter>();
  const NORMALISED = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
  const FORBIDDEN = ["CONNECT", "TRACE", "TRACK"];
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const charAt = String.prototype.charAt;
  const base64 = (bytes: Uint8Array): string => {
    let out = "";
    const n = bytes.length;
    for (let i = 0; i < n; i += 3) {
      const a = bytes[i]!, b = i + 1 < n ? bytes[i + 1]! : 0, c = i + 2 < n ? bytes[i + 2]! : 0;
      out += charAt.call(B64, a >> 2) + charAt.call(B64, ((a & 3) << 4) | (b >> 4)) +
        (i + 1 < n ? charAt.call(B64, ((b & 15) << 2) | (c >> 6)) : "=") +
        (i + 2 < n ? charAt.call(B64, c & 63) : "=");
    }
    return out;
  };
  const isToken = core.isToken;
  /** Init members only the Request constructor checks: their presence takes the long path. */
  const REQUEST_OPTIONS = [
    "cache",
    "credentials",
    "duplex",
    "integrity",
    "keepalive",
    "mode",
    "priority",
    "referrer",
    "referrerPolicy",
    "window",
  ];
  const hasRequestOptions = (init: unknown) => {
    if (init === undefined || init === null || typeof init !== "object") return false;
    for (const key of REQUEST_OPTIONS) if (key in init) return true;
    return false;
  };
  const isRequest = (input: unknown) =>
    core.loaded("request") && input instanceof (use("request").Request as typeof Request);

  /** What a call sends, gathered from its input and init. */
  interface Outgoing {
    url: string;
    method: string;
    headers: Headers | null;
    text: string | null;
    state: BodyState | null;
    type: string | null;
    redirect: string | undefined;
    signal: AbortSignal | null;
  }

  /** The short path: a URL string or `URL`, checked as the Request constructor would. */
  const fromInit = (input: unknown, init: unknown): Outgoing => {
    if (init !== undefined && init !== null && typeof init !== "object") {
      throw new TypeErrorCtor("fetch: init must be an object");
    }
    const options = (init ?? {}) as Record<string, unknown>;
    // The seed's contract: a plain object's `url`, `method` and `headers` (a Request-like
    // record) are used when the init does not give them.
    const like = typeof input === "object" && input !== null &&
        typeof (input as { url?: unknown }).url === "string"
      ? input as Record<string, unknown>
      : null;
    let methodInit = options.method;
    let headersInit = options.headers;
    if (like !== null) {
      if (methodInit === undefined && typeof like.method === "string") methodInit = like.method;
      if (headersInit === undefined) headersInit = like.headers;
    }
    const out: Outgoing = {
      url: typeof input === "string"
        ? input
        : like !== null
        ? like.url as string
        : StringCtor(input),
      method: "GET",
      headers: null,
      text: null,
      state: null,
      type: null,
      redirect: undefined,
      signal: null,
    };
    if (methodInit !== undefined) {
      const method = StringCtor(methodInit);
      if (!isToken(method)) throw new TypeErrorCtor("fetch: invalid method " + quote(method));
      const upper = toUpperCase.call(method);
      if (arrayIncludes.call(FORBIDDEN, upper)) {
        throw new TypeErrorCtor("fetch: forbidden method " + quote(method));
      }
      out.method = arrayIncludes.call(NORMALISED, upper) ? upper : method;
    }
    if (headersInit !== undefined) {
      const Headers = use("headers").Headers as typeof globalThis.Headers;
      out.headers = new Headers(headersInit as HeadersInit);
    }
    const raw = options.body;
    if (raw !== undefined && raw !== null) {
      if (out.method === "GET" || out.method === "HEAD") {
        throw new TypeErrorCtor("fetch: a " + out.method + " request cannot have a body");
      }
      if (typeof raw === "string") {
        out.text = toWellFormed.call(raw);
        out.type = "text/plain;charset=UTF-8";
      } else {
        const { state, type } = (use("body") as unknown as BodyExports).extract(raw);
        out.state = state;
        out.type = type;
      }
    }
    const redirect = options.redirect;
    if (redirect !== undefined) {
      if (redirect !== "follow" && redirect !== "manual" && redirect !== "error") {
        throw new TypeErrorCtor(
          'fetch: redirect must be "follow", "manual" or "error", got ' +
            quote(StringCtor(redirect)),
        );
      }
      out.redirect = redirect;
    }
    const signal = options.signal;
    if (signal !== undefined && signal !== null) {
      if (
        !core.loaded("abort") || !(signal instanceof (use("abort").AbortSignal as never))
      ) throw new TypeErrorCtor("fetch: init.signal must be an AbortSignal");
      out.signal = signal as AbortSignal;
    }
    return out;
  };

  /** The long path: a Request, built from `input` and `init` by the request module. */
  const fromRequest = (input: unknown, init: unknown): Outgoing => {
    const requests = use("request") as unknown as RequestExports;
    const request = requests.forFetch(input, init);
    return {
      url: request.url,
      method: request.method,
      headers: request.headers,
      text: null,
      state: requests.bodyOf(request),
      type: null,
      redirect: request.redirect === "follow" ? undefined : request.redirect,
      signal: requests.signalOf(request),
    };
  };

  const send = (
    out: Outgoing,
    external: unknown,
    body: string | Uint8Array | null,
    waiter: Waiter,
  ) => {
    let headers = "";
    let typed = false;
    if (out.headers !== null) {
      out.headers.forEach((value, name) => {
        if (name === "content-type") typed = true;
        headers += (headers ? "," : "") + quote(name) + ":" + quote(value);
      });
    }
    if (!typed && out.type !== null) {
      headers += (headers ? "," : "") + '"content-type":' + quote(out.type);
    }
    let message = '{"url":' + quote(out.url) + ',"method":' + quote(out.method) +
      ',"headers":{' + headers + "}";
    if (body !== null) {
      message += typeof body === "string"
        ? ',"body":' + quote(body)
        : ',"bodyBase64":' + quote(base64(body));
    }
    if (out.redirect !== undefined) message += ',"redirect":' + quote(out.redirect);
    // FlowState's own option: who performs the request (the server, or an outside worker).
    if (external !== undefined) message += ',"external":' + (external ? "true" : "false");
    const id = hostRecord(message + "}");
    mapSet.call(pending, id, waiter);
    if (out.signal !== null) {
      waiter.unwatch = (use("abort") as unknown as AbortExports).onAbort(out.signal, (reason) => {
        if (mapGet.call(pending, id) !== waiter) return;
        mapDelete.call(pending, id);
        hostAbort(id);
        waiter.reject(reason);
      });
    }
  };

  function fetch(input: unknown, init?: unknown): Promise<unknown> {
    return new OrigPromise((resolve, reject) => {
      const out = isRequest(input) || hasRequestOptions(init)
        ? fromRequest(input, init)
        : fromInit(input, init);
      if (out.signal !== null && out.signal.aborted) {
        // The Request constructor's TypeErrors come first: an invalid URL, which the checks
        // above let through for the host to report, is the one left.
        new (use("request").Request as typeof Request)(out.url);
        const reason = out.signal.reason;
        reject(reason);
        // The standard's "abort the fetch() call": a readable body stream is cancelled.
        if (out.state !== null && out.state.stream !== null) {
          (use("bodyabort") as unknown as BodyAbortExports).cancel(out.state, reason);
        }
        return;
      }
      const external = init !== undefined && init !== null
        ? (init as { external?: unknown }).external
        : undefined;
      const waiter: Waiter = { resolve, reject, url: out.url, signal: out.signal, unwatch: noop };
      const state = out.state;
      if (state === null) {
        send(out, external, out.text, waiter);
        return;
      }
      if (state.stream === null) {
        state.used = true;
        send(out, external, state.text !== null ? state.text : state.bytes, waiter);
        return;
      }
      // A stream is read whole first: the host sends bodies of known length. An abort
      // meanwhile rejects the call at once and cancels the stream.
      const body = use("body") as unknown as BodyExports;
      promiseThen.call(body.consume(state, out.signal, reject), (content) => {
        send(out, external, content, waiter);
      }, reject);
    });
  }

  /** The TypeError of an answer that is a network failure, or null. */
  const failureOf = (raw: object): TypeError | null => {
    const status = own(raw, "status") as number | undefined;
    if (status !== 0 && (status !== undefined || own(raw, "success") === true)) return null;
    const reason = own(raw, "error");
    return new TypeErrorCtor("fetch failed: " + (reason === undefined ? "unknown error" : reason));
  };

  /** The next part of a body arriving in parts: enqueued, or the body's failure. */
  const deliverPart = (id: string, waiter: Waiter, parts: BodyParts, raw: object, text: string) => {
    const last = own(raw, "bodyPending") !== true;
    if (last) {
      mapDelete.call(pending, id);
      waiter.unwatch();
    }
    const failed = failureOf(raw);
    if (failed !== null) parts.fail(failed);
    else parts.push(text === "" ? "" : JSONparse(text), own(raw, "binary") === true, last);
  };

  /**
   * The body of a response whose first part came: pending under `id` until its last part,
   * so that an abort of the call's signal, or a cancel of the body stream, aborts the
   * request (the host closes the connection).
   */
  const receive = (id: string, first: Waiter, payload: ResponsePayload): BodyParts => {
    const waiter: Waiter = {
      resolve: noop,
      reject: noop,
      url: first.url,
      signal: first.signal,
      unwatch: noop,
    };
    const stop = () => {
      if (mapGet.call(pending, id) !== waiter) return;
      mapDelete.call(pending, id);
      waiter.unwatch();
      hostAbort(id);
    };
    const parts = (use("bodyparts") as unknown as BodyPartsExports).open(
      payload.body ?? "",
      payload.binary === true,
      stop,
    );
    waiter.parts = parts;
    mapSet.call(pending, id, waiter);
    if (first.signal !== null) {
      waiter.unwatch = (use("abort") as unknown as AbortExports).onAbort(first.signal, stop);
    }
    return parts;
  };

  const deliver: FetchExports["deliver"] = (id, json, dataText) => {
    const waiter = mapGet.call(pending, id) as Waiter | undefined;
    if (waiter === undefined) return false;
    const raw = JSONparse(json) as object;
    if (waiter.parts !== undefined) {
      deliverPart(id, waiter, waiter.parts, raw, dataText);
      return true;
    }
    mapDelete.call(pending, id);
    waiter.unwatch();
    const failed = failureOf(raw);
    if (failed !== null) {
      waiter.reject(failed);
      return true;
    }
    const payload: ResponsePayload = {
      status: own(raw, "status") as number | undefined,
      statusText: own(raw, "statusText") as string | undefined,
      url: own(raw, "url") as string | undefined,
      headerList: own(raw, "headerList") as [string, string][] | undefined,
      body: dataText === "" ? undefined : JSONparse(dataText),
      binary: own(raw, "binary") === true,
      tooDeep: own(raw, "tooDeep") as number | undefined,
    };
    try {
      const parts = own(raw, "bodyPending") === true
        ? receive(id, waiter, payload).state
        : undefined;
      const responses = use("response") as unknown as ResponseExports;
      const response = responses.fromHost(payload, waiter.url, parts);
      // Aborting after the response came errors its body while still readable.
      if (waiter.signal !== null) responses.watchAbort(response, waiter.signal);
      waiter.resolve(response);
    } catch (error) {
      waiter.reject(error);
    }
    return true;
  };

  return { fetch, deliver };
}

/** The `fetch` global. */
export const fetchModule: GuestModule = {
  name: "fetch",
  globals: ["fetch"],
  factory: fetchFactory,
};
