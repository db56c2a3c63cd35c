/**
 * Guest source: `fetch()`. A call records the request with the host and returns a promise
 * that the host settles later through {@link FetchExports.deliver} (the controller's
 * `deliver`), possibly in another process after a replay.
 *
 * `init.signal` (or a `Request` input's `signal`): an aborted signal rejects the call with
 * its reason before anything is recorded; a signal that aborts while the request waits for
 * its response rejects the call with its reason and tells the host, which journals the abort
 * and stops waiting for the request (a response that comes later is not delivered).
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { ResponsePayload } from "./response.ts";
import type { AbortExports } from "./abort.ts";

/** What the fetch module exports besides the `fetch` global. */
export interface FetchExports {
  /** Settles pending request `id` with the host's answer; false when `id` is not pending. */
  deliver(id: string, json: string, dataText: string): boolean;
}

interface Waiter {
  resolve(value: unknown): void;
  reject(reason: unknown): void;
  url: string;
  /** Stops watching the request's signal (a no-op without one). */
  unwatch(): void;
}

function fetchFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { OrigPromise, OrigMap, mapGet, mapSet, mapDelete, StringCtor, TypeErrorCtor } = core;
  const { toUpperCase, quote, own, JSONparse } = core;
  const hostRecord = core.host.record;
  const hostAbort = core.host.abortRequest;
  const noop = () => {};
  const Headers = use("headers").Headers as typeof globalThis.Headers;
  const Response = use("response").Response as new (
    payload: ResponsePayload,
    url: string,
    dataText: string,
  ) => unknown;
  const pending = new OrigMap<string, Waiter>();

  type Input =
    | string
    | { url?: unknown; method?: unknown; headers?: unknown; signal?: unknown }
    | null;
  type Init =
    | {
      method?: unknown;
      headers?: unknown;
      body?: unknown;
      redirect?: unknown;
      signal?: unknown;
      external?: unknown;
    }
    | null
    | undefined;
  const ArrayBufferCtor = ArrayBuffer;
  const Uint8ArrayCtor = Uint8Array;
  const isView = ArrayBuffer.isView;
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

  /**
   * The signal of a request: `init.signal` when present (`null`: none), else the input's
   * (a `Request`'s). A `TypeError` when it is not an `AbortSignal`.
   */
  const signalOf = (input: Input, options: NonNullable<Init>): AbortSignal | null => {
    let signal = options.signal;
    if (signal === undefined && input !== null && typeof input === "object") signal = input.signal;
    if (signal === undefined || signal === null) return null;
    const abort = use("abort") as AbortExports;
    if (!(signal instanceof abort.AbortSignal)) {
      throw new TypeErrorCtor("fetch: signal must be an AbortSignal");
    }
    return signal;
  };

  /** Request `id`'s signal aborted: the host stops waiting for it, the call rejects. */
  const abortWaiter = (id: string, reason: unknown) => {
    const waiter = mapGet.call(pending, id) as Waiter | undefined;
    if (waiter === undefined) return;
    mapDelete.call(pending, id);
    hostAbort(id);
    waiter.reject(reason);
  };

  function fetch(input: Input, init?: Init): Promise<unknown> {
    return new OrigPromise((resolve, reject) => {
      let url;
      if (typeof input === "string") url = input;
      else if (input !== null && typeof input === "object" && typeof input.url === "string") {
        url = input.url;
      } else url = StringCtor(input);
      const options = init === undefined || init === null ? {} : init;
      const signal = signalOf(input, options);
      let method = options.method;
      if (
        method === undefined && input !== null && typeof input === "object" &&
        typeof input.method === "string"
      ) method = input.method;
      method = method === undefined ? "GET" : toUpperCase.call(StringCtor(method));
      let headerSource = options.headers;
      if (
        headerSource === undefined && input !== null && typeof input === "object" &&
        input.headers !== undefined
      ) headerSource = input.headers;
      let headers = "";
      new Headers(headerSource as HeadersInit).forEach((value, name) => {
        headers += (headers ? "," : "") + quote(name) + ":" + quote(value);
      });
      let message = '{"url":' + quote(url) + ',"method":' + quote(method) + ',"headers":{' +
        headers + "}";
      const raw = options.body;
      if (raw !== undefined && raw !== null) {
        const bytes = raw instanceof ArrayBufferCtor
          ? new Uint8ArrayCtor(raw)
          : isView(raw)
          ? new Uint8ArrayCtor(raw.buffer, raw.byteOffset, raw.byteLength)
          : undefined;
        message += bytes === undefined
          ? ',"body":' + quote(StringCtor(raw))
          : ',"bodyBase64":' + quote(base64(bytes));
      }
      const redirect = options.redirect;
      if (redirect !== undefined) {
        if (redirect !== "follow" && redirect !== "manual" && redirect !== "error") {
          throw new TypeErrorCtor(
            'fetch: redirect must be "follow", "manual" or "error", got ' +
              quote(StringCtor(redirect)),
          );
        }
        message += ',"redirect":' + quote(redirect);
      }
      // FlowState's own option: who performs the request (the server, or an outside worker).
      const external = options.external;
      if (external !== undefined) message += ',"external":' + (external ? "true" : "false");
      if (signal !== null && signal.aborted) {
        reject(signal.reason);
        return;
      }
      const id = hostRecord(message + "}");
      const waiter: Waiter = { resolve, reject, url, unwatch: noop };
      mapSet.call(pending, id, waiter);
      if (signal !== null) {
        waiter.unwatch = (use("abort") as AbortExports).onAbort(
          signal,
          (reason) => abortWaiter(id, reason),
        );
      }
    });
  }

  const deliver: FetchExports["deliver"] = (id, json, dataText) => {
    const waiter = mapGet.call(pending, id) as Waiter | undefined;
    if (waiter === undefined) return false;
    mapDelete.call(pending, id);
    waiter.unwatch();
    const raw = JSONparse(json);
    const payload: ResponsePayload = {
      success: own(raw, "success"),
      status: own(raw, "status") as number | undefined,
      statusText: own(raw, "statusText") as string | undefined,
      url: own(raw, "url") as string | undefined,
      headers: own(raw, "headers") as Record<string, string> | undefined,
      data: dataText === "" ? undefined : JSONparse(dataText),
      tooDeep: own(raw, "tooDeep") as number | undefined,
    };
    if (payload.status === 0 || (payload.status === undefined && payload.success !== true)) {
      const reason = own(raw, "error");
      waiter.reject(
        new TypeErrorCtor("fetch failed: " + (reason === undefined ? "unknown error" : reason)),
      );
    } else {
      waiter.resolve(new Response(payload, waiter.url, dataText));
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
