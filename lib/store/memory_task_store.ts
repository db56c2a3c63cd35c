/**
 * A {@link TaskStore} in memory, for tests and benchmarks: the semantics of the file store
 * without the disk: id validation; the journal as a write-ahead log, where each save
 * appends one JSON line per event and then a commit line; `eventsBytes` as the UTF-8 size
 * of the journal up to a save's commit line, and as the journal's commit point; commit
 * lines left out of `readEvents`; JSON copies in and out.
 *
 * @module
 */
import { assertTaskId, commitLine, isCommitLine, summaryOf } from "./file_task_store.ts";
import { type ListQuery, TaskIndex, type TaskPage, type TaskSummary } from "./task_index.ts";
import { UnavailableError } from "../errors.ts";
import type { FetchRequest } from "../engine/types.ts";
import type { SkippedFile, TaskEvent, TaskRecord, TaskStatus, TaskStore } from "../service/mod.ts";
import type { PendingRequest } from "./task_store.ts";

interface StoredTask {
  /** The record as JSON text, so that nothing a caller holds aliases it. */
  record: string;
  /** The journal's lines (events and commit lines), without their `\n`. */
  lines: string[];
  /** `ends[i]`: the journal's size up to and including line `i` and its `\n`. */
  ends: number[];
}

/** A {@link TaskStore} that keeps JSON copies of records and events in memory. */
export class MemoryTaskStore implements TaskStore {
  readonly #tasks = new Map<string, StoredTask>();
  readonly #index = new TaskIndex();
  readonly #encoder = new TextEncoder();

  /** The records of the tasks running or paused, oldest first; nothing skipped. */
  open(): Promise<{ active: TaskRecord[]; skipped: SkippedFile[] }> {
    return Promise.try(() => {
      const active = this.#index.having(["running", "paused"]).map((summary): TaskRecord =>
        JSON.parse(this.#tasks.get(summary.id)!.record)
      );
      return { active, skipped: [] };
    });
  }

  /** Every saved record, nothing skipped. */
  loadAll(): Promise<{ tasks: TaskRecord[]; skipped: SkippedFile[] }> {
    const tasks = [...this.#tasks.values()].map((stored): TaskRecord => JSON.parse(stored.record));
    return Promise.resolve({ tasks, skipped: [] });
  }

  /** A page of tasks from the index. */
  list(query: ListQuery): Promise<TaskPage> {
    return Promise.try(() => this.#index.list(query));
  }

  /** Tasks by status. */
  counts(): Record<TaskStatus, number> {
    return this.#index.counts();
  }

  /** Finished tasks last updated before `cutoffMs`. */
  finishedBefore(cutoffMs: number, limit: number): Promise<TaskSummary[]> {
    return Promise.resolve(this.#index.finishedBefore(cutoffMs, limit));
  }

  /** Forgets the task, its record and its journal; `false` when there was none. */
  remove(id: string): Promise<boolean> {
    return Promise.try(() => {
      assertTaskId(id);
      const stored = this.#tasks.get(id);
      if (!stored) return false;
      const record: TaskRecord = JSON.parse(stored.record);
      this.#index.delete(id, record.createdAt);
      return this.#tasks.delete(id);
    });
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Cuts the journal back to `record.eventsBytes`, appends copies of `events` and the commit
   * line of `record`, stores a copy of `record` with `eventsBytes` updated. Rejects with an
   * `UnavailableError` when the journal is shorter than `record.eventsBytes`.
   */
  save(record: TaskRecord, events: readonly TaskEvent[]): Promise<TaskRecord> {
    return Promise.try(() => {
      const id = record.id;
      assertTaskId(id);
      const stored = this.#tasks.get(id) ?? { record: "", lines: [], ends: [] };
      const count = committedCount(id, stored, record.eventsBytes);
      const lines = events.map((event) => JSON.stringify(event));
      if (lines.some(isCommitLine)) {
        throw new TypeError(`Event of type "commit" in a save of task "${id}"`);
      }
      lines.push(commitLine(record));
      let end = record.eventsBytes;
      const ends = lines.map((line) => end += this.#encoder.encode(line).length + 1);
      const text = JSON.stringify({ ...record, eventsBytes: end });
      stored.lines.length = count;
      stored.ends.length = count;
      for (const [index, line] of lines.entries()) {
        stored.lines.push(line);
        stored.ends.push(ends[index]!);
      }
      stored.record = text;
      this.#tasks.set(id, stored);
      this.#index.set(summaryOf(record));
      return JSON.parse(text);
    });
  }

  /** A copy of the record, or `null` if there is none. */
  readRecord(id: string): Promise<TaskRecord | null> {
    return Promise.try(() => {
      assertTaskId(id);
      const stored = this.#tasks.get(id);
      return stored ? JSON.parse(stored.record) : null;
    });
  }

  /** Copies of the committed events in the last `maxBytes` bytes, and the bytes before them. */
  readTail(
    record: Pick<TaskRecord, "id" | "eventsBytes">,
    maxBytes: number,
  ): Promise<{ events: TaskEvent[]; skippedBytes: number }> {
    return Promise.try(() => {
      const { id, eventsBytes } = record;
      assertTaskId(id);
      const stored = this.#tasks.get(id) ?? { record: "", lines: [], ends: [] };
      const count = committedCount(id, stored, eventsBytes);
      let first = count;
      while (first > 0 && eventsBytes - (stored.ends[first - 2] ?? 0) <= maxBytes) first--;
      const skippedBytes = first === 0 ? 0 : stored.ends[first - 1]!;
      const events = stored.lines.slice(first, count).filter((line) => !isCommitLine(line))
        .map((line) => JSON.parse(line));
      return { events, skippedBytes };
    });
  }

  /** `request` as it is: this store keeps bodies in its records (it makes no `bodyRef`). */
  requestWithBody(_id: string, request: PendingRequest): Promise<FetchRequest> {
    const { bodyRef: _bodyRef, ...plain } = request;
    return Promise.resolve(plain);
  }

  /** Copies of the events in the first `record.eventsBytes` bytes, in order, without commits. */
  readEvents(record: Pick<TaskRecord, "id" | "eventsBytes">): Promise<TaskEvent[]> {
    return Promise.try(() => {
      const { id, eventsBytes } = record;
      assertTaskId(id);
      const stored = this.#tasks.get(id) ?? { record: "", lines: [], ends: [] };
      const count = committedCount(id, stored, eventsBytes);
      return stored.lines.slice(0, count).filter((line) => !isCommitLine(line)).map((line) =>
        JSON.parse(line)
      );
    });
  }
}

/** How many lines of `stored`'s journal its first `eventsBytes` bytes hold. */
function committedCount(id: string, stored: StoredTask, eventsBytes: number): number {
  if (!Number.isSafeInteger(eventsBytes) || eventsBytes < 0) {
    throw new TypeError(`Invalid eventsBytes ${eventsBytes} for the journal of task "${id}"`);
  }
  const size = stored.ends.at(-1) ?? 0;
  if (size < eventsBytes) {
    throw new UnavailableError(
      `The journal of task "${id}" is shorter than its record: ${size} bytes, fewer than ` +
        `the ${eventsBytes} the record accounts for (corrupted)`,
    );
  }
  let count = stored.ends.length;
  while (count > 0 && stored.ends[count - 1]! > eventsBytes) count--;
  if ((stored.ends[count - 1] ?? 0) !== eventsBytes) {
    throw new Error(
      `Cannot read the journal of task "${id}": line ${count + 1} is cut off by the ` +
        "record's eventsBytes",
    );
  }
  return count;
}
