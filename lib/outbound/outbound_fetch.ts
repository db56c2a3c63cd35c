/**
 * Performs a guest's request for the server: policy check at every hop, redirects handled
 * here as the request's `redirect` mode says, one time limit for the whole exchange, and a
 * bounded, streamed body. Bodies are bytes both ways: the request body is sent exactly as
 * the guest gave it, and the response body comes back exactly as the server sent it (`body`
 * when it is valid UTF-8, `bodyBase64` otherwise). A body slow to come may be delivered in
 * parts as it arrives ({@link PerformFetchOptions.parts}).
 *
 * {@link performFetch} never throws for anything about the request: every failure becomes
 * a {@link FetchResponse} with `success: false`, an `error` and no `status`.
 *
 * @module
 */
import { concat } from "@std/bytes/concat";
import type { ByteHold } from "./byte_budget.ts";
import { EgressDeniedError, type EgressPolicy } from "./egress_policy.ts";
import { pinnedClient } from "./pinned_client.ts";
import type { PinnedClientPool } from "./pinned_client_pool.ts";
import { jsonNestingExceeds, MAX_JSON_DEPTH } from "../json_depth.ts";
import { decodeBody, encodeBody, type FetchRequest, type FetchResponse } from "../engine/mod.ts";

/** Most redirects followed before giving up. */
export const MAX_REDIRECTS = 10;

/** Request headers never forwarded: hop-by-hop ones, and those the client computes. */
const DROPPED_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
]);

/** Headers describing the body; dropped when a redirect turns the request into a GET. */
const BODY_HEADERS = ["content-type", "content-encoding", "content-language", "content-location"];

/** Credentials not sent to another origin after a redirect. */
const CREDENTIAL_HEADERS = ["authorization", "cookie"];

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** Options of {@link performFetch}. */
export interface PerformFetchOptions {
  /** Time limit of the whole exchange, redirects and body included, in ms. */
  timeoutMs: number;
  /** Largest accepted response body, in bytes. */
  maxBytes: number;
  /** Checked before every hop. */
  policy: EgressPolicy;
  /** Aborts the exchange (e.g. on shutdown). */
  signal?: AbortSignal;
  /** Where the body's bytes are reserved as they arrive (reading waits while over budget). */
  hold?: ByteHold;
  /**
   * A header set on every request (replacing the guest's), by which this server's edge
   * recognises its own tasks calling it.
   */
  selfMark?: { header: string; value: string };
  /** The `fetch` to use. Default: the global one. */
  fetchImpl?: typeof fetch;
  /** Where pinned clients are kept for reuse. Default: a new client per request. */
  clients?: PinnedClientPool;
  /** Delivers a response whose body is slow to come in parts. Default: always whole. */
  parts?: ResponseParts;
}

/**
 * How a response is delivered in parts: when its body is not complete `afterMs` after its
 * headers, `deliver` gets its status, headers and the bytes so far (`bodyPending`, part 0),
 * then the bytes that came since, at most once per `afterMs` (parts 1, 2...); the response
 * the fetch resolves with is then the last part (or the failure of the body, with its part
 * number). Once a part is delivered the request is not attempted again. `deliver` resolving
 * `false` ends the exchange: the task wants no more of it.
 */
export interface ResponseParts {
  afterMs: number;
  deliver(part: FetchResponse): Promise<boolean>;
}

/** How far the delivery of a response in parts went: parts delivered so far. */
interface Progress {
  parts: number;
}

/** Thrown internally to end the exchange with a given error text. */
class FetchFailure extends Error {
  override name = "FetchFailure";
}

/** Performs `request`; resolves with the response or with a failure, never rejects. */
export async function performFetch(
  request: FetchRequest,
  options: PerformFetchOptions,
): Promise<FetchResponse> {
  return (await attemptFetch(request, options)).response;
}

/**
 * What one attempt at a request gave: the response (or failure), and whether a failure
 * without a response is worth another attempt (a connection error or a timeout; not a
 * refusal by the egress policy, an invalid URL, a body too large or a redirect refused).
 */
export interface FetchAttemptResult {
  response: FetchResponse;
  /** A network failure that may go away: `true` only when there is no `status`. */
  transient: boolean;
}

