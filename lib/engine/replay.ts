/**
 * Replay: a fresh VM runs the code again and must ask for the requests its journal recorded,
 * in the same order; every difference is a `nondeterminism` error that names both sides.
 *
 * @module
 */
import { ExecutionError } from "./execution_error.ts";
import type { FetchRequest, JournalEntry, RedirectMode } from "./types.ts";

/** A request as the guest asks for it. */
export interface AskedRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  bodyBase64?: string;
  redirect?: RedirectMode;
  external?: boolean;
}

/** The recorded requests of a journal being replayed, matched against what the code asks. */
export class Replay {
  readonly #recorded: FetchRequest[];
  /** Ids of the aborted requests, in the order the guest aborted them. */
  readonly #aborted: string[];

  constructor(journal: readonly JournalEntry[]) {
    this.#recorded = journal.flatMap((entry) => entry.type === "request" ? [entry.request] : []);
    this.#aborted = journal.flatMap((entry) => entry.type === "abort" ? [entry.id] : []);
  }

  /** The recorded request number `index`, which must be the one the code `asked` for. */
  match(index: number, asked: AskedRequest): FetchRequest {
    const recorded = this.#recorded[index];
    if (!recorded) {
      throw nondeterminism(
        `Fetch #${index}: the journal has no request here but the code asked for ${
          describeRequest(asked)
        }`,
      );
    }
    // Methods compare without case: journals written before the Fetch standard's method
    // normalisation recorded every method upper-cased (`patch` as `PATCH`).
    if (
      recorded.url !== asked.url ||
      (recorded.options.method ?? "GET").toUpperCase() !== asked.method.toUpperCase() ||
      recorded.options.body !== asked.body ||
      recorded.options.bodyBase64 !== asked.bodyBase64
    ) {
      throw nondeterminism(
        `Fetch #${index} differs from the journal: recorded ${describeRequest(recorded)}, ` +
          `the code asked for ${describeRequest(asked)}`,
      );
    }
    return recorded;
  }

  /** Checks that abort number `index` the code makes, of request `id`, is the recorded one. */
  matchAbort(index: number, id: string): void {
    const recorded = this.#aborted[index];
    if (recorded === id) return;
    throw nondeterminism(
      recorded === undefined
        ? `Abort #${index}: the journal has no abort here but the code aborted fetch "${id}"`
        : `Abort #${index} differs from the journal: recorded fetch "${recorded}", ` +
          `the code aborted fetch "${id}"`,
    );
  }

  /** Throws when the code asked for fewer than the `requestCount` recorded requests. */
  checkComplete(requestCount: number): void {
    if (requestCount < this.#recorded.length) {
      const missing = this.#recorded[requestCount]!;
      throw nondeterminism(
        `Fetch #${requestCount} was recorded as ${describeRequest(missing)} ` +
          `but replaying the code did not ask for it`,
      );
    }
  }
}

/** The error of a journal answering a request the replayed code did not make. */
export function unaskedResponse(id: string): ExecutionError {
  return nondeterminism(
    `The journal answers fetch "${id}" but replaying the code did not ask for it`,
  );
}

/** The error of a journal aborting a request the replayed code did not abort (yet). */
export function unmadeAbort(id: string): ExecutionError {
  return nondeterminism(
    `The journal aborts fetch "${id}" here but replaying the code did not abort it`,
  );
}

/** The error of a journal firing a timer the replayed code did not arm. */
export function unarmedTimer(id: number): ExecutionError {
  return nondeterminism(`The journal fires timer ${id} but replaying the code did not arm it`);
}

function nondeterminism(message: string): ExecutionError {
  return new ExecutionError("nondeterminism", "NondeterminismError", message);
}

function describeRequest(request: FetchRequest | AskedRequest): string {
  const method = "options" in request ? request.options.method ?? "GET" : request.method;
  const body = "options" in request ? request.options.body : request.body;
  const shownBody = body === undefined
    ? ""
    : ` with body ${JSON.stringify(body.length > 80 ? `${body.slice(0, 80)}…` : body)}`;
  return `${method} ${request.url}${shownBody}`;
}
