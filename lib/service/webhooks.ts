/**
 * Webhooks: when a task with a `callbackUrl` finishes (completed, error, cancelled), the
 * server POSTs `{ "type": "task.<status>", "task": TaskView }` there, signed with
 * `WEBHOOK_SECRET` (see {@link signWebhook}), retried with exponential backoff (honouring
 * `Retry-After`) until a 2xx answer or `WEBHOOK_ATTEMPTS` attempts. The request goes
 * through the same client and egress policy as task fetches.
 *
 * Delivery is at-least-once: a delivery is settled by a mark written after the answer
 * ({@link WebhookMarks}); a finished task with a callback and no mark is delivered again at
 * the next start, so a delivery pending or in flight at a crash is not lost, and one whose
 * mark was not yet written is sent twice. Every attempt carries the same
 * `Idempotency-Key` ({@link deliveryKey}) for receivers that deduplicate; a task that finishes
 * again (run on by `POST /retry`) is delivered again, with a new key.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { FetchRequest, FetchResponse } from "../engine/mod.ts";
import { retryAfterMs, SIGNATURE_HEADER, signWebhook, sleep } from "../outbound/mod.ts";
import type { WebhookMark, WebhookMarks } from "../store/mod.ts";
import { isFinishedStatus, type TaskEventHub } from "./task_events.ts";
import type { TaskView, WebhookState } from "./task_types.ts";

/** Longest delay between two attempts, ms. */
export const MAX_WEBHOOK_BACKOFF_MS = 5 * 60_000;

/** What the sender needs. */
export interface WebhookSenderDeps {
  secret: string | undefined;
  /** Attempts before a delivery is given up. */
  attempts: number;
  /** Delay before the first retry, ms (doubles up to {@link MAX_WEBHOOK_BACKOFF_MS}). */
  backoffMs: number;
  /** Performs the POST under the egress policy; never throws. */
  perform(request: FetchRequest, signal: AbortSignal): Promise<FetchResponse>;
  marks: WebhookMarks;
  events: TaskEventHub;
  /** The finished tasks, to find those whose webhook is still owed at start. */
  finishedTasks(): AsyncIterable<TaskView>;
  logger: Logger;
}

/** Delivers the webhooks of finished tasks. */
export class WebhookSender {
  readonly #deps: WebhookSenderDeps;
  readonly #abort = new AbortController();
  /** Deliveries in progress, by task id. */
  readonly #inflight = new Map<string, Promise<void>>();
  /** Attempts made by the deliveries in progress. */
  readonly #attempts = new Map<string, number>();
  #marks = new Map<string, WebhookMark>();
  #unsubscribe: (() => void) | undefined;
  #resuming: Promise<void> | undefined;

  constructor(deps: WebhookSenderDeps) {
    this.#deps = deps;
  }

  /** Deliveries in progress or waiting for their next attempt. */
  get pending(): number {
    return this.#inflight.size;
  }

