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
 * A response whose body is slow to come may be delivered in parts as it is read (the
 * `part` argument of {@link FetchDispatcherDeps.perform}), each part like a response. Such a
 * request cannot be sent again: found after a restart with parts delivered
 * (`receivedParts`), its body is failed instead, its connection being gone.
 *
 * Graceful shutdown ({@link FetchDispatcher.drain}) lets the requests being performed
 * finish, within a grace, and delivers their responses in-process, so a routine restart
 * sends none of them twice; requests still waiting for their turn are left for the restart.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import { ensureError } from "../errors.ts";
import type { FetchRequest, FetchResponse } from "../engine/mod.ts";
import { type RetryPolicy, sleep } from "./retry_policy.ts";
import type { ByteBudget, ByteHold } from "./byte_budget.ts";

/** A request being performed or delivered. */
interface Flight {
  taskId: string;
  /** Cancels this flight only. */
  abort: AbortController;
  /** Whether its turn came (it was sent). */
  started: boolean;
}

/** What became of one delivery attempt. */
export type DeliveryOutcome = "delivered" | "gone" | "retry";

/** What the dispatcher needs. */
export interface FetchDispatcherDeps {
  /**
   * Performs a request, retrying it as `retry` says when the task has a policy, and
   * reserving its body's bytes in `hold` as they arrive; never throws (failures are
   * `success: false` responses). It may deliver the response in parts with `part` (which
   * resolves `false` when the task wants no more), and resolve with the last.
   */
  perform(
    request: FetchRequest,
    signal: AbortSignal,
    retry: RetryPolicy | undefined,
    hold: ByteHold | undefined,
    part: (response: FetchResponse) => Promise<boolean>,
  ): Promise<FetchResponse>;
  /**
   * The request as it is sent, read just before it is: its body comes back from the task's
   * journal when the record keeps only a reference to it. The request as given when
   * omitted; a rejection is the request's failure (`success: false`).
   */
  prepare?(taskId: string, request: FetchRequest): Promise<FetchRequest>;
  /** The self-POST to `/call`. */
  post(taskId: string, response: FetchResponse): Promise<DeliveryOutcome>;
  /** In-process delivery, used once the self-POST keeps failing. */
  deliverDirect(taskId: string, response: FetchResponse): Promise<DeliveryOutcome>;
  /** Whether the task still waits for this request (stop retrying otherwise). */
  isPending(taskId: string, requestId: string): boolean;
  logger: Logger;
  /** Self-POST attempts before in-process delivery takes over. */
  postAttempts: number;
  /**
   * Response bytes in flight (read, not yet delivered), server-wide and per task; a
   * response's bytes are released once its delivery ends. No limit when omitted.
   */
  bytes?: ByteBudget;
  /**
   * Most outbound requests in flight at once, shared fairly between tasks (see
   * {@link FetchDispatcher}).
   */
  concurrency: number;
}

/** A request waiting for its turn to be performed. */
interface Waiter {
  taskId: string;
  grant(): void;
}

/** First retry delay, ms; doubles up to {@link MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 50;
const MAX_BACKOFF_MS = 5_000;

/**
 * Runs pending requests of paused tasks and delivers their responses.
 *
 * Fairness: at most `concurrency` requests are performed at once, and one task may hold at
 * most an equal share of them, counting one share more than there are tasks with requests
 * (so some room always stays free for a task that has none in flight); and a task with no
 * request in flight may start one beyond `concurrency` (up to twice it). So tasks holding
 * many slow requests delay neither each other's turns nor another task's single request.
 * Waiting requests start in the order they came, skipping those of tasks at their share.
 */
