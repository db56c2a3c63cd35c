/**
 * Pending request bodies written once: the file store leaves the body of a pending request
 * in the journal line of its `request` entry and keeps only a reference to that line
 * ({@link BodyRef}) in the record and in its commit lines, so a paused task holding large
 * POST bodies costs their size once on disk and nothing in memory until a request is sent.
 *
 * @module
 */
import type { FetchRequest } from "../engine/types.ts";
import type { PendingRequest, TaskEvent, TaskRecord } from "./task_store.ts";

/**
 * Bodies up to this many characters stay in the record (they cost less than the read
 * back); larger ones are referenced.
 */
export const INLINE_BODY_CHARS = 16 * 1024;

/**
 * What a signed journal line ends with after its MAC's 64 hex digits: `"}` and the `\n`.
 * The chain value a line is checked against is the previous line's MAC, which ends this
 * many bytes before the line starts.
 */
const MAC_END_BYTES = 3;
/** Hex digits of a MAC. */
const MAC_DIGITS = 64;

const encoder = new TextEncoder();

/** Characters of the body of `request` (0 without one). */
function bodyChars(request: FetchRequest): number {
  return (request.options.body?.length ?? 0) + (request.options.bodyBase64?.length ?? 0);
}

/** Bytes of the body of `request`. */
function bodyBytes(request: FetchRequest): number {
  const { body, bodyBase64 } = request.options;
  if (body !== undefined) return encoder.encode(body).length;
  if (bodyBase64 === undefined) return 0;
  const padding = bodyBase64.endsWith("==") ? 2 : bodyBase64.endsWith("=") ? 1 : 0;
  return (bodyBase64.length / 4) * 3 - padding;
}

/**
 * `record` with the large bodies of its pending requests replaced by references to the
 * journal lines of this save that hold them: `events` are the save's events (plain, before
 * any sealing), `lines` their journal lines as written (sealed, signed, without `\n`), the
 * first at byte `start` of the journal. A request already referenced, or whose `request`
 * entry is not among `events` (it was journaled by an earlier save this record does not
 * reference), keeps what it has. Returns `record` itself when nothing changes.
 */
export function withBodyRefs(
  record: TaskRecord,
  events: readonly TaskEvent[],
  lines: readonly Uint8Array[],
  start: number,
): TaskRecord {
  const large = (request: PendingRequest) =>
    request.bodyRef === undefined && bodyChars(request) > INLINE_BODY_CHARS;
  if (!record.pending.some(large)) return record;
  const places = new Map<string, { at: number; length: number; request: FetchRequest }>();
  let offset = start;
  for (const [index, event] of events.entries()) {
    const length = lines[index]!.length;
    if (event.type === "request") {
      places.set(event.request.id, { at: offset, length, request: event.request });
    }
    offset += length + 1;
  }
  let changed = false;
  const pending = record.pending.map((request): PendingRequest => {
    const place = places.get(request.id);
    if (!large(request) || !place || !sameBody(place.request, request)) return request;
    changed = true;
    const { body: _body, bodyBase64: _bodyBase64, ...options } = request.options;
    return {
      ...request,
      options,
      bodyRef: { at: place.at, length: place.length, bytes: bodyBytes(request) },
    };
  });
  return changed ? { ...record, pending } : record;
}

function sameBody(a: FetchRequest, b: FetchRequest): boolean {
  return a.options.body === b.options.body && a.options.bodyBase64 === b.options.bodyBase64;
}

/**
 * Where to read a referenced line from: with a MAC, from the end of the previous line's
 * MAC (the chain value the line is checked against), else from the line itself.
 */
export function bodyLineRange(
  ref: { at: number; length: number },
  signed: boolean,
): { from: number; length: number } {
  const from = signed && ref.at > 0 ? ref.at - MAC_END_BYTES - MAC_DIGITS : ref.at;
  if (from < 0) throw new RangeError(`A body reference at byte ${ref.at} is not a line`);
  return { from, length: ref.at - from + ref.length };
}

/**
 * The line and the previous line's MAC (when `signed` and the line is not the first) in
 * `bytes`, read at {@link bodyLineRange}.
 */
export function splitBodyLine(
  bytes: Uint8Array,
  ref: { at: number; length: number },
  signed: boolean,
): { line: string; previousMac?: string } {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const { from } = bodyLineRange(ref, signed);
  const head = ref.at - from;
  const line = decoder.decode(bytes.subarray(head));
  if (head === 0) return { line };
  const tail = decoder.decode(bytes.subarray(0, head));
  return { line, previousMac: tail.slice(0, MAC_DIGITS) };
}