  /**
   * Reads the marks and listens for finished tasks. Call before the task service starts,
   * then {@link resume} once it has loaded its tasks.
   */
  async open(): Promise<void> {
    this.#marks = await this.#deps.marks.loadAll();
    this.#unsubscribe = this.#deps.events.subscribe((event) => {
      if (event.type === "deleted") {
        // The task finished (and was sent) before; a new task may take its id.
        if (this.#marks.delete(event.taskId)) void this.#forget(event.taskId);
        return;
      }
      if (isFinishedStatus(event.status) && event.task.callbackUrl) this.#enqueue(event.task);
    });
  }

  /**
   * Starts every delivery still owed by a finished task, in the background: the finished
   * tasks are read from the store a page at a time.
   */
  resume(): void {
    this.#resuming = (async () => {
      for await (const task of this.#deps.finishedTasks()) {
        if (this.#abort.signal.aborted) return;
        if (isFinishedStatus(task.status) && task.callbackUrl) this.#enqueue(task);
      }
    })().catch((error) => {
      this.#deps.logger.error("owed webhooks not resumed", { error: String(error) });
    });
  }

  /**
   * What became of the webhook of a task finished at `finishedAt` (its `updatedAt`): its
   * mark, else `pending` (with the attempts so far).
   */
  state(taskId: string, finishedAt: string): WebhookState {
    const mark = this.#marks.get(taskId);
    if (mark?.finishedAt === finishedAt) {
      const { finishedAt: _, ...state } = mark;
      return state;
    }
    return {
      status: "pending",
      attempts: this.#attempts.get(deliveryKey(taskId, finishedAt)) ?? 0,
    };
  }

  /** Stops: no new attempts; waits for the ones running. Unsettled deliveries stay owed. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    this.#abort.abort();
    await this.#resuming;
    await Promise.allSettled([...this.#inflight.values()]);
  }

  #enqueue(task: TaskView): void {
    const key = deliveryKey(task.id, task.updatedAt);
    if (this.#marks.get(task.id)?.finishedAt === task.updatedAt || this.#inflight.has(key)) return;
    if (this.#abort.signal.aborted) return;
    if (this.#deps.secret === undefined) {
      this.#deps.logger.error("webhook not sent: WEBHOOK_SECRET is not set", { taskId: task.id });
      return;
    }
    const run = this.#deliver(task, key, this.#deps.secret).finally(() => {
      this.#inflight.delete(key);
      this.#attempts.delete(key);
    });
    this.#inflight.set(key, run);
  }

  async #forget(taskId: string): Promise<void> {
    try {
      await this.#deps.marks.remove(taskId);
    } catch (error) {
      this.#deps.logger.warn("webhook mark not removed", { taskId, error: String(error) });
    }
  }

  async #deliver(task: TaskView, key: string, secret: string): Promise<void> {
    const { logger } = this.#deps;
    const signal = this.#abort.signal;
    const body = JSON.stringify({ type: `task.${task.status}`, task });
    let delay = this.#deps.backoffMs;
    let last: FetchResponse | undefined;
    for (let attempt = 1; attempt <= this.#deps.attempts; attempt++) {
      if (signal.aborted) return;
      const timestamp = Math.floor(Date.now() / 1000);
      const request: FetchRequest = {
        id: key,
        url: task.callbackUrl!,
        options: {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "user-agent": "FlowState-Webhook",
            "flowstate-event": `task.${task.status}`,
            [SIGNATURE_HEADER]: await signWebhook(secret, timestamp, body),
          },
          body,
          redirect: "manual",
        },
        timestamp: Date.now(),
      };
      this.#attempts.set(key, attempt);
      last = await this.#deps.perform(request, signal);
      if (signal.aborted) return;
      const status = last.status;
      if (status !== undefined && status >= 200 && status < 300) {
        logger.info("webhook delivered", { taskId: task.id, attempt, status });
        await this.#settle(task, { status: "delivered", attempts: attempt, httpStatus: status });
        return;
      }
      const error = last.error ?? `answered ${status}`;
      if (attempt === this.#deps.attempts) break;
      const wait = Math.min(retryAfterMs(last) ?? delay, MAX_WEBHOOK_BACKOFF_MS);
      logger.warn("webhook attempt failed", {
        taskId: task.id,
        attempt,
        error,
        retryInMs: wait,
      });
      await sleep(wait, signal);
      delay = Math.min(delay * 2, MAX_WEBHOOK_BACKOFF_MS);
    }
    const error = last?.error ?? `answered ${last?.status}`;
    logger.error("webhook given up", {
      taskId: task.id,
      url: task.callbackUrl,
      attempts: this.#deps.attempts,
      error,
    });
    const mark: Omit<WebhookMark, "at" | "finishedAt"> = {
      status: "failed",
      attempts: this.#deps.attempts,
      error,
    };
    if (last?.status !== undefined) mark.httpStatus = last.status;
    await this.#settle(task, mark);
  }

  async #settle(task: TaskView, mark: Omit<WebhookMark, "at" | "finishedAt">): Promise<void> {
    const taskId = task.id;
    const full: WebhookMark = { ...mark, at: new Date().toISOString(), finishedAt: task.updatedAt };
    this.#marks.set(taskId, full);
    try {
      await this.#deps.marks.put(taskId, full);
    } catch (error) {
      // Without its mark the delivery is made again at the next start (at-least-once).
      this.#deps.logger.warn("webhook mark not saved", { taskId, error: String(error) });
    }
  }
}

/**
 * The id of one delivery: the task and the moment it finished, so a task run on and finished
 * again (`POST /retry`) owes a new delivery. It is every attempt's `Idempotency-Key`.
 */
export function deliveryKey(taskId: string, finishedAt: string): string {
  return `webhook-${taskId}-${Date.parse(finishedAt)}`;
}