/** {@link performFetch}, saying whether a failure is transient. Never rejects. */
export async function attemptFetch(
  request: FetchRequest,
  options: PerformFetchOptions,
): Promise<FetchAttemptResult> {
  const progress: Progress = { parts: 0 };
  // Once parts went to the task, a failure is that of the body: its next part, not retried.
  const fail = (error: string, transient = false): FetchAttemptResult => ({
    response: {
      id: request.id,
      success: false,
      error,
      timestamp: Date.now(),
      ...(progress.parts > 0 ? { part: progress.parts } : {}),
    },
    transient: transient && progress.parts === 0,
  });
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return fail(`Invalid URL "${request.url}"`);
  }

  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), options.timeoutMs);
  const signal = options.signal
    ? AbortSignal.any([timeout.signal, options.signal])
    : timeout.signal;
  try {
    return {
      response: await exchange(request, url, signal, options, progress),
      transient: false,
    };
  } catch (error) {
    if (timeout.signal.aborted) {
      return fail(`Request to ${url.href} timed out after ${options.timeoutMs} ms`, true);
    }
    if (options.signal?.aborted) return fail(`Request to ${url.href} was aborted`);
    if (error instanceof FetchFailure || error instanceof EgressDeniedError) {
      return fail(error.message);
    }
    return fail(`Request to ${url.href} failed: ${describe(error)}`, true);
  } finally {
    clearTimeout(timer);
  }
}

async function exchange(
  request: FetchRequest,
  firstUrl: URL,
  signal: AbortSignal,
  options: PerformFetchOptions,
  progress: Progress,
): Promise<FetchResponse> {
  const fetchImpl = options.fetchImpl ?? fetch;
  let url = firstUrl;
  let method = (request.options.method ?? "GET").toUpperCase();
  let body: Uint8Array<ArrayBuffer> | undefined = decodeBody(request.options);
  const mode = request.options.redirect ?? "follow";
  const headers = requestHeaders(request);
  if (options.selfMark) headers.set(options.selfMark.header, options.selfMark.value);

  for (let redirects = 0;; redirects++) {
    const target = await abortable(options.policy.check(url, signal), signal);
    // Connect to the address the policy checked, not to a second lookup of the name.
    const pinned = target.address === undefined
      ? undefined
      : options.clients
      ? options.clients.acquire(url, target.address)
      : pinnedClient(url, target.address);
    let response: Response;
    let location: string | null;
    try {
      response = await fetchImpl(url, {
        method,
        headers,
        body,
        redirect: "manual",
        signal,
        client: pinned?.client,
      });
      location = response.headers.get("location");
      if (!REDIRECT_STATUSES.has(response.status) || location === null || mode === "manual") {
        return await readResponse(request, url, response, signal, options, progress);
      }
      await response.body?.cancel().catch(() => {});
    } finally {
      pinned?.close();
    }
    if (mode === "error") {
      throw new FetchFailure(
        `Request to ${url.href} failed: redirected with ${response.status} while its redirect mode is "error"`,
      );
    }
    if (redirects >= MAX_REDIRECTS) {
      throw new FetchFailure(
        `Request to ${firstUrl.href} failed: more than ${MAX_REDIRECTS} redirects`,
      );
    }
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new FetchFailure(`Request to ${url.href} redirected to an invalid URL "${location}"`);
    }
    if ([301, 302, 303].includes(response.status) && method !== "HEAD") {
      method = "GET";
      body = undefined;
      for (const name of BODY_HEADERS) headers.delete(name);
    }
    if (next.origin !== url.origin) {
      for (const name of CREDENTIAL_HEADERS) headers.delete(name);
    }
    url = next;
  }
}

function requestHeaders(request: FetchRequest): Headers {
  const headers = new Headers(request.options.headers ?? {});
  const listed = (headers.get("connection") ?? "").split(",").map((s) => s.trim().toLowerCase());
  for (const name of [...DROPPED_HEADERS, ...listed]) {
    if (name !== "") headers.delete(name);
  }
  if (!headers.has("idempotency-key")) headers.set("idempotency-key", request.id);
  return headers;
}

