/**
 * Small helpers for waiting in tests, benchmarks and the chaos suite: a plain delay, a
 * bounded poll, and a free loopback port.
 *
 * @module
 */

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** Give up after this long, ms. Default 15 s. */
  timeoutMs?: number;
  /** Delay between checks, ms. Default 25. */
  intervalMs?: number;
  /** Text of the error thrown on timeout. */
  message?: string | (() => string);
}

/** Resolves after `ms` milliseconds, or at once when `signal` aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Calls `check` until it returns a truthy value and resolves with it; throws after
 * `timeoutMs`. A bounded wait, so a test never sleeps blindly nor hangs.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (performance.now() > deadline) {
      const message = typeof options.message === "function"
        ? options.message()
        : options.message ?? "condition";
      throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${message}`);
    }
    await delay(options.intervalMs ?? 25);
  }
}

/** A port of 127.0.0.1 that was free a moment ago (nothing listens on it now). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}
