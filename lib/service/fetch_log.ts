/**
 * The fetches of a task as `GET /status?id=` shows them, built from its journal: for each
 * request, in the order the guest made them, what was asked and what came back (status,
 * headers, size, a preview of the body) or that the task aborted it (`aborted`,
 * `abortedAt`), and in full for `GET /status?id=&fetch=<n>`. A response that arrived in parts
 * is shown as one: the status and headers of its first part, the body of them all, and
 * `parts` (with `receiving` while more are to come).
 *
 * Secrets are redacted ({@link redactHeaders}): the values of credential headers
 * (`authorization`, `cookie`, `set-cookie`, `x-api-key`, names with `token`, `secret`,
 * `password`, `api-key`…) read `[redacted]`, in requests and responses alike, with one
 * exception: the request of a fetch still pending keeps them in the full view of that fetch,
 * because a worker performing it (`AUTO_FETCH=false`) must send them.
 *
 * @module
 */
import { concat } from "@std/bytes/concat";
import { decodeBody, encodeBody, type FetchRequest, type FetchResponse } from "../engine/mod.ts";
import type { TaskEvent } from "../store/mod.ts";
import type { FetchDetailView, FetchLogView } from "./task_types.ts";
import { journalOf } from "./journal_events.ts";

/** What a redacted header value reads. */
export const REDACTED = "[redacted]";

/** Header names whose values are credentials. */
const SECRET_HEADERS = new Set([
  "authorization",
  "proxy-authorization",
  "cookie",
  "set-cookie",
  "x-api-key",
  "api-key",
  "x-auth-token",
  "x-csrf-token",
]);
/** Parts of header names that say the value is a credential. */
const SECRET_NAME = /token|secret|passw|api[-_]?key|credential|signature|session/i;

/** Whether the value of header `name` is a credential to hide. */
export function isSecretHeader(name: string): boolean {
  return SECRET_HEADERS.has(name.toLowerCase()) || SECRET_NAME.test(name);
}

/** `headers` with the values of credential headers replaced by {@link REDACTED}. */
export function redactHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = isSecretHeader(name) ? REDACTED : value;
  }
  return out;
}

/** Characters of a response body shown in the list of fetches. */
export const BODY_PREVIEW_CHARS = 256;

/** A body as JSON carries it: text, or base64 of bytes that are not UTF-8. */
interface BodyFields {
  body?: string;
  bodyBase64?: string;
}

interface Entry {
  request: FetchRequest;
  index: number;
  response?: FetchResponse;
  /** The parts after the first, of a response that arrives in parts. */
  later?: FetchResponse[];
  respondedAt?: number;
  abortedAt?: number;
}

/**
 * Every fetch of a task in request order, with the full bodies: those of its journal as it
 * stands (a fetch that `POST /retry` tried again shows its latest attempt).
 */
export function fetchDetails(events: readonly TaskEvent[]): FetchDetailView[] {
  const entries = new Map<string, Entry>();
  for (const event of journalOf(events)) {
    if (event.type === "request") {
      entries.set(event.request.id, { request: event.request, index: event.index });
    } else if (event.type === "response") {
      const entry = entries.get(event.response.id);
      if (!entry) continue;
      if (!entry.response) {
        entry.response = event.response;
        entry.respondedAt = event.at;
      } else if (entry.response.bodyPending && event.response.part !== undefined) {
        (entry.later ??= []).push(event.response);
      }
    } else if (event.type === "abort") {
      const entry = entries.get(event.id);
      // Aborted before its response came, or while the response arrived in parts.
      if (entry && (!entry.response || entry.response.bodyPending)) entry.abortedAt = event.at;
    }
  }
  return [...entries.values()].map(detailOf);
}