export class FetchDispatcher {
  readonly #deps: FetchDispatcherDeps;
  /**
   * Requests being performed or delivered, by id. A cancelled one stays until its loop
   * ends (a delivery being posted finishes first), but no longer counts as in flight.
   */
  readonly #inflight = new Map<string, Flight>();
  /** Set by {@link drain}: no request starts any more, responses are delivered in-process. */
  #draining = false;
  readonly #abort = new AbortController();
  readonly #running = new Set<Promise<void>>();
  /** Requests being performed, in all. */
  #active = 0;
  /** Requests being performed and waiting, by task (tasks with neither are absent). */
  readonly #load = new Map<string, { active: number; waiting: number }>();
  readonly #waiting: Waiter[] = [];

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
   * task waits for nothing any more). `retry` is the task's retry policy, if it has one.
   */
  dispatch(taskId: string, requests: readonly FetchRequest[], retry?: RetryPolicy): void {
    const wanted = new Set(requests.map((request) => request.id));
    for (const [id, flight] of this.#inflight) {
      if (flight.taskId === taskId && !wanted.has(id)) flight.abort.abort();
    }
    if (this.#abort.signal.aborted || this.#draining) return;
    for (const request of requests) {
      // A request cancelled and wanted again (its task released, then taken back) is sent
      // again: its cancelled loop ends without delivering.
      if (this.#inflight.get(request.id)?.abort.signal.aborted === false) continue;
      const flight: Flight = { taskId, abort: new AbortController(), started: false };
      this.#inflight.set(request.id, flight);
      const signal = AbortSignal.any([this.#abort.signal, flight.abort.signal]);
      const run = this.#run(taskId, request, flight, signal, retry).finally(() => {
        if (this.#inflight.get(request.id) === flight) this.#inflight.delete(request.id);
        this.#running.delete(run);
      });
      this.#running.add(run);
    }
  }

  /**
   * Begins a graceful stop: requests not yet sent are dropped (their tasks still list them,
   * so they are sent after the restart) and no new one starts; requests already sent finish
   * and their responses are delivered in-process. Resolves when they all have, or after
   * `graceMs`, whichever is first; {@link close} then aborts what is left.
   */
  async drain(graceMs: number): Promise<void> {
    this.#draining = true;
    for (const flight of this.#inflight.values()) {
      if (!flight.started) flight.abort.abort();
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    try {
      await Promise.race([Promise.allSettled([...this.#running]), grace]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops: aborts requests in flight and waits for every delivery loop to end. */
  async close(): Promise<void> {
    this.#abort.abort();
    await Promise.allSettled([...this.#running]);
  }

  async #run(
    taskId: string,
    request: FetchRequest,
    flight: Flight,
    signal: AbortSignal,
    retry: RetryPolicy | undefined,
  ): Promise<void> {
    if (request.receivedParts !== undefined) {
      // Its body was being read by a connection that is gone (the server stopped).
      await this.#deliver(taskId, request, {
        id: request.id,
        success: false,
        part: request.receivedParts,
        error: `Request to ${request.url} lost its connection before the response body was ` +
          "complete: the server reading it stopped",
      }, signal);
      return;
    }
    const hold = this.#deps.bytes?.open(taskId);
    try {
      await this.#performAndDeliver(taskId, request, flight, signal, retry, hold);
    } finally {
      hold?.release();
    }
  }

  async #performAndDeliver(
    taskId: string,
    request: FetchRequest,
    flight: Flight,
    signal: AbortSignal,
    retry: RetryPolicy | undefined,
    hold: ByteHold | undefined,
  ): Promise<void> {
    const { logger } = this.#deps;
    let response: FetchResponse;
    if (!await this.#acquire(taskId, signal)) return;
    try {
      if (signal.aborted) return;
      flight.started = true;
      response = await this.#prepareAndPerform(
        taskId,
        request,
        signal,
        retry,
        hold,
        (part) => this.#deliver(taskId, request, part, signal),
      );
    } finally {
      this.#release(taskId);
    }
    if (signal.aborted) {
      if (!this.#abort.signal.aborted) {
        logger.info("fetch cancelled", { taskId, fetchId: request.id, url: request.url });
      }
      return;
    }
    // One per fetch: at debug when it answered, at info when it failed.
    logger[response.error === undefined ? "debug" : "info"]("fetch done", {
      taskId,
      fetchId: request.id,
      url: request.url,
      status: response.status ?? null,
      error: response.error,
      attempts: response.attempts?.length,
    });
    await this.#deliver(taskId, request, response, signal);
  }

  /**
   * Delivers `response` (or a part of it), by the self-POST and, after failed attempts or
   * while draining, in-process; `true` once delivered, `false` when the task no longer
   * waits for the request or `signal` aborted.
   */
  async #deliver(
    taskId: string,
    request: FetchRequest,
    response: FetchResponse,
    signal: AbortSignal,
  ): Promise<boolean> {
    const { logger } = this.#deps;
    let delay = FIRST_BACKOFF_MS;
    for (let attempt = 1; !signal.aborted; attempt++) {
      if (!this.#deps.isPending(taskId, request.id)) return false;
      const direct = this.#draining || attempt > this.#deps.postAttempts;
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
      if (outcome !== "retry") return outcome === "delivered";
      await sleep(delay, signal);
      delay = Math.min(delay * 2, MAX_BACKOFF_MS);
    }
    return false;
  }

  /** {@link FetchDispatcherDeps.prepare}, then {@link FetchDispatcherDeps.perform}. */
  async #prepareAndPerform(
    taskId: string,
    request: FetchRequest,
    signal: AbortSignal,
    retry: RetryPolicy | undefined,
    hold: ByteHold | undefined,
    part: (response: FetchResponse) => Promise<boolean>,
  ): Promise<FetchResponse> {
    let sent = request;
    if (this.#deps.prepare) {
      try {
        sent = await this.#deps.prepare(taskId, request);
      } catch (error) {
        return { id: request.id, success: false, error: ensureError(error).message };
      }
    }
    return await this.#deps.perform(sent, signal, retry, hold, part);
  }

  /** Waits for the request's turn; `false` when it was aborted first. */
  #acquire(taskId: string, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    const load = this.#loadOf(taskId);
    load.waiting++;
    return new Promise((resolve) => {
      const waiter: Waiter = {
        taskId,
        grant: () => {
          signal.removeEventListener("abort", abort);
          resolve(true);
        },
      };
      const abort = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        this.#settle(taskId, load, -1, 0);
        resolve(false);
        this.#wake();
      };
      this.#waiting.push(waiter);
      signal.addEventListener("abort", abort, { once: true });
      this.#wake();
    });
  }

  #release(taskId: string): void {
    this.#active--;
    this.#settle(taskId, this.#loadOf(taskId), 0, -1);
    this.#wake();
  }

  #loadOf(taskId: string): { active: number; waiting: number } {
    let load = this.#load.get(taskId);
    if (!load) this.#load.set(taskId, load = { active: 0, waiting: 0 });
    return load;
  }

  #settle(
    taskId: string,
    load: { active: number; waiting: number },
    waiting: number,
    active: number,
  ): void {
    load.waiting += waiting;
    load.active += active;
    if (load.active === 0 && load.waiting === 0) this.#load.delete(taskId);
  }

  /** Starts the waiting requests that may start, in order. */
  #wake(): void {
    const { concurrency } = this.#deps;
    for (let i = 0; i < this.#waiting.length && this.#active < 2 * concurrency;) {
      const waiter = this.#waiting[i]!;
      const load = this.#loadOf(waiter.taskId);
      if (this.#mayStart(load.active)) {
        this.#waiting.splice(i, 1);
        this.#active++;
        this.#settle(waiter.taskId, load, -1, 1);
        waiter.grant();
      } else {
        i++;
      }
    }
  }

  /** Whether a task with `active` requests being performed may start one more now. */
  #mayStart(active: number): boolean {
    const { concurrency } = this.#deps;
    if (active === 0) return this.#active < 2 * concurrency;
    if (this.#active >= concurrency) return false;
    return active < Math.max(1, Math.floor(concurrency / (this.#load.size + 1)));
  }
}
