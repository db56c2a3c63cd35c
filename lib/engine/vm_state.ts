/**
 * The shapes that cross the engine's API: checks of a {@link VMState} and a
 * {@link FetchResponse} given to resume, the message a response is delivered as, and the
 * ids and seeds a new execution gets.
 *
 * @module
 */
import { ExecutionError } from "./execution_error.ts";
import type { FetchResponse, ResumeInput, VMState } from "./types.ts";
import { headerList } from "./header_list.ts";
import { jsonNestingExceeds, MAX_GUEST_PARSE_DEPTH } from "../json_depth.ts";
import { createHash } from "node:crypto";

/** Throws a `TypeError` unless `state` looks like a {@link VMState} of version 1. */
export function assertState(state: VMState): void {
  const ok = state !== null && typeof state === "object" && state.version === 1 &&
    typeof state.id === "string" && typeof state.code === "string" &&
    Array.isArray(state.journal) && Array.isArray(state.pending) &&
    Array.isArray(state.logs) && typeof state.seed === "number" &&
    (state.variant === "asyncify" || state.variant === "sync");
  if (!ok) throw new TypeError("Cannot resume: the state is not a FetchFlow VMState (version 1)");
}

/** Throws a `TypeError` unless `response` is an object with a string id. */
export function assertResponse(response: FetchResponse): void {
  if (response === null || typeof response !== "object" || typeof response.id !== "string") {
    throw new TypeError("Cannot resume: the fetch response must be an object with a string id");
  }
}

/** Throws a `TypeError` unless `input` is a {@link ResumeInput}. */
export function assertInput(input: ResumeInput): void {
  if (input === null || typeof input !== "object") {
    throw new TypeError("Cannot resume: the input must be an object");
  }
  if (input.type === "response") assertResponse(input.response);
  else if (input.type === "signal") {
    const signal = input.signal;
    if (signal === null || typeof signal !== "object" || typeof signal.name !== "string") {
      throw new TypeError("Cannot resume: a signal must be an object with a string name");
    }
  } else if (input.type !== "timers") {
    throw new TypeError(
      `Cannot resume with input of type ${JSON.stringify((input as { type?: unknown }).type)}`,
    );
  }
}

/** The error of a response whose id is not pending. */
export function staleError(id: string, pending: readonly string[]): ExecutionError {
  const list = pending.length ? pending.map((p) => `"${p}"`).join(", ") : "none";
  return new ExecutionError(
    "stale",
    "StaleResponseError",
    `Fetch response "${id}" does not answer a pending request (pending: ${list})`,
  );
}

/** The error of a part of a response that is not the part awaited (a repeat, or a gap). */
export function partError(id: string, part: number, awaited: number): ExecutionError {
  return new ExecutionError(
    "stale",
    "StaleResponseError",
    `Fetch response "${id}": part ${part} is not the one awaited (part ${awaited})`,
  );
}

/**
 * The message a response is delivered as: the response without its body and headers, with
 * `headerList` (normalised once, here: see `header_list.ts`) and, for a response with a
 * body, `binary` when the body is base64; and the body as JSON text ("" when absent): the
 * exact text when the response carries its bytes as `body`, base64 for `bodyBase64`, else
 * `data` as the seed's contract has it (a string as is, anything else as its JSON text). A
 * text body nested deeper than {@link MAX_GUEST_PARSE_DEPTH} is flagged `tooDeep` (the
 * limit), so that the guest's `json()` rejects it.
 */
export function deliveryMessage(response: FetchResponse): [string, string] {
  const { data, body, bodyBase64, headers, ...meta } = response;
  const message: Record<string, unknown> = { ...meta, headerList: headerList(headers) };
  let text: string | undefined;
  if (typeof body === "string") text = body;
  else if (typeof bodyBase64 === "string") {
    message.binary = true;
    return [JSON.stringify(message), JSON.stringify(bodyBase64)];
  } else if (data !== undefined) text = typeof data === "string" ? data : JSON.stringify(data);
  if (text === undefined) return [JSON.stringify(message), ""];
  // The guest's json() refuses such a body rather than exhausting the stack parsing it.
  if (text.length > MAX_GUEST_PARSE_DEPTH && jsonNestingExceeds(text, MAX_GUEST_PARSE_DEPTH)) {
    message.tooDeep = MAX_GUEST_PARSE_DEPTH;
  }
  return [JSON.stringify(message), JSON.stringify(text)];
}

/** A new, unique request id. */
export function newFetchId(index: number): string {
  const random = crypto.getRandomValues(new Uint8Array(4));
  const hex = Array.from(random, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `fetch_${Date.now()}_${index}_${hex}`;
}

/** A new entropy secret for the guest `crypto`: 32 random bytes as hex. */
export function randomEntropy(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * The key of the guest's entropy stream for a state's `entropy`: the 32 bytes of its hex,
 * or (for a state that has none) the SHA-256 of its text.
 */
export function entropyKey(entropy: string): Uint8Array {
  if (/^[0-9a-f]{64}$/.test(entropy)) {
    return Uint8Array.from({ length: 32 }, (_, i) => parseInt(entropy.slice(2 * i, 2 * i + 2), 16));
  }
  return createHash("sha256").update(entropy).digest();
}

/** A new seed for the guest `Math.random`. */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}
