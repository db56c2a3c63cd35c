/**
 * The durable {@link TaskStore}: one directory, two files per task.
 *
 * - `<id>.json`: the {@link TaskRecord}, pretty-printed, replaced atomically on every save.
 * - `<id>.journal.jsonl`: the append-only journal, one JSON {@link TaskEvent} per line.
 *
 * A save appends the events first, then writes the record with `eventsBytes` set to the
 * journal's size, so after a crash the journal is never behind the record; when it is
 * ahead, {@link FileTaskStore.loadAll} reports the task as `behind`.
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
  readTextOrNull,
  truncateAfterLastNewline,
  writeFileAtomic,
} from "./atomic_file.ts";
import { BadRequestError, ensureError, UnavailableError } from "./http_errors.ts";
import {
  isTaskStatus,
  type LoadedTask,
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
  /** Journal size per id, known since this process repaired (or created) the journal. */
  readonly #journalSizes = new Map<string, number>();

  /** A store in `dir`, which `loadAll()` creates if missing. */
  constructor(dir: string, options: FileTaskStoreOptions = {}) {
    this.#dir = dir;
    this.#fsync = options.fsync ?? true;
  }

  /**
   * Every record in the directory, with `behind` set when its journal is larger than the
   * record's `eventsBytes`. Files that are not a valid record named `<id>.json` are skipped
   * and left on disk; so is a record whose journal is shorter than its `eventsBytes` (the
   * journal lost events the record relies on, which the save order rules out, so the task
   * cannot be resumed). Temp files of interrupted writes are removed.
   */
  async loadAll(): Promise<{ tasks: LoadedTask[]; skipped: SkippedFile[] }> {
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
    const tasks: LoadedTask[] = [];
    recordFiles.sort();
    for (const outcome of await mapWithLimit(recordFiles, LOAD_CONCURRENCY, (f) => this.#load(f))) {
      if ("record" in outcome) tasks.push(outcome);
      else skipped.push(outcome);
    }
    return { tasks, skipped };
  }

  /**
   * Appends `events` to the journal (first dropping a torn last line if this process has
   * not touched the journal yet), then atomically writes `record` with `eventsBytes` set to
   * the journal's size. Returns a copy of the written record. I/O failures reject with an
   * `UnavailableError`; the previous record is then intact.
   */
  async save(record: TaskRecord, events: readonly TaskEvent[]): Promise<TaskRecord> {
    const id = record.id;
    assertTaskId(id);
    const lines = events.map((event) => JSON.stringify(event) + "\n").join("");
    let eventsBytes: number;
    try {
      eventsBytes = this.#journalSizes.get(id) ??
        await truncateAfterLastNewline(this.#journalPath(id));
      if (lines) {
        eventsBytes += await appendLines(this.#journalPath(id), lines, { fsync: this.#fsync });
      }
    } catch (error) {
      // The append may have been cut short: repair the tail again before the next one.
      this.#journalSizes.delete(id);
      throw unavailable(`Cannot append to the journal of task "${id}"`, error);
    }
    this.#journalSizes.set(id, eventsBytes);
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
   * The journal's complete lines, parsed, in order; `[]` when there is no journal. A torn
   * (unterminated or unparsable) last line is ignored; an unparsable line before it throws.
   */
  async readEvents(id: string): Promise<TaskEvent[]> {
    assertTaskId(id);
    const path = this.#journalPath(id);
    let text: string | null;
    try {
      text = await readTextOrNull(path);
    } catch (error) {
      throw unavailable(`Cannot read the journal of task "${id}"`, error);
    }
    return text === null ? [] : parseJournal(text, path);
  }

  async #load(file: string): Promise<LoadedTask | SkippedFile> {
    const id = file.slice(0, -RECORD_SUFFIX.length);
    if (!TASK_ID_PATTERN.test(id)) return { file, reason: "File name is not a valid task id" };
    let text: string;
    try {
      text = await Deno.readTextFile(join(this.#dir, file));
    } catch (error) {
      return { file, reason: `Cannot read the file: ${osReason(error)}` };
    }
    const record = parseRecord(text, id);
    if (typeof record === "string") return { file, reason: record };
    let journalBytes = 0;
    try {
      journalBytes = (await Deno.stat(this.#journalPath(id))).size;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        return {
          file,
          reason: `Cannot stat the journal "${id}${JOURNAL_SUFFIX}": ${osReason(error)}`,
        };
      }
    }
    if (journalBytes < record.eventsBytes) {
      return {
        file,
        reason: `Journal "${id}${JOURNAL_SUFFIX}" has ${journalBytes} bytes, fewer than the ` +
          `${record.eventsBytes} the record accounts for`,
      };
    }
    return { record, behind: journalBytes > record.eventsBytes };
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

/** The events of a journal's complete lines; `path` names the file in errors. */
function parseJournal(text: string, path: string): TaskEvent[] {
  const lines = text.split("\n");
  lines.pop(); // What follows the last "\n": nothing, or a torn line.
  const events: TaskEvent[] = [];
  for (const [index, line] of lines.entries()) {
    const event = parseEvent(line);
    if (event) events.push(event);
    else if (index < lines.length - 1) {
      throw new Error(`Cannot read journal "${path}": line ${index + 1} is not a JSON event`);
    }
  }
  return events;
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
