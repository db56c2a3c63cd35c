/**
 * The durable {@link TaskStore}: one directory, two files per task.
 *
 * - `<id>.json`: the {@link TaskRecord}, pretty-printed, replaced atomically on every save.
 * - `<id>.journal.jsonl`: the append-only journal, one JSON {@link TaskEvent} per line.
 *
 * The record's `eventsBytes` is the commit point: the journal's first `eventsBytes` bytes
 * are committed, the rest was left by an interrupted save. A save cuts the journal back to
 * the record's `eventsBytes`, appends the events, then writes the record with the new size;
 * `readEvents` reads the committed bytes only.
 *
 * The store assumes it is the only writer of its directory, and `loadAll()` runs before
 * any save (it creates the directory and removes temp files of interrupted writes).
 *
 * @module
 */
import { join } from "node:path";
import {
  appendLines,
  ensureDir,
  isTempFileName,
  readHead,
  readTextOrNull,
  shrinkFile,
  writeFileAtomic,
} from "./atomic_file.ts";
import { BadRequestError, ensureError, UnavailableError } from "./http_errors.ts";
import {
  isTaskStatus,
  type SkippedFile,
  type TaskEvent,
  type TaskRecord,
  type TaskStore,
} from "./task_types.ts";

/** What a task id must look like; checked before any path is built from it. */
export const TASK_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Throws a `BadRequestError` unless `id` matches {@link TASK_ID_PATTERN}. */
export function assertTaskId(id: unknown): asserts id is string {
  if (typeof id === "string" && TASK_ID_PATTERN.test(id)) return;
  throw new BadRequestError(
    `Invalid task id ${JSON.stringify(id) ?? String(id)}: use 1 to 128 letters, digits, ".", ` +
      `"_" or "-", starting with a letter or digit`,
  );
}

/** Suffix of record files. */
const RECORD_SUFFIX = ".json";
/** Suffix of journal files. */
const JOURNAL_SUFFIX = ".journal.jsonl";
/** Files read at once by `loadAll()`. */
const LOAD_CONCURRENCY = 64;
/** Indentation of record files, which humans read. */
const RECORD_INDENT = 2;

/** Options of {@link FileTaskStore}. */
export interface FileTaskStoreOptions {
  /** Flush every write to the disk. Default `true`; turn off only for tests and benchmarks. */
  fsync?: boolean;
}

/** A {@link TaskStore} keeping each task in a record file and a journal file in one directory. */
export class FileTaskStore implements TaskStore {
  readonly #dir: string;
  readonly #fsync: boolean;
  /** Journal size per id, known since this process last cut back or appended to it. */
  readonly #journalSizes = new Map<string, number>();

  /** A store in `dir`, which `loadAll()` creates if missing. */
  constructor(dir: string, options: FileTaskStoreOptions = {}) {
    this.#dir = dir;
    this.#fsync = options.fsync ?? true;
  }

