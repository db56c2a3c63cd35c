/**
 * What the store keeps of a task: its status, its durable record, the events of its journal,
 * and the {@link TaskStore} contract every store implements.
 *
 * @module
 */
import type { FetchRequest, JournalEntry, LogEntry, VMState } from "../engine/types.ts";
import type { RetryPolicy } from "../outbound/retry_policy.ts";
import type { ListQuery, TaskPage, TaskSummary } from "./task_index.ts";

export type { ListOrder, ListQuery, TaskPage, TaskSummary } from "./task_index.ts";

/** Task statuses, as an `as const` object with the derived union type. */
export const TaskStatus = {
  Running: "running",
  Paused: "paused",
  Completed: "completed",
  Error: "error",
  Cancelled: "cancelled",
} as const;

/** One of the {@link TaskStatus} values. */
export type TaskStatus = typeof TaskStatus[keyof typeof TaskStatus];

/** Whether `value` is a task status. */
export function isTaskStatus(value: unknown): value is TaskStatus {
  return Object.values(TaskStatus).includes(value as TaskStatus);
}

/** Why a task ended in `error` (or, with kind `cancelled`, in `cancelled`). */
export interface TaskErrorView {
  name: string;
  message: string;
  kind: string;
  /** The guest stack (`at f (task.js:3:7)` a line), when the error has one. */
  stack?: string;
}

/**
 * Where a store left the body of a pending request: in the journal line of its `request`
 * entry, `length` bytes from byte `at` of the journal (`\n` excluded); `bytes` is the
 * body's size.
 */
export interface BodyRef {
  at: number;
  length: number;
  bytes: number;
}

/**
 * A request waiting for a response, as the record keeps it. With `bodyRef`, its options
 * lack `body`/`bodyBase64`: the journal holds them once, and {@link TaskStore.requestWithBody}
 * reads them back when the request is sent.
 */
export interface PendingRequest extends FetchRequest {
  bodyRef?: BodyRef;
}

/**
 * The durable record of a task: everything but the journal and the logs, which live
 * append-only beside it.
 */
export interface TaskRecord {
  id: string;
  name: string;
  status: TaskStatus;
  pauseCount: number;
  createdAt: string;
  updatedAt: string;
  code: string;
  /** Name of the `tasks/` definition, when the task came from one. */
  task?: string;
  input?: unknown;
  autoFetch: boolean;
  /** Where the finished task is POSTed (a webhook). */
  callbackUrl?: string;
  /** How the server retries this task's fetches. */
  retry?: RetryPolicy;
  result?: unknown;
  error?: TaskErrorView;
  /** The engine state without `journal` and `logs` (those are in the journal file). */
  vm?: Omit<VMState, "journal" | "logs">;
  /** Times `POST /retry` ran the task again. */
  retries?: number;
  /** The task this one is a fork of, and the fetch from which it ran live. */
  forkedFrom?: { taskId: string; atFetch: number };
  /**
   * Set when the task ended in `error`: the journal length before the segment that failed,
   * where `POST /retry` cuts the journal back to (so that step is tried again).
   */
  retryFrom?: number;
  /** Bytes of console output kept in the journal so far (`MAX_LOG_BYTES` caps it). */
  logBytes?: number;
  /** Console lines dropped because the task's output was over `MAX_LOG_BYTES`. */
  droppedLogLines?: number;
  /** CPU time the task's segments used so far, ms (replays excluded). */
  cpuMs?: number;
  /**
   * Set (durably) when a segment ran past its time limit without stopping; cleared by the
   * segment's outcome. A task found with it at startup had its server stop during that
   * segment: it is failed instead of being run again.
   */
  overrunAt?: string;
  /**
   * Requests waiting for a response (performed again after a restart); a store may leave
   * their bodies in the journal ({@link PendingRequest.bodyRef}).
   */
  pending: PendingRequest[];
  /** How many journal entries and log lines this record accounts for. */
  journalLength: number;
  logCount: number;
  /** Size of the journal file this record accounts for; maintained by the store. */
  eventsBytes: number;
}

/**
 * The journal cut back to its first `journalLength` entries (log lines do not count), as
 * `POST /retry` does before it runs the failed step again: the entries after the cut stay
 * in the file, for the history, but are no longer the task's journal.
 */
export interface RewindEvent {
  type: "rewind";
  journalLength: number;
  /** When it happened (ms since the epoch). */
  at: number;
}

/** An event of the append-only task journal file. */
export type TaskEvent = JournalEntry | ({ type: "log" } & LogEntry) | RewindEvent;

/** A file in the states directory that could not be read as a task. */
export interface SkippedFile {
  file: string;
  reason: string;
}

/**
 * Durable storage of tasks. Durability contract: a task's journal is a write-ahead log.
 * `save()` appends the events, then a commit line holding the record, in one write, and
 * flushes it (when `fsync` is on): that is the commit, and the record's `eventsBytes` is the
 * journal's size up to the end of that commit line. The record is also kept readable
 * beside the journal, replaced atomically after the commit (durably on the task's first
 * save only); it may lag behind the journal after a crash, and `loadAll()`/`readRecord()`
 * then return the journal's last commit. So a crash at any moment leaves the task as of
 * its last commit, never torn: a save that returned is kept, the lines of an interrupted
 * save after the last commit are discarded, not replayed, and a save that rejected is taken
 * back (best effort). Commit lines are the store's own: `readEvents` never returns them.
 */