async function readResponse(
  request: FetchRequest,
  url: URL,
  response: Response,
  signal: AbortSignal,
  options: PerformFetchOptions,
  progress: Progress,
): Promise<FetchResponse> {
  const { maxBytes, parts } = options;
  const tooLarge = () =>
    new FetchFailure(`Response body from ${url.href} exceeds ${maxBytes} bytes`);
  const declared = response.headers.get("content-length");
  if (declared !== null && /^[0-9]+$/.test(declared) && Number(declared) > maxBytes) {
    await response.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of response.headers) {
    headers[name] = Object.hasOwn(headers, name) ? `${headers[name]}, ${value}` : value;
  }
  const head: FetchResponse = {
    id: request.id,
    success: response.ok,
    status: response.status,
    statusText: response.statusText,
    headers,
    url: url.href,
  };
  const flush = parts && (async (bytes: Uint8Array) => {
    const part: FetchResponse = progress.parts === 0
      ? { ...head }
      : { id: request.id, success: true, part: progress.parts };
    Object.assign(part, bodyFields(bytes), { bodyPending: true, timestamp: Date.now() });
    progress.parts++;
    if (!await parts.deliver(part)) {
      throw new FetchFailure(`Request to ${url.href} was ended: its task wants no more of it`);
    }
  });
  const bytes = await readBounded(response, signal, maxBytes, tooLarge, options.hold, {
    afterMs: parts?.afterMs ?? Infinity,
    flush,
  });
  if (progress.parts > 0) {
    return {
      id: request.id,
      success: true,
      part: progress.parts,
      ...bodyFields(bytes),
      timestamp: Date.now(),
    };
  }
  return {
    ...head,
    data: seedData(response.headers.get("content-type"), bytes),
    ...bodyFields(bytes),
    timestamp: Date.now(),
  };
}

/** `body` or `bodyBase64` for `bytes`; none for no bytes. */
function bodyFields(bytes: Uint8Array): Partial<FetchResponse> {
  return bytes.byteLength === 0 ? {} : encodeBody(bytes);
}

/**
 * The seed's `data`: parsed JSON when the response is JSON, else the text (decoded with
 * replacement characters). Kept beside the exact body for readers of the seed's shape.
 */
function seedData(contentType: string | null, bytes: Uint8Array): unknown {
  const text = new TextDecoder("utf-8").decode(bytes);
  return isJsonType(contentType) ? parseJsonData(text) : text;
}

/** `application/json`, or any `<type>/<subtype>+json`. */
function isJsonType(contentType: string | null): boolean {
  const essence = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return essence === "application/json" ||
    /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+\+json$/.test(essence);
}

/**
 * Parsed JSON unless it is invalid, a string literal or nested deeper than
 * {@link MAX_JSON_DEPTH} (a hostile upstream's million-deep array could not be stored,
 * copied to a worker or serialized again); then the text itself.
 */
function parseJsonData(text: string): unknown {
  if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) return text;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "string" ? text : value;
  } catch {
    return text;
  }
}

/**
 * When a body being read is flushed: `afterMs` after the start and then after each flush,
 * if it is not complete, `flush` gets the bytes read since the last one (none, the first
 * time, is a flush too). Never when `flush` is absent.
 */
interface Flushing {
  afterMs: number;
  flush: ((bytes: Uint8Array) => Promise<void>) | undefined;
}

/** Reads the body whole (the bytes after the last flush), within `maxBytes` in all. */
async function readBounded(
  response: Response,
  signal: AbortSignal,
  maxBytes: number,
  tooLarge: () => Error,
  hold: ByteHold | undefined,
  flushing: Flushing,
): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array();
  const reader = response.body.getReader();
  const { flush, afterMs } = flushing;
  let chunks: Uint8Array<ArrayBuffer>[] = [];
  let size = 0;
  let flushes = 0;
  let flushAt = flush ? performance.now() + afterMs : Infinity;
  let read: Promise<ReadableStreamReadResult<Uint8Array<ArrayBuffer>>> | undefined;
  try {
    for (;;) {
      read ??= abortable(reader.read(), signal);
      const result = await within(read, flushAt - performance.now());
      if (result === undefined) {
        if (chunks.length > 0 || flushes++ === 0) await flush!(concat(chunks));
        chunks = [];
        flushAt = performance.now() + afterMs;
        continue;
      }
      read = undefined;
      const { done, value } = result;
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) throw tooLarge();
      if (hold && !await hold.reserve(value.byteLength, signal)) throw signal.reason;
      chunks.push(value);
    }
  } catch (error) {
    read?.catch(() => {});
    await reader.cancel().catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
  return concat(chunks);
}

/** What `promise` resolves with, or `undefined` when `ms` pass first (`Infinity`: never). */
function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  if (ms === Infinity) return promise;
  if (ms <= 0) return Promise.resolve(undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const elapsed = new Promise<undefined>((resolve) =>
    timer = setTimeout(() => resolve(undefined), ms)
  );
  return Promise.race([promise, elapsed]).finally(() => clearTimeout(timer));
}

/** Rejects as soon as `signal` aborts, even if `promise` never settles. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // Deno wraps the cause in "error sending request ...: <cause>"; keep the whole chain.
  let text = error.message;
  let cause: unknown = error.cause;
  for (let depth = 0; cause instanceof Error && depth < 3; depth++) {
    if (!text.includes(cause.message)) text += `: ${cause.message}`;
    cause = cause.cause;
  }
  return text;
}