  /**
   * Every record in the directory. Files that are not a valid record named `<id>.json` are
   * skipped and left on disk; so is a record whose journal is shorter than its
   * `eventsBytes` (the journal lost committed events, so the task cannot be resumed). Temp
   * files of interrupted writes are removed.
   */
  async loadAll(): Promise<{ tasks: TaskRecord[]; skipped: SkippedFile[] }> {
    const recordFiles: string[] = [];
    const tempFiles: string[] = [];
    try {
      await ensureDir(this.#dir);
      for await (const entry of Deno.readDir(this.#dir)) {
        if (entry.isDirectory) continue;
        if (isTempFileName(entry.name)) tempFiles.push(entry.name);
        else if (entry.name.endsWith(RECORD_SUFFIX)) recordFiles.push(entry.name);
      }
    } catch (error) {
      throw unavailable(`Cannot list the tasks in "${this.#dir}"`, error);
    }
    const skipped: SkippedFile[] = [];
    for (const file of tempFiles) {
      const problem = await this.#removeTempFile(file);
      if (problem) skipped.push(problem);
    }
    const tasks: TaskRecord[] = [];
    recordFiles.sort();
    for (const outcome of await mapWithLimit(recordFiles, LOAD_CONCURRENCY, (f) => this.#load(f))) {
      if (outcome.record) tasks.push(outcome.record);
      else skipped.push(outcome.skipped);
    }
    return { tasks, skipped };
  }

  /**
   * Cuts the journal back to `record.eventsBytes`, discarding what an interrupted save left
   * after it (skipped when this process knows the journal has exactly that size), appends
   * `events`, then atomically writes `record` with `eventsBytes` set to the journal's new
   * size. Returns a copy of the written record. Rejects with an `UnavailableError` when the
   * journal is shorter than `record.eventsBytes` or on I/O failure; the previous record is
   * then intact.
   */
  async save(record: TaskRecord, events: readonly TaskEvent[]): Promise<TaskRecord> {
    const id = record.id;
    assertTaskId(id);
    const committed = record.eventsBytes;
    if (!isCount(committed)) {
      throw new TypeError(`Invalid eventsBytes ${committed} in the record of task "${id}"`);
    }
    const path = this.#journalPath(id);
    if (this.#journalSizes.get(id) !== committed) {
      this.#journalSizes.delete(id);
      let size: number;
      try {
        size = await shrinkFile(path, committed);
      } catch (error) {
        throw unavailable(`Cannot cut back the journal of task "${id}"`, error);
      }
      if (size < committed) throw journalTooShort(id, size, committed);
      this.#journalSizes.set(id, committed);
    }
    const lines = events.map((event) => JSON.stringify(event) + "\n").join("");
    let eventsBytes = committed;
    if (lines) {
      try {
        eventsBytes += await appendLines(path, lines, { fsync: this.#fsync });
      } catch (error) {
        // The append may have been cut short: check the size again before the next one.
        this.#journalSizes.delete(id);
        throw unavailable(`Cannot append to the journal of task "${id}"`, error);
      }
      this.#journalSizes.set(id, eventsBytes);
    }
    const text = JSON.stringify({ ...record, eventsBytes }, null, RECORD_INDENT) + "\n";
    try {
      // Also makes a newly created journal's directory entry durable.
      await writeFileAtomic(this.#recordPath(id), text, { fsync: this.#fsync });
    } catch (error) {
      throw unavailable(`Cannot save task "${id}"`, error);
    }
    return JSON.parse(text);
  }

  /** The record, or `null` if there is none; throws if the file is not a valid record. */
  async readRecord(id: string): Promise<TaskRecord | null> {
    assertTaskId(id);
    const path = this.#recordPath(id);
    let text: string | null;
    try {
      text = await readTextOrNull(path);
    } catch (error) {
      throw unavailable(`Cannot read task "${id}"`, error);
    }
    if (text === null) return null;
    const record = parseRecord(text, id);
    if (typeof record === "string") throw new Error(`Cannot read task from "${path}": ${record}`);
    return record;
  }

  /**
   * The events of the journal's first `record.eventsBytes` bytes, parsed, in order; reads
   * no further, so what an interrupted save appended after them is ignored. Throws naming
   * the file and line when a committed line is not a JSON event, and rejects with an
   * `UnavailableError` when the journal is shorter than `eventsBytes`.
   */
  async readEvents(record: Pick<TaskRecord, "id" | "eventsBytes">): Promise<TaskEvent[]> {
    const { id, eventsBytes } = record;
    assertTaskId(id);
    if (!isCount(eventsBytes)) {
      throw new TypeError(`Invalid eventsBytes ${eventsBytes} for the journal of task "${id}"`);
    }
    if (eventsBytes === 0) return [];
    const path = this.#journalPath(id);
    let bytes: Uint8Array | null;
    try {
      bytes = await readHead(path, eventsBytes);
    } catch (error) {
      throw unavailable(`Cannot read the journal of task "${id}"`, error);
    }
    const size = bytes?.length ?? 0;
    if (!bytes || size < eventsBytes) throw journalTooShort(id, size, eventsBytes);
    return parseJournal(new TextDecoder().decode(bytes), path);
  }

  async #load(
    file: string,
  ): Promise<{ record: TaskRecord } | { record?: never; skipped: SkippedFile }> {
    const skip = (reason: string) => ({ skipped: { file, reason } });
    const id = file.slice(0, -RECORD_SUFFIX.length);
    if (!TASK_ID_PATTERN.test(id)) return skip("File name is not a valid task id");
    let text: string;
    try {
      text = await Deno.readTextFile(join(this.#dir, file));
    } catch (error) {
      return skip(`Cannot read the file: ${osReason(error)}`);
    }
    const record = parseRecord(text, id);
    if (typeof record === "string") return skip(record);
    let journalBytes = 0;
    try {
      journalBytes = (await Deno.stat(this.#journalPath(id))).size;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        return skip(`Cannot stat the journal "${id}${JOURNAL_SUFFIX}": ${osReason(error)}`);
      }
    }
    if (journalBytes < record.eventsBytes) {
      return skip(
        `Journal "${id}${JOURNAL_SUFFIX}" has ${journalBytes} bytes, fewer than the ` +
          `${record.eventsBytes} the record accounts for`,
      );
    }
    return { record };
  }

  async #removeTempFile(file: string): Promise<SkippedFile | undefined> {
    try {
      await Deno.remove(join(this.#dir, file));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      return { file, reason: `Cannot remove this leftover temp file: ${osReason(error)}` };
    }
    return undefined;
  }

  #recordPath(id: string): string {
    return join(this.#dir, id + RECORD_SUFFIX);
  }

  #journalPath(id: string): string {
    return join(this.#dir, id + JOURNAL_SUFFIX);
  }
}

type Check = (value: unknown) => boolean;
type RequiredKey<T> = {
  [K in keyof T]-?: Record<never, never> extends Pick<T, K> ? never : K;
}[keyof T];

const isString: Check = (value) => typeof value === "string";
const isBoolean: Check = (value) => typeof value === "boolean";
const isCount: Check = (value) => Number.isSafeInteger(value) && (value as number) >= 0;
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Checks of every required field of a record. */
const REQUIRED_FIELDS = {
  id: isString,
  name: isString,
  status: isTaskStatus,
  pauseCount: isCount,
  createdAt: isString,
  updatedAt: isString,
  code: isString,
  autoFetch: isBoolean,
  pending: Array.isArray,
  journalLength: isCount,
  logCount: isCount,
  eventsBytes: isCount,
} satisfies Record<RequiredKey<TaskRecord>, Check>;

/** Checks of the optional fields of a record that have a shape (`input`, `result` do not). */
const OPTIONAL_FIELDS = {
  task: isString,
  error: isObject,
  vm: isObject,
} satisfies Partial<Record<keyof TaskRecord, Check>>;

/** The record in `text` for task `id`, or why it is not one. */
function parseRecord(text: string, id: string): TaskRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `Not valid JSON: ${ensureError(error).message}`;
  }
  if (!isObject(value)) return "Not a task record: not a JSON object";
  for (const [field, check] of Object.entries(REQUIRED_FIELDS)) {
    if (!check(value[field])) return `Not a task record: field "${field}" is missing or invalid`;
  }
  for (const [field, check] of Object.entries(OPTIONAL_FIELDS)) {
    if (field in value && !check(value[field])) {
      return `Not a task record: field "${field}" is invalid`;
    }
  }
  if (value.id !== id) return `Holds task id "${value.id}", which does not match the file name`;
  return value as unknown as TaskRecord;
}

/**
 * The events of a journal's committed text, which must be whole lines (each ending with
 * `\n`); `path` names the file in errors.
 */
function parseJournal(text: string, path: string): TaskEvent[] {
  const lines = text.split("\n");
  const rest = lines.pop(); // What follows the last "\n": nothing, as eventsBytes ends a line.
  if (rest) {
    throw new Error(
      `Cannot read journal "${path}": line ${lines.length + 1} is cut off by the record's ` +
        "eventsBytes",
    );
  }
  return lines.map((line, index) => {
    const event = parseEvent(line);
    if (!event) {
      throw new Error(`Cannot read journal "${path}": line ${index + 1} is not a JSON event`);
    }
    return event;
  });
}

function parseEvent(line: string): TaskEvent | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return isObject(value) && typeof value.type === "string" ? value as TaskEvent : undefined;
  } catch {
    return undefined;
  }
}

/** The OS reason of an I/O error without the path Deno appends ("... (os error 28)"). */
function osReason(error: unknown): string {
  const message = ensureError(error).message;
  return /^.*?\(os error \d+\)/.exec(message)?.[0] ?? message;
}

/** The error for a journal that lost committed bytes: corruption the save order rules out. */
function journalTooShort(id: string, size: number, eventsBytes: number): UnavailableError {
  return new UnavailableError(
    `The journal of task "${id}" is shorter than its record: ${size} bytes, fewer than the ` +
      `${eventsBytes} the record accounts for (corrupted)`,
  );
}

function unavailable(what: string, error: unknown): UnavailableError {
  return new UnavailableError(`${what}: ${osReason(error)}`, { cause: error });
}

/** `fn` over `items` with at most `limit` calls in flight; results in input order. */
async function mapWithLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