export interface TaskStore {
  /**
   * Opens the store: loads its index of tasks (rebuilt from the records with
   * {@link loadAll} when it has none) and answers the records of the tasks running or
   * paused, oldest first. Runs before anything else. Its cost grows with the number of
   * tasks running or paused, not with the finished ones.
   */
  open(): Promise<{ active: TaskRecord[]; skipped: SkippedFile[] }>;
  /**
   * Optional: {@link open} in two halves, so that a server can answer while the records of
   * its running and paused tasks are read. `openIndex()` does what `open()` does but read
   * those records, and reports the files it skipped; {@link readActive} then reads them.
   * A store that has them does not need `open()` to be called.
   */
  openIndex?(): Promise<{ skipped: SkippedFile[] }>;
  /**
   * After {@link openIndex}: the records of the tasks running or paused when it ran, oldest
   * first, one at a time, and the unreadable ones as skipped files. Saves and removals may
   * run meanwhile: a task saved since `openIndex()` may be yielded as it was before.
   */
  readActive?(): AsyncGenerator<{ record: TaskRecord } | { skipped: SkippedFile }>;
  /**
   * Every readable record, as of its journal's last commit, read from the records
   * themselves (the index is rebuilt from them); unreadable or foreign files, and records
   * whose journal is shorter than their `eventsBytes`, are reported and skipped. Costs a
   * read of every task: for tools and tests, and for a store without an index.
   */
  loadAll(): Promise<{ tasks: TaskRecord[]; skipped: SkippedFile[] }>;
  /**
   * A page of the tasks matching `query`, ordered by `createdAt` then id, from the index
   * (no record is read). Rejects with a `BadRequestError` for a cursor no page answered.
   */
  list(query: ListQuery): Promise<TaskPage>;
  /** Tasks by status, as saved. */
  counts(): Record<TaskStatus, number>;
  /** Up to `limit` finished tasks last updated before `cutoffMs`, oldest first. */
  finishedBefore(cutoffMs: number, limit: number): Promise<TaskSummary[]>;
  /** Waits for background work (index writes, removals) and releases the store's files. */
  close(): Promise<void>;
  /**
   * Cuts the task's journal back to `record.eventsBytes` (discarding uncommitted lines),
   * appends `events` and a commit line of `record`, then writes `record` with `eventsBytes`
   * updated (the size of the journal up to that commit line, counted in UTF-8 bytes: one
   * JSON line per event, then the commit line); returns the record as written. `record` must
   * be the last record `save` or `loadAll` returned for the task, or a new one with
   * `eventsBytes: 0`; one save per task at a time. Rejects with an `UnavailableError` when
   * the journal is shorter than `record.eventsBytes`, and a `TypeError` for an event of type
   * `commit`.
   */
  save(record: TaskRecord, events: readonly TaskEvent[]): Promise<TaskRecord>;
  /** The record as of its journal's last commit, or `null` if there is none. */
  readRecord(id: string): Promise<TaskRecord | null>;
  /**
   * The committed events of the task's journal, in order, without the commit lines: those
   * in its first `record.eventsBytes` bytes. Lines after them are ignored; an unparsable
   * committed line, or a journal shorter than `eventsBytes`, is an error.
   */
  readEvents(record: Pick<TaskRecord, "id" | "eventsBytes">): Promise<TaskEvent[]>;
  /**
   * The committed events of the journal's last `maxBytes` bytes (from the first whole
   * line in them), in order, without the commit lines, and how many committed bytes came
   * before them (0 when the whole journal was read). Reads and allocates at most about
   * `maxBytes`, whatever the journal's size: what a task's view reads. A `rewind` among
   * them counts entries from the journal's start, which the events do not begin at.
   */
  readTail(
    record: Pick<TaskRecord, "id" | "eventsBytes">,
    maxBytes: number,
  ): Promise<{ events: TaskEvent[]; skippedBytes: number }>;
  /**
   * A pending request of task `id` with its body: `request` itself when it has no
   * `bodyRef`, else read back from where the store left the body (without `bodyRef`).
   * A store that keeps bodies in its records returns `request` as it is. Rejects when the
   * body cannot be read back (409 when it fails the journal's integrity check).
   */
  requestWithBody(id: string, request: PendingRequest): Promise<FetchRequest>;
  /**
   * Removes the task: its record and its journal. Atomic: a crash at any moment leaves the
   * task either gone or as of its last commit, never half removed; once this resolves the
   * removal is durable (when the store flushes): a removal the process died during is
   * either not begun or completed at the next `open()`. Resolves `false` when there was no
   * task.
   * A later save with `eventsBytes: 0` creates the id anew. One call per task at a time,
   * never during a save of the same task.
   */
  remove(id: string): Promise<boolean>;
}
