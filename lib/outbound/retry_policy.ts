/**
 * A task's retry policy for its fetches: the server retries a failed outbound request
 * itself, with exponential backoff and honouring `Retry-After`, before it hands the
 * failure to the guest. Each attempt is recorded in the response's `attempts`, which the
 * journal keeps and `GET /status?id=` shows as the fetch's history. Attempts are counted in
 * memory: a restart during the retries starts the request's attempts again.
 *
 * @module
 */
import type { FetchAttempt, FetchResponse } from "../engine/mod.ts";
import type { FetchAttemptResult } from "./outbound_fetch.ts";

/** What a retry is made for: no response at all, a 5xx answer, a 429 answer. */
export type RetryCondition = "network" | "5xx" | "429";

/** Every {@link RetryCondition}. */
export const RETRY_CONDITIONS: readonly RetryCondition[] = ["network", "5xx", "429"];

/** How a task's fetches are retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included (1 = no retry). */
  attempts: number;
  /** Delay before the first retry, ms; doubles at each retry. */
  backoffMs: number;
  /** Longest delay between two attempts, ms. */
  maxBackoffMs: number;
  /** Which failures are retried. */
  on: RetryCondition[];
}

/** Whether `result` is a failure `on` retries. */
export function isRetryable(result: FetchAttemptResult, on: readonly RetryCondition[]): boolean {
  const status = result.response.status;
  if (status === undefined) return result.transient && on.includes("network");
  if (status === 429) return on.includes("429");
  return status >= 500 && status <= 599 && on.includes("5xx");
}

/** `Retry-After` of an answer, in ms: seconds or an HTTP date; `undefined` without one. */
export function retryAfterMs(response: FetchResponse, now = Date.now()): number | undefined {
  const value = response.headers?.["retry-after"]?.trim();
  if (value === undefined || value === "") return undefined;
  if (/^[0-9]{1,9}$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Makes an `attempt` at a request until it succeeds, fails in a way `policy` does not
 * retry, or uses its attempts; resolves with the last response, its `attempts` listing
 * every attempt. A `Retry-After` longer than `maxBackoffMs` ends the retries (the answer
 * goes to the guest). Never rejects.
 */
export async function fetchWithRetry(
  policy: RetryPolicy,
  attempt: (signal: AbortSignal) => Promise<FetchAttemptResult>,
  signal: AbortSignal,
): Promise<FetchResponse> {
  const attempts: FetchAttempt[] = [];
  let delay = policy.backoffMs;
  for (let n = 1;; n++) {
    const started = Date.now();
    const result = await attempt(signal);
    const { response } = result;
    const record: FetchAttempt = { at: new Date(started).toISOString() };
    if (response.status !== undefined) record.status = response.status;
    if (response.error !== undefined) record.error = response.error;
    attempts.push(record);
    const retryAfter = retryAfterMs(response);
    const wait = Math.min(retryAfter ?? delay, policy.maxBackoffMs);
    const again = n < policy.attempts && isRetryable(result, policy.on) && !signal.aborted &&
      (retryAfter === undefined || retryAfter <= policy.maxBackoffMs);
    if (!again) return { ...response, attempts };
    record.retryInMs = wait;
    await sleep(wait, signal);
    delay = Math.min(delay * 2, policy.maxBackoffMs);
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
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
