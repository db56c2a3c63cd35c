/**
 * The event hub: every task transition the service commits, in order, for `GET /events`,
 * `GET /status?wait=`, webhooks, metrics and the dashboard.
 *
 * The service publishes from the one place it commits a record, so a status added to
 * {@link TaskStatus} later shows up here with no extra code: the event's `type` is
 * `created` for a task's first commit, `resumed` when a segment starts on a task that was
 * not running, and otherwise the committed status (`paused`, `completed`, `error`,
 * `cancelled`, ...), or what a lifecycle route did: `retried` (a task in `error` or
 * `cancelled` runs again), `forked` (a task's first commit when it is a fork of another),
 * `deleted` (the task and its files are gone; the event carries its last view).
 *
 * The hub keeps a bounded ring of recent events in memory so a client that reconnects with
 * the id of the last event it saw misses nothing recent. Ids are `<boot>-<seq>`: `seq`
 * counts up from 1 in each server process, `boot` names the process, so an id from an
 * earlier process replays the whole ring. Events older than the ring, or from before a
 * restart, are gone: read `GET /status` to catch up.
 *
 * @module
 */
import type { TaskStatus } from "../store/mod.ts";
import type { TaskView } from "./task_types.ts";

/** Events kept for `Last-Event-ID` resume by default. */
export const DEFAULT_EVENT_RING_SIZE = 1000;

/** Statuses in which a task will not run again by itself. */
const FINISHED_STATUSES: ReadonlySet<string> = new Set(["completed", "error", "cancelled"]);

/** Whether a task in `status` is finished: not running, not paused, not waiting. */
export function isFinishedStatus(status: TaskStatus | string): boolean {
  return FINISHED_STATUSES.has(status);
}

/**
 * What happened: `created`, `resumed`, the status a commit left the task in, or a lifecycle
 * operation: `retried`, `forked`, `deleted`.
 */
export type TransitionType = "created" | "resumed" | "retried" | "forked" | "deleted" | TaskStatus;

/** One task transition. */
export interface TaskTransition {
  /** `<boot>-<seq>`: the SSE event id. */
  id: string;
  /** Position in this process's stream, from 1, without gaps. */
  seq: number;
  type: TransitionType;
  taskId: string;
  /** The task's status after the transition. */
  status: TaskStatus;
  /** When it happened (ISO 8601). */
  at: string;
  /** The task as `GET /status` lists it right after the transition (paused: what it waits for). */
  task: TaskView;
}

/** Receives transitions as they are published. */
export type TransitionListener = (event: TaskTransition) => void;

/** Options of {@link TaskEventHub}. */
export interface TaskEventHubOptions {
  /** Events kept for resume. Default {@link DEFAULT_EVENT_RING_SIZE}. */
  ringSize?: number;
  /** Called when a listener throws (the hub itself never does). */
  onListenerError?: (error: unknown) => void;
}

/** Publishes task transitions to listeners and keeps the recent ones. */
export class TaskEventHub {
  /** Names this process in event ids. */
  readonly boot: string = Date.now().toString(36);
  readonly #ringSize: number;
  readonly #ring: TaskTransition[] = [];
  readonly #listeners = new Set<TransitionListener>();
  readonly #closeListeners = new Set<() => void>();
  readonly #onListenerError: (error: unknown) => void;
  #seq = 0;
  #closed = false;

  constructor(options: TaskEventHubOptions = {}) {
    this.#ringSize = Math.max(1, options.ringSize ?? DEFAULT_EVENT_RING_SIZE);
    this.#onListenerError = options.onListenerError ?? (() => {});
  }

  /** Seq of the last event published (0 before the first). */
  get lastSeq(): number {
    return this.#seq;
  }

  /** Number of listeners (open streams and waits). */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Records a transition of `task` and hands it to every listener. */
  publish(type: TransitionType, task: TaskView): TaskTransition {
    const seq = ++this.#seq;
    const event: TaskTransition = {
      id: `${this.boot}-${seq}`,
      seq,
      type,
      taskId: task.id,
      status: task.status,
      at: new Date().toISOString(),
      task,
    };
    this.#ring.push(event);
    if (this.#ring.length > this.#ringSize) this.#ring.shift();
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
    return event;
  }

  /**
   * Calls `listener` with every event published from now on; returns the function that
   * stops it. Subscribe before reading the current state to miss nothing in between.
   */
  subscribe(listener: TransitionListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Calls `listener` once when the hub closes (at once if closed); returns the undo. */
  onClose(listener: () => void): () => void {
    if (this.#closed) {
      listener();
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /**
   * The kept events after the one with id `lastId`, oldest first: all kept events when
   * `lastId` is from another process or unparsable, none when it is the latest.
   */
  since(lastId: string | null | undefined): TaskTransition[] {
    const seq = this.#seqOf(lastId);
    return seq === undefined ? [...this.#ring] : this.#ring.filter((event) => event.seq > seq);
  }

  /** Every kept event, oldest first. */
  recent(): TaskTransition[] {
    return [...this.#ring];
  }

  /**
   * Resolves with the first event published from now on that satisfies `match`, or with
   * `null` after `timeoutMs`, when `signal` aborts or when the hub closes.
   */
  next(
    match: (event: TaskTransition) => boolean,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<TaskTransition | null> {
    const { promise, resolve } = Promise.withResolvers<TaskTransition | null>();
    if (this.#closed || options.signal?.aborted) return Promise.resolve(null);
    const cleanup: Array<() => void> = [];
    const finish = (event: TaskTransition | null) => {
      for (const undo of cleanup) undo();
      resolve(event);
    };
    cleanup.push(this.subscribe((event) => {
      if (match(event)) finish(event);
    }));
    cleanup.push(this.onClose(() => finish(null)));
    const timer = setTimeout(() => finish(null), options.timeoutMs);
    cleanup.push(() => clearTimeout(timer));
    if (options.signal) {
      const onAbort = () => finish(null);
      options.signal.addEventListener("abort", onAbort, { once: true });
      cleanup.push(() => options.signal!.removeEventListener("abort", onAbort));
    }
    return promise;
  }

  /** Ends every stream and wait: listeners are dropped, close listeners called. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    const listeners = [...this.#closeListeners];
    this.#closeListeners.clear();
    for (const listener of listeners) {
      try {
        listener();
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }

  #seqOf(id: string | null | undefined): number | undefined {
    if (!id) return undefined;
    const match = /^([0-9a-z]+)-([0-9]{1,15})$/.exec(id.trim());
    if (!match || match[1] !== this.boot) return undefined;
    return Number(match[2]);
  }
}
