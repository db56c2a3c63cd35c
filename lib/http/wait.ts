/**
 * Waiting for a task to finish: `GET /status?id=&wait=ms` and `POST /task` with `"wait"`.
 *
 * @module
 */
import { BadRequestError } from "../errors.ts";
import { isFinishedStatus, type TaskEventHub } from "../service/mod.ts";
import { quote } from "./json_io.ts";

/** Longest accepted wait, ms. */
export const MAX_WAIT_MS = 300_000;

/** Validates a wait in ms (a query string or a JSON number); `action` names what failed. */
export function parseWaitMs(value: unknown, action: string): number {
  const ms = typeof value === "string" && /^[0-9]{1,9}$/.test(value) ? Number(value) : value;
  if (typeof ms !== "number" || !Number.isInteger(ms) || ms < 0 || ms > MAX_WAIT_MS) {
    throw new BadRequestError(
      `Cannot ${action}: "wait" must be an integer from 0 to ${MAX_WAIT_MS} (ms), got ${
        quote(value)
      }`,
    );
  }
  return ms;
}

/**
 * Runs `first` and, unless the task it returns is finished, waits up to `ms` for it to
 * finish (or `signal` to abort), then returns `reread(id)`. Subscribes before `first` runs,
 * so a task that finishes in between is not missed.
 */
export async function untilFinished<T extends { id: string; status: string }>(
  hub: TaskEventHub,
  ms: number,
  signal: AbortSignal,
  first: () => Promise<T>,
  reread: (id: string) => Promise<T>,
): Promise<T> {
  const finished = new Set<string>();
  const stop = hub.subscribe((event) => {
    if (isFinishedStatus(event.status)) finished.add(event.taskId);
  });
  let view: T;
  try {
    view = await first();
  } finally {
    stop();
  }
  if (ms === 0 || isFinishedStatus(view.status)) return view;
  if (!finished.has(view.id)) {
    const id = view.id;
    await hub.next((event) => event.taskId === id && isFinishedStatus(event.status), {
      timeoutMs: ms,
      signal,
    });
  }
  return await reread(view.id);
}