/** The list form of a fetch: the body cut to {@link BODY_PREVIEW_CHARS}. */
export function fetchSummary(detail: FetchDetailView): FetchLogView {
  const { request: _request, body, bodyBase64, ...rest } = detail;
  const summary: FetchLogView = rest;
  const text = body ?? bodyBase64;
  if (text !== undefined) {
    summary.bodyPreview = text.length > BODY_PREVIEW_CHARS
      ? `${text.slice(0, BODY_PREVIEW_CHARS)}…`
      : text;
    if (bodyBase64 !== undefined) summary.bodyEncoding = "base64";
  }
  return summary;
}

function detailOf(entry: Entry): FetchDetailView {
  const { request, response } = entry;
  const view: FetchDetailView = {
    index: entry.index,
    id: request.id,
    method: request.options.method ?? "GET",
    url: request.url,
    status: response?.status ?? null,
    requestedAt: new Date(request.timestamp).toISOString(),
    // A pending request keeps its credentials: whoever performs it must send them.
    request: requestOf(request, response !== undefined || entry.abortedAt !== undefined),
  };
  if (entry.abortedAt !== undefined) {
    view.aborted = true;
    view.abortedAt = new Date(entry.abortedAt).toISOString();
  }
  if (!response) return view;
  if (response.statusText !== undefined) view.statusText = response.statusText;
  if (response.error !== undefined) view.error = response.error;
  view.respondedAt = new Date(response.timestamp ?? entry.respondedAt!).toISOString();
  if (response.headers) view.headers = redactHeaders(response.headers);
  if (response.bodyPending) return withParts(view, response, entry.later ?? []);
  if (response.attempts) view.attempts = response.attempts;
  const body = bodyOf(response);
  if (body) {
    view.size = body.size;
    if (body.text !== undefined) view.body = body.text;
    else view.bodyBase64 = body.base64;
  }
  return view;
}

/** The body, error and parts of a response that arrived in parts: `first`, then `later`. */
function withParts(
  view: FetchDetailView,
  first: FetchResponse,
  later: FetchResponse[],
): FetchDetailView {
  const parts = [first, ...later];
  const last = parts.at(-1)!;
  view.parts = parts.length;
  if (last.bodyPending && view.aborted === undefined) view.receiving = true;
  if (last.error !== undefined) view.error = last.error;
  if (last.attempts) view.attempts = last.attempts;
  const chunks = parts.flatMap((part) => {
    const bytes = part.error === undefined ? decodeBody(part) : undefined;
    return bytes ? [bytes] : [];
  });
  const bytes: Uint8Array = concat(chunks);
  if (bytes.byteLength === 0) return view;
  view.size = bytes.byteLength;
  const fields = encodeBody(bytes);
  if ("body" in fields) view.body = fields.body;
  else view.bodyBase64 = fields.bodyBase64;
  return view;
}

function requestOf(request: FetchRequest, redact: boolean): FetchDetailView["request"] {
  const options = request.options as FetchRequest["options"] & BodyFields;
  const out: FetchDetailView["request"] = {};
  if (options.headers) out.headers = redact ? redactHeaders(options.headers) : options.headers;
  if (typeof options.body === "string") out.body = options.body;
  if (typeof options.bodyBase64 === "string") out.bodyBase64 = options.bodyBase64;
  return out;
}

const utf8 = new TextEncoder();

/** The response body as the guest read it, and its size in bytes. */
function bodyOf(
  response: FetchResponse & BodyFields,
): { text?: string; base64?: string; size: number } | undefined {
  if (typeof response.body === "string") {
    return { text: response.body, size: utf8.encode(response.body).byteLength };
  }
  if (typeof response.bodyBase64 === "string") {
    return { base64: response.bodyBase64, size: base64Size(response.bodyBase64) };
  }
  if (response.data === undefined) return undefined;
  const text = typeof response.data === "string" ? response.data : JSON.stringify(response.data);
  return text === undefined ? undefined : { text, size: utf8.encode(text).byteLength };
}

function base64Size(text: string): number {
  const clean = text.replace(/[^A-Za-z0-9+/]/g, "");
  return Math.floor(clean.length * 3 / 4);
}
