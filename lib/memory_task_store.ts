/**
 * A {@link TaskStore} in memory, for tests and benchmarks: the semantics of the file store
 * (id validation, `eventsBytes` as the UTF-8 size of one JSON line per event, JSON copies
 * in and out) without the disk.
 *
 * @module
 */
import { assertTaskId } from "./file_task_store.ts";
import type { LoadedTask, SkippedFile, TaskEvent, TaskRecord, TaskStore } from "./task_types.ts";

interface StoredTask {
  /** The record as JSON text, so that nothing a caller holds aliases it. */
  record: string;
  /** The journal's lines, without their `\n`. */
  events: string[];
  eventsBytes: number;
}

/** A {@link TaskStore} that keeps JSON copies of records and events in memory. */
export class MemoryTaskStore implements TaskStore {
  readonly #tasks = new Map<string, StoredTask>();
  readonly #encoder = new TextEncoder();

  /** Every saved record, none `behind`, nothing skipped. */
  loadAll(): Promise<{ tasks: LoadedTask[]; skipped: SkippedFile[] }> {
    const tasks = [...this.#tasks.values()].map((stored): LoadedTask => ({
      record: JSON.parse(stored.record),
      behind: false,
    }));
    return Promise.resolve({ tasks, skipped: [] });
  }

  /** Appends copies of `events`, stores a copy of `record` with `eventsBytes` updated. */
  save(record: TaskRecord, events: readonly TaskEvent[]): Promise<TaskRecord> {
    return Promise.try(() => {
      assertTaskId(record.id);
      const stored = this.#tasks.get(record.id) ?? { record: "", events: [], eventsBytes: 0 };
      const lines = events.map((event) => JSON.stringify(event));
      const eventsBytes = lines.reduce(
        (bytes, line) => bytes + this.#encoder.encode(line).length + 1,
        stored.eventsBytes,
      );
      const text = JSON.stringify({ ...record, eventsBytes });
      stored.events.push(...lines);
      stored.eventsBytes = eventsBytes;
      stored.record = text;
      this.#tasks.set(record.id, stored);
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

  /** Copies of the task's events, in order; `[]` when there are none. */
  readEvents(id: string): Promise<TaskEvent[]> {
    return Promise.try(() => {
      assertTaskId(id);
      return (this.#tasks.get(id)?.events ?? []).map((line) => JSON.parse(line));
    });
  }
}
