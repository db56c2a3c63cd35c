/**
 * Automatic fetch: performs a paused task's pending requests and hands each response
 * back through the `/call` endpoint (the self-POST), retrying with backoff until the task
 * has it. After a few failed self-POSTs the response is delivered in-process instead, so a
 * task is never left waiting for a response nobody will send.
 *
 * Delivery is at-least-once: a request in flight when the server dies is sent again
 * after the restart, with the same `Idempotency-Key`.
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
  readonly #inflight = new Set<string>();
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

  /** Starts each request of `requests` that is not already in flight. */
  dispatch(taskId: string, requests: readonly FetchRequest[]): void {
    if (this.#abort.signal.aborted) return;
    for (const request of requests) {
      if (this.#inflight.has(request.id)) continue;
      this.#inflight.add(request.id);
      const run = this.#run(taskId, request).finally(() => {
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

  async #run(taskId: string, request: FetchRequest): Promise<void> {
    const { logger } = this.#deps;
    let response: FetchResponse;
    await this.#acquire();
    try {
      if (this.#abort.signal.aborted) return;
      response = await this.#deps.perform(request, this.#abort.signal);
    } finally {
      this.#release();
    }
    if (this.#abort.signal.aborted) return;
    logger.info("fetch done", {
      taskId,
      fetchId: request.id,
      url: request.url,
      status: response.status ?? null,
      error: response.error,
    });
    let delay = FIRST_BACKOFF_MS;
    for (let attempt = 1; !this.#abort.signal.aborted; attempt++) {
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
      await this.#sleep(delay);
      delay = Math.min(delay * 2, MAX_BACKOFF_MS);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.#abort.signal;
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
    });
  }

  async #acquire(): Promise<void> {
    while (this.#active >= this.#deps.concurrency && !this.#abort.signal.aborted) {
      await new Promise<void>((wake) => this.#waiting.push(wake));
    }
    this.#active++;
  }

  #release(): void {
    this.#active--;
    this.#waiting.shift()?.();
  }
}
