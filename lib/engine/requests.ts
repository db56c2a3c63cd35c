/**
 * The requests of a run: each `fetch()` the guest makes is checked against the replayed
 * journal (or the journal's room when live), journaled, and pending until its response is
 * delivered. At most `maxPending` are pending (handed to the host) at once; later ones wait
 * their turn in order and become pending as responses arrive, so the limit bounds
 * concurrency, not the script. Which ones wait depends only on the journal's order of
 * requests and responses, so a replay queues the same ones.
 *
 * A response may arrive in parts (`bodyPending`): its request stays pending, counting the
 * parts delivered, until the last one.
 *
 * The guest may abort a request (its `fetch()` signal aborted) while it is pending or
 * waiting: it is dropped, and the abort journaled (checked against the journal in a replay)
 * so that the host, which sees it pending no more, cancels it.
 *
 * @module
 */
import type { Journal } from "./journal.ts";
import type { AskedRequest, Replay } from "./replay.ts";
import type { FetchRequest, FetchResponse, JournalEntry } from "./types.ts";
import { newFetchId } from "./vm_state.ts";

/** Pending requests, in the order they were made, and the count of all made so far. */
export class Requests {
  /** Requests waiting for a response, by id. */
  readonly pending = new Map<string, FetchRequest>();
  /** Requests made since the start of the run (replayed ones included). */
  count = 0;
  /** Requests aborted since the start of the run (replayed ones included). */
  aborts = 0;
  /** Requests made while `maxPending` were pending, oldest first. */
  readonly #waiting: FetchRequest[] = [];
  /** Parts delivered of the pending requests whose response arrives in parts, by id. */
  readonly #parts = new Map<string, number>();
  readonly #maxPending: number;
  readonly #journal: Journal;

  constructor(maxPending: number, journal: Journal) {
    this.#maxPending = maxPending;
    this.#journal = journal;
  }

  /** Forgets every request (a state is being restored). */
  clear(): void {
    this.pending.clear();
    this.#waiting.length = 0;
    this.#parts.clear();
    this.count = 0;
    this.aborts = 0;
  }

  /** Parts of pending request `id`'s response delivered so far (0 before its first). */
  partsOf(id: string): number {
    return this.#parts.get(id) ?? 0;
  }

  /**
   * Takes `response` for its pending request: a part with `bodyPending` is counted and the
   * request stays pending; a whole response, or the last part, settles it.
   */
  answer(response: FetchResponse): void {
    if (response.bodyPending === true) {
      this.#parts.set(response.id, this.partsOf(response.id) + 1);
    } else this.settle(response.id);
  }

  /**
   * The pending requests as a paused execution lists them: those whose response arrives in
   * parts carry `receivedParts` (copies: the journal keeps the request as it was made).
   */
  listPending(): FetchRequest[] {
    const list = [...this.pending.values()];
    if (this.#parts.size === 0) return list;
    return list.map((request) => {
      const parts = this.#parts.get(request.id);
      return parts === undefined ? request : { ...request, receivedParts: parts };
    });
  }

  /** Ends pending request `id` (its response arrived) and lets the next waiting one in. */
  settle(id: string): void {
    this.pending.delete(id);
    this.#parts.delete(id);
    while (this.pending.size < this.#maxPending && this.#waiting.length > 0) {
      const next = this.#waiting.shift()!;
      this.pending.set(next.id, next);
    }
  }

  /**
   * Ends request `id`, which the guest aborted in `step` at guest clock `at`: journals the
   * abort (or checks it against `replay`), then drops the request from the pending ones
   * (letting the next waiting one in) or from those waiting. Throws an `ExecutionError`
   * (nondeterminism or limit). A request that is neither pending nor waiting is left alone.
   */
  abort(id: string, step: number, at: number, replay: Replay | null): void {
    const waitingAt = this.#waiting.findIndex((request) => request.id === id);
    if (!this.pending.has(id) && waitingAt === -1) return;
    const index = this.aborts++;
    if (replay) replay.matchAbort(index, id);
    else {
      const entry: JournalEntry = { type: "abort", step, id, at };
      this.#journal.append(entry, this.#journal.checkRoom(entry));
    }
    if (waitingAt === -1) this.settle(id);
    else this.#waiting.splice(waitingAt, 1);
  }

  #admit(request: FetchRequest): void {
    if (this.pending.size < this.#maxPending) this.pending.set(request.id, request);
    else this.#waiting.push(request);
  }

  /**
   * Records the request the guest `asked` for in `step` and returns its id: the recorded
   * one when `replay` is given. Throws an `ExecutionError` (nondeterminism or limit).
   */
  record(asked: AskedRequest, step: number, replay: Replay | null): string {
    const index = this.count++;
    if (replay) {
      const recorded = replay.match(index, asked);
      this.#admit(recorded);
      return recorded.id;
    }
    const request: FetchRequest = {
      id: newFetchId(index),
      url: asked.url,
      options: { method: asked.method, headers: asked.headers },
      timestamp: Date.now(),
    };
    if (asked.body !== undefined) request.options.body = asked.body;
    if (asked.bodyBase64 !== undefined) request.options.bodyBase64 = asked.bodyBase64;
    if (asked.redirect !== undefined) request.options.redirect = asked.redirect;
    if (asked.external !== undefined) request.options.external = asked.external;
    const entry: JournalEntry = { type: "request", step, index, request };
    const bytes = this.#journal.checkRoom(entry);
    this.#journal.append(entry, bytes);
    this.#admit(request);
    return request.id;
  }
}
