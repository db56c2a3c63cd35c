/**
 * Automatic fetch: performs a paused task's pending requests and hands each response
 * back through the `/call` endpoint (the self-POST), retrying with backoff until the task
 * has it. After a few failed self-POSTs the response is delivered in-process instead, so a
 * task is never left waiting for a response nobody will send.
 *
 * Delivery is at-least-once: a request in flight when the server dies is sent again
 * after the restart, with the same `Idempotency-Key`. A request its task no longer waits for
 * (the guest aborted it, or the task ended) is cancelled: its connection is closed and
 * nothing is delivered.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { FetchRequest, FetchResponse } from "../engine/mod.ts";

/** What became of one delivery attempt. */
export type DeliveryOutcome = "delivered" | "gone" | "retry";

/** What the dispatcher needs. */
export interface FetchDispatcherDeps {
  /** Performs a request; never throws (failures are `success: false` responses). */
  perform(request: FetchRequest, signal: AbortSignal): Promise<FetchResponse>;
  /** The self-POST to `/call`. */
  post(taskId: string, response: FetchResponse): Promise<DeliveryOutcome>;
  /** In-process delivery, used once the self-POST keeps failing. */
  deliverDirect(taskId: string, response: FetchResponse): Promise<DeliveryOutcome>;
  /** Whether the task still waits for this request (stop retrying otherwise). */
  isPending(taskId: string, requestId: string): boolean;
  logger: Logger;
  /** Self-POST attempts before in-process delivery takes over. */
  postAttempts: number;
  /** Most outbound requests in flight at once. */
  concurrency: number;
}

/** First retry delay, ms; doubles up to {@link MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 5_000;

/** Runs pending requests of paused tasks and delivers their responses. */
export class FetchDispatcher {
  readonly #deps: FetchDispatcherDeps;
  /** Requests being performed or delivered, by id, with their task and their own abort. */
  readonly #inflight = new Map<string, { taskId: string; abort: AbortController }>();
  readonly #abort = new AbortController();
  readonly #running = new Set<Promise<void>>();
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(deps: FetchDispatcherDeps) {
    this.#deps = deps;
  }

  /** Number of requests being performed or delivered. */
  get size(): number {
    return this.#inflight.size;
  }

  /**
   * Makes `requests` the task's requests in flight: starts each one not already in flight,
   * and cancels the task's requests in flight that are not among them (give `[]` when the
   * task waits for nothing any more).
   */
  dispatch(taskId: string, requests: readonly FetchRequest[]): void {
    const wanted = new Set(requests.map((request) => request.id));
    for (const [id, flight] of this.#inflight) {
      if (flight.taskId === taskId && !wanted.has(id)) flight.abort.abort();
    }
    if (this.#abort.signal.aborted) return;
    for (const request of requests) {
      if (this.#inflight.has(request.id)) continue;
      const abort = new AbortController();
      this.#inflight.set(request.id, { taskId, abort });
      const signal = AbortSignal.any([this.#abort.signal, abort.signal]);
      const run = this.#run(taskId, request, signal).finally(() => {
        this.#inflight.delete(request.id);
        this.#running.delete(run);
      });
      this.#running.add(run);
    }
  }

  /** Stops: aborts requests in flight and waits for every delivery loop to end. */
  async close(): Promise<void> {
    this.#abort.abort();
    for (const wake of this.#waiting.splice(0)) wake();
    await Promise.allSettled([...this.#running]);
  }

  async #run(taskId: string, request: FetchRequest, signal: AbortSignal): Promise<void> {
    const { logger } = this.#deps;
    let response: FetchResponse;
    await this.#acquire(signal);
    try {
      if (signal.aborted) return;
      response = await this.#deps.perform(request, signal);
    } finally {
      this.#release();
    }
    if (signal.aborted) {
      if (!this.#abort.signal.aborted) {
        logger.info("fetch cancelled", { taskId, fetchId: request.id, url: request.url });
      }
      return;
    }
    logger.info("fetch done", {
      taskId,
      fetchId: request.id,
      url: request.url,
      status: response.status ?? null,
      error: response.error,
    });
    let delay = FIRST_BACKOFF_MS;
    for (let attempt = 1; !signal.aborted; attempt++) {
      if (!this.#deps.isPending(taskId, request.id)) return;
      const direct = attempt > this.#deps.postAttempts;
      let outcome: DeliveryOutcome;
      try {
        outcome = direct
          ? await this.#deps.deliverDirect(taskId, response)
          : await this.#deps.post(taskId, response);
      } catch (error) {
        logger.warn("delivery failed", {
          taskId,
          fetchId: request.id,
          attempt,
          error: String(error),
        });
        outcome = "retry";
      }
      if (outcome !== "retry") return;
      await this.#sleep(delay, signal);
      delay = Math.min(delay * 2, MAX_BACKOFF_MS);
    }
  }

  #sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }

  async #acquire(signal: AbortSignal): Promise<void> {
    while (this.#active >= this.#deps.concurrency && !signal.aborted) {
      await new Promise<void>((wake) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          const at = this.#waiting.indexOf(done);
          if (at >= 0) this.#waiting.splice(at, 1);
          wake();
        };
        this.#waiting.push(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
    this.#active++;
  }

  #release(): void {
    this.#active--;
    this.#waiting.shift()?.();
  }
}
