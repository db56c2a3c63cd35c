/**
 * The durable {@link TaskStore}: one directory, two files per task.
 *
 * - `<id>.journal.jsonl`: the task's write-ahead log, one JSON line each: the
 *   {@link TaskEvent}s of every save followed by its commit line,
 *   `{"type":"commit","record":{...}}`, which holds the record as of that save (see
 *   {@link commitLine}). A save appends its lines in one write and flushes them with one
 *   fdatasync: that is the commit, and the only flush of a routine save.
 * - `<id>.json`: the {@link TaskRecord}, pretty-printed: a readable cache of the journal's
 *   last commit, replaced atomically (temp file, rename) after it, without a flush. Only a
 *   task's first save writes it durably (temp file, fsync, rename, directory fsync), which
 *   also makes the new journal's directory entry durable. A pause that follows a pause
 *   defers the write (`deferred_records.ts`: at most a second, once for all the pauses in
 *   between), but under an integrity key; `close()` makes the deferred writes.
 *
 * The record's `eventsBytes` is the size of the journal up to the end of the commit line
 * it was written with; the commit point is the end of the journal's last complete commit
 * line. Normally they are the same; when the record file lags (the process or the machine
 * died between a journal commit and the record's rename, which is not flushed), `loadAll()`
 * and `readRecord()` read the journal past `eventsBytes` and take the last commit found
 * there; a record file left unreadable is rebuilt from the journal. Lines after the last
 * commit belong to a save that never committed: they are ignored, and the next save cuts
 * the journal back to its record's `eventsBytes` before appending. `readEvents` reads the
 * committed bytes only and leaves out the commit lines.
 *
 * `remove(id)` unlinks the record file first and flushes the directory: that is the commit
 * of a removal (a journal without its record file is not a task); then it unlinks the
 * journal. `loadAll()` removes a journal left without its record file, by a removal or a
 * first save that was interrupted.
 *
 * The store assumes it is the only writer of its directory, and `loadAll()` runs before
 * any save (it creates the directory and removes temp files of interrupted writes).
 *
 * @module
 */
import { join } from "node:path";
import {
  ensureDir,
  isTempFileName,
  NotRegularFileError,
  readHead,
  readRange,
  readTextOrNull,
  refuseSpecial,
  removeFile,
  renameIntoPlace,
  shrinkFile,
  writeTempFile,
} from "./atomic_file.ts";
import { OpenJournals } from "./open_journals.ts";
import { DeferredRecords } from "./deferred_records.ts";
import {
  BadRequestError,
  ConflictError,
  ensureError,
  type HttpError,
  UnavailableError,
} from "../errors.ts";
import { JournalIntegrityError, JournalMac } from "./journal_mac.ts";
import { JournalCipher, SealedPartError } from "./journal_cipher.ts";
import { bodyLineRange, splitBodyLine, withBodyRefs } from "./pending_bodies.ts";
import type { FetchRequest } from "../engine/types.ts";
import type { PendingRequest } from "./task_store.ts";
import {
  isTaskStatus,
  type SkippedFile,
  type TaskEvent,
  type TaskRecord,
  TaskStatus,
  type TaskStore,
} from "../service/mod.ts";
import {
  isFinished,
  type ListQuery,
  TaskIndex,
  type TaskPage,
  type TaskSummary,
  timeMs,
} from "./task_index.ts";
import {
  entryLine,
  INDEX_FILE_NAME,
  IndexFile,
  parseIndex,
  type Removal,
  removalLine,
} from "./index_file.ts";

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
/** Records of active tasks {@link FileTaskStore.readActive} reads before it yields them. */
const ACTIVE_BATCH = 256;
/** Indentation of record files, which humans read. */
const RECORD_INDENT = 2;
/** A signed line's MAC and what follows it before the `\n`: 64 hex digits and `"}`. */
const MAC_TAIL_BYTES = 66;
/** How every commit line starts (`JSON.stringify` of `{ type: "commit", record }`). */
const COMMIT_PREFIX = '{"type":"commit",';

/**
 * The commit line of a save of `record`, without its `\n`: `{"type":"commit","record":{...}}`
 * with the record as saved, less `eventsBytes` (the line's end is the commit point). The
 * journal's first commit (`record.eventsBytes === 0`) holds all the rest of the record, so
 * that the journal alone can rebuild it; later commits leave out what is fixed at creation:
 * `code`, `input`, and, in `vm`, `code` and `globals` when they are the task's code and
 * `{ input }` (as the task service sets them); a commit is read with the first one's.
 */
export function commitLine(record: TaskRecord): string {
  const { eventsBytes, ...full } = record;
  if (eventsBytes === 0) return JSON.stringify({ type: "commit", record: full });
  const { code, input, ...lean } = full;
  if (!lean.vm) return JSON.stringify({ type: "commit", record: lean });
  const { code: vmCode, globals, ...vm }: Record<string, unknown> = lean.vm;
  if (vmCode !== code) vm.code = vmCode;
  if (JSON.stringify(globals) !== JSON.stringify(inputGlobals(input))) vm.globals = globals;
  return JSON.stringify({ type: "commit", record: { ...lean, vm } });
}

/** Whether a journal line (without its `\n`) is a commit line rather than an event. */
export function isCommitLine(line: string): boolean {
  return line.startsWith(COMMIT_PREFIX);
}

/** The journal lines (without `\n`) of the events of a save of task `id`. */
function eventLines(id: string, events: readonly TaskEvent[]): string[] {
  const lines: string[] = [];
  for (const event of events) {
    const line = JSON.stringify(event);
    if (isCommitLine(line)) {
      throw new TypeError(`Event of type "commit" in a save of task "${id}"`);
    }
    lines.push(line);
  }
  return lines;
}

/** `lines` joined, each followed by `\n`. */
function joinLines(lines: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const line of lines) size += line.length + 1;
  const out = new Uint8Array(size);
  let at = 0;
  for (const line of lines) {
    out.set(line, at);
    at += line.length;
    out[at++] = 0x0a;
  }
  return out;
}

/** Options of {@link FileTaskStore}. */
export interface FileTaskStoreOptions {
  /** Flush every write to the disk. Default `true`; turn off only for tests and benchmarks. */
  fsync?: boolean;
  /**
   * A secret: every journal line is signed ({@link JournalMac}) and checked when read; a
   * journal that fails the check is refused (skipped at startup, 409 when read later), and
   * a task's record is rebuilt from its checked journal rather than read from its record
   * file. Journals written without it fail the check.
   */
  integrityKey?: string;
  /**
   * A secret: request options and response headers, bodies and data are sealed with
   * AES-256-GCM in the journal and in the record's `pending` ({@link JournalCipher}).
   */
  encryptionKey?: string;
}

/** A {@link TaskStore} keeping each task in a record file and a journal file in one directory. */
export class FileTaskStore implements TaskStore {
  readonly #dir: string;
  readonly #fsync: boolean;
  /** Journal size per id, known since this process last cut back or appended to it. */
  readonly #journalSizes = new Map<string, number>();
  /** Handles of the journals appended to lately (see `open_journals.ts`). */
  readonly #journals = new OpenJournals();
  /** Record writes deferred after a pause that followed a pause. */
  readonly #deferred = new DeferredRecords();
  readonly #encoder = new TextEncoder();
  readonly #mac: JournalMac | undefined;
  readonly #cipher: JournalCipher | undefined;
  /** MAC chain value at the end of the committed journal, per id, when known. */
  readonly #chains = new Map<string, { bytes: number; mac: string }>();
  #index = new TaskIndex();
  readonly #indexFile: IndexFile;
  /** Tasks whose removal started and whose files may not be gone yet: id, creation time. */
  readonly #removing = new Map<string, number>();
  /** Tasks `open()` skipped as unreadable: not tasks for this process, as at a rebuild. */
  readonly #skipped = new Set<string>();
  readonly #background = new Set<Promise<unknown>>();
  #rewriting = false;
  /** What {@link readActive} reads: set by {@link openIndex}. */
  #toRead: { records: TaskRecord[] } | { entries: TaskSummary[] } | undefined;

  /** A store in `dir`, which `open()` (or `loadAll()`) creates if missing. */
  constructor(dir: string, options: FileTaskStoreOptions = {}) {
    this.#dir = dir;
    this.#fsync = options.fsync ?? true;
    this.#mac = options.integrityKey === undefined
      ? undefined
      : new JournalMac(options.integrityKey);
    this.#cipher = options.encryptionKey === undefined
      ? undefined
      : new JournalCipher(options.encryptionKey);
    this.#indexFile = new IndexFile(join(dir, INDEX_FILE_NAME), { fsync: this.#fsync });
  }

  /**
   * Reads the index file (`_index.tsv`) and the records of the tasks it lists as running or
   * paused, which correct it: a task whose record is gone is dropped, one found finished
   * is marked so. Removals the index file records are completed first. When
   * the index file is missing or unreadable, it is rebuilt from the records
   * ({@link loadAll}).
   */
  async open(): Promise<{ active: TaskRecord[]; skipped: SkippedFile[] }> {
    const { skipped } = await this.openIndex();
    const active: TaskRecord[] = [];
    for await (const read of this.readActive()) {
      if ("record" in read) active.push(read.record);
      else skipped.push(read.skipped);
    }
    return { active, skipped };
  }

  /**
   * The first half of {@link open}: reads the index file (rebuilt from the records when it
   * is missing or unreadable) and completes the removals it records; {@link readActive}
   * then reads the records of the tasks it lists as running or paused.
   */
  async openIndex(): Promise<{ skipped: SkippedFile[] }> {
    let file: { bytes: Uint8Array; snapshot: Uint8Array | null } | null;
    try {
      await ensureDir(this.#dir);
      file = await this.#indexFile.read();
    } catch (error) {
      throw unavailable(`Cannot read the index of "${this.#dir}"`, error);
    }
    const loaded = file === null ? null : parseIndex(file.bytes, file.snapshot);
    file = null;
    if (loaded === null || typeof loaded === "string") {
      const { tasks, skipped } = await this.#scan((record) => !isFinished(record.status));
      if (typeof loaded === "string") {
        skipped.unshift({ file: INDEX_FILE_NAME, reason: `${loaded}; rebuilt from the records` });
      }
      this.#toRead = { records: tasks };
      return { skipped };
    }
    try {
      await this.#indexFile.adopt(loaded);
    } catch (error) {
      throw unavailable(`Cannot open the index of "${this.#dir}"`, error);
    }
    this.#index = loaded.index;
    // A file of an older version is rewritten before anything is appended to it.
    if (loaded.version === 1) this.#rewriteIndex();
    await this.#completeRemovals(loaded.removals);
    this.#toRead = { entries: this.#index.having([TaskStatus.Running, TaskStatus.Paused]) };
    return { skipped: [] };
  }

  /**
   * The second half of {@link open}: the records of the tasks the index listed as running
   * or paused, read a batch at a time, which correct the index: a task whose record is gone
   * is dropped, one found finished is marked so (unless a save or removal changed it since
   * {@link openIndex}).
   */
  async *readActive(): AsyncGenerator<{ record: TaskRecord } | { skipped: SkippedFile }> {
    const toRead = this.#toRead;
    this.#toRead = undefined;
    if (!toRead) return;
    if ("records" in toRead) {
      for (const record of toRead.records) yield { record };
      return;
    }
    const { entries } = toRead;
    for (let first = 0; first < entries.length; first += ACTIVE_BATCH) {
      const batch = entries.slice(first, first + ACTIVE_BATCH);
      const outcomes = await mapWithLimit(batch, LOAD_CONCURRENCY, async (entry) => {
        try {
          return { entry, record: await this.readRecord(entry.id) };
        } catch (error) {
          return { entry, error: ensureError(error).message };
        }
      });
      let corrections = "";
      for (const { entry, record, error } of outcomes) {
        // A task saved or removed since openIndex() is as that left it.
        const unchanged = sameSummary(this.#index.get(entry.id, entry.createdAt), entry);
        if (error !== undefined) {
          if (!unchanged) continue;
          this.#index.delete(entry.id, entry.createdAt);
          this.#skipped.add(entry.id);
          yield { skipped: { file: entry.id + RECORD_SUFFIX, reason: error } };
        } else if (record === null) {
          if (!unchanged) continue;
          this.#index.delete(entry.id, entry.createdAt);
          corrections += removalLine(entry.id, timeMs(entry.createdAt));
        } else {
          if (unchanged) {
            this.#index.delete(entry.id, entry.createdAt);
            this.#index.set(summaryOf(record));
            if (isFinished(record.status)) corrections += entryLine(entryOf(record));
          }
          if (!isFinished(record.status)) yield { record };
        }
      }
      if (corrections !== "") await this.#note(corrections);
    }
    this.#maybeRewrite();
  }

  /** A page of tasks from the index. */
  list(query: ListQuery): Promise<TaskPage> {
    return Promise.try(() => this.#index.list(query));
  }

  /** Tasks by status, from the index. */
  counts(): Record<TaskStatus, number> {
    return this.#index.counts();
  }

  /** Finished tasks last updated before `cutoffMs`, from the index. */
  finishedBefore(cutoffMs: number, limit: number): Promise<TaskSummary[]> {
    return Promise.resolve(this.#index.finishedBefore(cutoffMs, limit));
  }

  /**
   * Records the removal in the index file (flushed when `fsync` is on), then removes the
   * record file (from then on the task is gone) and the journal. When the process dies
   * after the index line, the next `open()` completes the removal.
   */
  async remove(id: string): Promise<boolean> {
    assertTaskId(id);
    if (this.#removing.has(id)) return false;
    const record = await this.readRecord(id);
    if (record === null || this.#removing.has(id)) return false;
    const createdMs = timeMs(record.createdAt);
    this.#index.delete(id, record.createdAt);
    this.#removing.set(id, createdMs);
    try {
      await this.#indexFile.append(removalLine(id, createdMs), true);
    } catch (error) {
      this.#removing.delete(id);
      this.#index.set(summaryOf(record));
      throw unavailable(`Cannot remove task "${id}"`, error);
    }
    try {
      await this.#deferred.settle(id);
      await this.#removeFiles(id);
    } catch (error) {
      // Invisible from now on; the next open() removes the files again.
      throw unavailable(`Cannot remove the files of task "${id}"`, error);
    }
    this.#removing.delete(id);
    this.#maybeRewrite();
    return true;
  }

  /** {@link close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Waits for index writes and removals under way, closes the journals kept open, then the
   * index file. The store may be used again afterwards (it opens what it needs anew).
   */
  async close(): Promise<void> {
    await this.#deferred.flush();
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
    this.#journals.closeAll();
    await this.#indexFile.close();
  }

  /**
   * Every record in the directory, caught up with its journal: when the journal holds
   * commits after the record's `eventsBytes` (the record file lagged), the record is the
   * last of them, with `eventsBytes` at its end; a record file that is not valid JSON (torn
   * by a power loss) is rebuilt from the journal's commits when they can rebuild it. Files
   * that are not a valid record named `<id>.json` are skipped and left on disk; so is a
   * record whose journal is shorter than its `eventsBytes` (the journal lost committed
   * events, so the task cannot be resumed). Temp files of interrupted writes are removed, and
   * so are journals without a record file (left by an interrupted `remove()` or first save).
   * Reads a journal only when it is longer than its record accounts for (or the record is
   * unreadable); otherwise one `stat` per task.
   */
  loadAll(): Promise<{ tasks: TaskRecord[]; skipped: SkippedFile[] }> {
    return this.#scan(() => true);
  }

  /**
   * {@link loadAll}, keeping in memory only the records `keep` takes (every record goes
   * into the index): what `open()` uses to rebuild a missing index of any size.
   */
  async #scan(
    keep: (record: TaskRecord) => boolean,
  ): Promise<{ tasks: TaskRecord[]; skipped: SkippedFile[] }> {
    const recordFiles: string[] = [];
    const leftovers: string[] = [];
    const journalFiles: string[] = [];
    const notRegular: Deno.DirEntry[] = [];
    try {
      await ensureDir(this.#dir);
      for await (const entry of Deno.readDir(this.#dir)) {
        if (entry.isDirectory) continue;
        if (isTempFileName(entry.name)) leftovers.push(entry.name);
        else if (entry.name.endsWith(JOURNAL_SUFFIX)) journalFiles.push(entry.name);
        else if (!entry.name.endsWith(RECORD_SUFFIX)) continue;
        else if (entry.isFile) recordFiles.push(entry.name);
        else notRegular.push(entry);
      }
    } catch (error) {
      throw unavailable(`Cannot list the tasks in "${this.#dir}"`, error);
    }
    const records = new Set(recordFiles);
    for (const file of journalFiles) {
      const id = file.slice(0, -JOURNAL_SUFFIX.length);
      if (TASK_ID_PATTERN.test(id) && !records.has(id + RECORD_SUFFIX)) leftovers.push(file);
    }
    notRegular.sort((a, b) => (a.name < b.name ? -1 : 1));
    const skipped: SkippedFile[] = notRegular.map((entry) => ({
      file: entry.name,
      reason: entry.isSymlink
        ? "A symbolic link, not a regular file: not followed"
        : "Not a regular file (a FIFO, socket or device): not opened",
    }));
    for (const file of leftovers) {
      const problem = await this.#removeLeftover(file);
      if (problem) skipped.push(problem);
    }
    recordFiles.sort();
    const index = new TaskIndex();
    const kept = await mapWithLimit(recordFiles, LOAD_CONCURRENCY, async (file) => {
      const outcome = await this.#load(file);
      if (!outcome.record) return outcome;
      index.set(summaryOf(outcome.record));
      return keep(outcome.record) ? outcome : null;
    });
    const tasks: TaskRecord[] = [];
    for (const outcome of kept) {
      if (outcome?.record) tasks.push(outcome.record);
      else if (outcome) skipped.push(outcome.skipped);
    }
    this.#index = index;
    this.#removing.clear();
    try {
      await this.#indexFile.rewrite(() => ({ index: index.clone(), removals: [] }));
    } catch (error) {
      throw unavailable(`Cannot write the index of "${this.#dir}"`, error);
    }
    return { tasks, skipped };
  }

  /**
   * Cuts the journal back to `record.eventsBytes`, discarding what an interrupted save left
   * after it (skipped when this process knows the journal has exactly that size); appends
   * `events` and the commit line of `record` in one write, flushed when `fsync` is on (the
   * commit); then replaces the record file atomically, without a flush: the record is a
   * cache of the commit (its temp file is written while the journal commits; the rename
   * waits for the commit). The first save of a task (`record.eventsBytes === 0`) creates
   * the journal and writes the record durably (flushed file and directory). Returns a copy
   * of the record with `eventsBytes` set to the journal's new size.
   *
   * Rejects with an `UnavailableError` when the journal is shorter than
   * `record.eventsBytes` or on I/O failure; the journal is then cut back to
   * `record.eventsBytes` (flushed; best effort), so the failed save does not come back after
   * a restart, and the previous record is intact.
   */
  async save(record: TaskRecord, events: readonly TaskEvent[]): Promise<TaskRecord> {
    const id = record.id;
    assertTaskId(id);
    const committed = record.eventsBytes;
    if (!isCount(committed)) {
      throw new TypeError(`Invalid eventsBytes ${committed} in the record of task "${id}"`);
    }
    // Everything is serialized (sealed, signed) before the first write, so nothing throws in
    // between.
    const cipher = this.#cipher;
    const stored = cipher
      ? await Promise.all(events.map((event) => cipher.sealEvent(event)))
      : events;
    let texts = eventLines(id, stored);
    let chain = this.#mac ? await this.#chainAt(id, committed) : undefined;
    if (this.#mac) {
      const signed = await this.#mac.sign(texts, chain!);
      texts = signed.lines;
      chain = signed.last;
    }
    const encoded = texts.map((text) => this.#encoder.encode(text));
    // Large pending bodies stay in their request lines, written just above: the record
    // and its commit line reference them.
    const plain = withBodyRefs(record, events, encoded, committed);
    record = cipher ? await cipher.sealRecord(plain) : plain;
    let commit = commitLine(record);
    if (this.#mac) {
      const signed = await this.#mac.sign([commit], chain!);
      commit = signed.lines[0]!;
      chain = signed.last;
    }
    encoded.push(this.#encoder.encode(commit));
    const lines = joinLines(encoded);
    this.#skipped.delete(id);
    const before = this.#index.get(id, plain.createdAt);
    const summary = summaryOf(plain);
    // A task that becomes active is in the index file, durably, before its commit: the
    // next open() reads the records of the tasks the index lists as active.
    const becomesActive = !isFinished(plain.status) &&
      (before === undefined || isFinished(before.status));
    if (becomesActive) {
      this.#index.set(summary);
      try {
        await this.#indexFile.append(entryLine(entryOf(plain)), true);
      } catch (error) {
        this.#restoreIndex(id, plain.createdAt, before);
        throw unavailable(`Cannot save task "${id}" in the index`, error);
      }
    }
    const eventsBytes = committed + lines.length;
    const text = JSON.stringify({ ...record, eventsBytes }, null, RECORD_INDENT) + "\n";
    const recordPath = this.#recordPath(id);
    // A pause after a pause defers its record write (see `deferred_records.ts`): the commit
    // line just appended holds the record. Every other save writes it now, and so does every
    // save under an integrity key, where the record file's length is the witness that no
    // committed line was cut from the journal's end.
    const defer = !this.#mac && committed > 0 && plain.status === TaskStatus.Paused &&
      before?.status === TaskStatus.Paused && plain.overrunAt === undefined;
    // The first save writes the record durably: flushed, then renamed, then the directory
    // flushed, which makes the journal created just before durable too.
    const durable = this.#fsync && committed === 0;
    if (!defer) await this.#deferred.settle(id);
    // The record's temp file is written while the journal commits, and renamed after.
    const staged = defer ? undefined : writeTempFile(recordPath, text, { fsync: durable });
    staged?.catch(() => {}); // Handled below, once the journal half has settled.
    try {
      await this.#append(id, committed, lines);
    } catch (error) {
      this.#chains.delete(id);
      await staged?.then((tempPath) => Deno.remove(tempPath)).catch(() => {});
      if (becomesActive) this.#restoreIndex(id, plain.createdAt, before);
      throw error;
    }
    if (chain !== undefined) this.#chains.set(id, { bytes: eventsBytes, mac: chain });
    if (staged) {
      try {
        await renameIntoPlace(await staged, recordPath, { fsync: durable });
      } catch (error) {
        await this.#takeBack(id, committed);
        if (becomesActive) this.#restoreIndex(id, plain.createdAt, before);
        throw unavailable(`Cannot save task "${id}"`, error);
      }
    } else this.#deferred.defer(id, recordPath, text);
    this.#index.set(summary);
    if (isFinished(plain.status)) {
      // Nothing is kept in memory per finished task: a later save (a retry) checks anew.
      this.#forgetJournal(id);
      this.#chains.delete(id);
    }
    // A finished task's line need not be durable: until it is, the next open() reads the
    // record of the task, which the index file still lists as active.
    if (isFinished(plain.status)) await this.#note(entryLine(entryOf(plain)));
    return this.#cipher ? JSON.parse(JSON.stringify({ ...plain, eventsBytes })) : JSON.parse(text);
  }

  /**
   * The record, or `null` if there is none, caught up with its journal as by `loadAll()`;
   * throws if the file is not a valid record and the journal cannot rebuild it.
   */
  async readRecord(id: string): Promise<TaskRecord | null> {
    assertTaskId(id);
    if (this.#removing.has(id) || this.#skipped.has(id)) return null;
    const path = this.#recordPath(id);
    let text: string | null;
    let journalBytes: number;
    try {
      text = await readTextOrNull(path);
      if (text === null) return null;
      journalBytes = await fileSize(this.#journalPath(id));
    } catch (error) {
      throw unavailable(`Cannot read task "${id}"`, error);
    }
    const record = await this.#resolve(id, text, journalBytes);
    if (typeof record === "string") throw new Error(`Cannot read task from "${path}": ${record}`);
    try {
      return await this.#opened(record);
    } catch (error) {
      if (!(error instanceof SealedPartError)) throw error;
      throw new ConflictError(`Cannot read task "${id}": ${error.message}`);
    }
  }

  /**
   * The events of the journal's first `record.eventsBytes` bytes, parsed, in order, without
   * the commit lines; reads no further, so what an interrupted save appended after them is
   * ignored. Throws naming the file and line when a committed line is not a JSON event, and
   * rejects with an `UnavailableError` when the journal is shorter than `eventsBytes`.
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
    const text = new TextDecoder().decode(bytes);
    const events = parseJournal(this.#mac ? await this.#verifiedText(id, text) : text, path);
    if (!this.#cipher) return events;
    const cipher = this.#cipher;
    try {
      return await Promise.all(events.map((event) => cipher.openEvent(event)));
    } catch (error) {
      if (!(error instanceof SealedPartError)) throw error;
      throw new ConflictError(`Cannot read the journal of task "${id}": ${error.message}`);
    }
  }

  /**
   * The committed events from the first whole line in the journal's last `maxBytes`
   * committed bytes: one read of that range (and, with an integrity key, of the MAC ending
   * the line before it, from which the range is checked).
   */
  async readTail(
    record: Pick<TaskRecord, "id" | "eventsBytes">,
    maxBytes: number,
  ): Promise<{ events: TaskEvent[]; skippedBytes: number }> {
    const { id, eventsBytes } = record;
    if (eventsBytes <= maxBytes) return { events: await this.readEvents(record), skippedBytes: 0 };
    assertTaskId(id);
    const path = this.#journalPath(id);
    const start = eventsBytes - maxBytes;
    // The byte before the first line's start is a "\n"; with a MAC, the 64 hex digits and
    // `"}` before it are the previous line's MAC.
    const from = Math.max(0, start - 1 - (this.#mac ? MAC_TAIL_BYTES : 0));
    let bytes: Uint8Array | null;
    try {
      bytes = await readRange(path, from, eventsBytes - from);
    } catch (error) {
      throw unavailable(`Cannot read the journal of task "${id}"`, error);
    }
    const size = from + (bytes?.length ?? 0);
    if (!bytes || size < eventsBytes) throw journalTooShort(id, size, eventsBytes);
    const newline = bytes.indexOf(0x0a, start - 1 - from);
    const lineStart = newline + 1;
    let text = new TextDecoder().decode(bytes.subarray(lineStart));
    if (this.#mac && text !== "") {
      const previous = new TextDecoder().decode(
        bytes.subarray(newline - MAC_TAIL_BYTES, newline - 2),
      );
      try {
        const lines = text.split("\n");
        lines.pop();
        text = (await this.#mac.verify(lines, previous)).lines.join("\n") + "\n";
      } catch (error) {
        if (!(error instanceof JournalIntegrityError)) throw error;
        throw new ConflictError(`Task "${id}" failed its integrity check: ${error.message}`);
      }
    }
    let events = parseJournal(text, path);
    if (this.#cipher) {
      const cipher = this.#cipher;
      try {
        events = await Promise.all(events.map((event) => cipher.openEvent(event)));
      } catch (error) {
        if (!(error instanceof SealedPartError)) throw error;
        throw new ConflictError(`Cannot read the journal of task "${id}": ${error.message}`);
      }
    }
    return { events, skippedBytes: from + lineStart };
  }

  /**
   * The pending request with its body read back from its journal line when the record
   * references it ({@link BodyRef}): one read of that line (and, with an integrity key, of
   * the previous line's MAC, against which it is checked).
   */
  async requestWithBody(id: string, request: PendingRequest): Promise<FetchRequest> {
    const { bodyRef, ...plain } = request;
    if (!bodyRef) return plain;
    assertTaskId(id);
    const signed = this.#mac !== undefined;
    const range = bodyLineRange(bodyRef, signed);
    let bytes: Uint8Array | null;
    try {
      bytes = await readRange(this.#journalPath(id), range.from, range.length);
    } catch (error) {
      throw unavailable(`Cannot read the journal of task "${id}"`, error);
    }
    const lost = () =>
      new ConflictError(
        `Cannot read the body of request "${request.id}" of task "${id}" back from its journal`,
      );
    if (!bytes || bytes.length < range.length) throw lost();
    let line: string;
    let event: TaskEvent | undefined;
    try {
      const split = splitBodyLine(bytes, bodyRef, signed);
      line = split.line;
      if (this.#mac) {
        const previous = split.previousMac ?? JournalMac.start(id);
        line = (await this.#mac.verify([line], previous)).lines[0]!;
      }
      event = parseEvent(line);
      if (event && this.#cipher) event = await this.#cipher.openEvent(event);
    } catch (error) {
      if (error instanceof JournalIntegrityError || error instanceof SealedPartError) {
        throw new ConflictError(
          `Cannot read the body of request "${request.id}" of task "${id}": ${error.message}`,
        );
      }
      throw lost();
    }
    if (event?.type !== "request" || event.request.id !== request.id) throw lost();
    return event.request;
  }

  /** `record` with its sealed parts opened (as it is without an encryption key). */
  async #opened(record: TaskRecord): Promise<TaskRecord> {
    return this.#cipher ? await this.#cipher.openRecord(record) : record;
  }

  /**
   * The committed journal text `text` of task `id` without its MACs, checked; rejects with
   * a 409 `ConflictError` when it fails the check. Remembers the chain's end.
   */
  async #verifiedText(id: string, text: string): Promise<string> {
    const lines = text.split("\n");
    const rest = lines.pop();
    let verified: { lines: string[]; last: string };
    try {
      verified = await this.#mac!.verify(lines, JournalMac.start(id));
    } catch (error) {
      if (!(error instanceof JournalIntegrityError)) throw error;
      throw new ConflictError(`Task "${id}" failed its integrity check: ${error.message}`);
    }
    this.#chains.set(id, { bytes: this.#encoder.encode(text).length, mac: verified.last });
    return verified.lines.join("\n") + "\n" + (rest ?? "");
  }

  /** The MAC chain value after the first `committed` bytes of task `id`'s journal. */
  async #chainAt(id: string, committed: number): Promise<string> {
    if (committed === 0) return JournalMac.start(id);
    const known = this.#chains.get(id);
    if (known?.bytes === committed) return known.mac;
    let bytes: Uint8Array | null;
    try {
      bytes = await readHead(this.#journalPath(id), committed);
    } catch (error) {
      throw unavailable(`Cannot read the journal of task "${id}"`, error);
    }
    if (!bytes || bytes.length < committed) {
      throw journalTooShort(id, bytes?.length ?? 0, committed);
    }
    await this.#verifiedText(id, new TextDecoder().decode(bytes));
    return this.#chains.get(id)!.mac;
  }

  async #load(
    file: string,
  ): Promise<{ record: TaskRecord } | { record?: never; skipped: SkippedFile }> {
    const skip = (reason: string) => ({ skipped: { file, reason } });
    const id = file.slice(0, -RECORD_SUFFIX.length);
    if (!TASK_ID_PATTERN.test(id)) return skip("File name is not a valid task id");
    let text: string | null;
    try {
      text = await readTextOrNull(join(this.#dir, file));
    } catch (error) {
      return skip(`Cannot read the file: ${osReason(error)}`);
    }
    if (text === null) return skip("The file disappeared while loading");
    let journalBytes: number;
    try {
      journalBytes = await fileSize(this.#journalPath(id));
    } catch (error) {
      return skip(`Cannot stat the journal "${id}${JOURNAL_SUFFIX}": ${osReason(error)}`);
    }
    let record: TaskRecord | string;
    try {
      record = await this.#resolve(id, text, journalBytes);
    } catch (error) {
      return skip(ensureError(error).message);
    }
    if (typeof record === "string") return skip(record);
    if (journalBytes < record.eventsBytes) {
      return skip(
        `Journal "${id}${JOURNAL_SUFFIX}" has ${journalBytes} bytes, fewer than the ` +
          `${record.eventsBytes} the record accounts for`,
      );
    }
    try {
      return { record: await this.#opened(record) };
    } catch (error) {
      return skip(ensureError(error).message);
    }
  }

  /**
   * The record of task `id` from the text of its record file and the size of its journal:
   * the file's record caught up with the commits the journal holds after its `eventsBytes`,
   * or, when the file is not valid JSON, rebuilt from the journal; or why there is none.
   * Rejects with an `UnavailableError` when the journal's tail cannot be read.
   */
  async #resolve(id: string, text: string, journalBytes: number): Promise<TaskRecord | string> {
    if (this.#mac) return await this.#resolveChecked(id, text, journalBytes);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      const reason = `Not valid JSON: ${ensureError(error).message}`;
      // What a power loss can leave of a record file replaced without a flush.
      return (journalBytes > 0 && await this.#rebuild(id, journalBytes)) || reason;
    }
    const record = checkRecord(value, id);
    if (typeof record === "string" || journalBytes <= record.eventsBytes) return record;
    const from = record.eventsBytes;
    let tail: Uint8Array | null;
    try {
      tail = await readRange(this.#journalPath(id), from, journalBytes - from);
    } catch (error) {
      throw unavailable(`Cannot read the journal of task "${id}"`, error);
    }
    const { last } = scanCommits(tail ?? new Uint8Array(), from);
    if (!last) return record;
    const caughtUp = checkRecord(fromCommit(record, last.record, last.end), id);
    return typeof caughtUp === "string"
      ? `The last commit of journal "${id}${JOURNAL_SUFFIX}" is invalid: ${caughtUp}`
      : caughtUp;
  }

  /**
   * With an integrity key: the record rebuilt from task `id`'s journal, checked up to its
   * last commit (the record file, which carries no MAC, only says how long the journal must
   * be); or why there is none.
   */
  async #resolveChecked(
    id: string,
    text: string,
    journalBytes: number,
  ): Promise<TaskRecord | string> {
    let bytes: Uint8Array | null;
    try {
      bytes = await readHead(this.#journalPath(id), journalBytes);
    } catch (error) {
      throw unavailable(`Cannot read the journal of task "${id}"`, error);
    }
    const { last } = scanCommits(bytes ?? new Uint8Array(), 0);
    if (!last) return `Journal "${id}${JOURNAL_SUFFIX}" holds no commit`;
    const committed = new TextDecoder().decode(bytes!.subarray(0, last.end));
    let verified: string;
    try {
      verified = await this.#verifiedText(id, committed);
    } catch (error) {
      return ensureError(error).message;
    }
    const { first, last: checked } = scanCommits(this.#encoder.encode(verified), 0);
    if (!first || !checked || !("code" in first.record)) {
      return `Journal "${id}${JOURNAL_SUFFIX}" cannot rebuild the task`;
    }
    const record = checkRecord(fromCommit(first.record, checked.record, last.end), id);
    if (typeof record === "string") return record;
    // A record file that accounts for more than the journal's last commit: committed lines
    // were lost or garbled (scanning stops at a line that does not parse).
    let claimed = 0;
    try {
      const value: unknown = JSON.parse(text);
      if (isObject(value) && isCount(value.eventsBytes)) claimed = value.eventsBytes as number;
    } catch {
      // A torn record file: the journal alone decides.
    }
    if (claimed > last.end) {
      return `Task "${id}" failed its integrity check: its journal's commits end at byte ` +
        `${last.end}, before the ${claimed} its record accounts for`;
    }
    return record;
  }

  /** The record the whole journal of task `id` commits, if its commits can rebuild it. */
  async #rebuild(id: string, journalBytes: number): Promise<TaskRecord | undefined> {
    let bytes: Uint8Array | null;
    try {
      bytes = await readHead(this.#journalPath(id), journalBytes);
    } catch {
      return undefined;
    }
    const { first, last } = scanCommits(bytes ?? new Uint8Array(), 0);
    if (!first || !last || !("code" in first.record)) return undefined;
    const record = checkRecord(fromCommit(first.record, last.record, last.end), id);
    return typeof record === "string" ? undefined : record;
  }

  /**
   * The journal half of a save: cuts the journal back to `committed` unless it is known to
   * have that size, then appends `lines` (flushed when `fsync` is on). A journal with
   * committed bytes is never created anew. Rejects with an `UnavailableError`, the journal
   * cut back to `committed`.
   */
  async #append(id: string, committed: number, lines: Uint8Array): Promise<void> {
    const path = this.#journalPath(id);
    if (this.#journalSizes.get(id) !== committed) {
      this.#forgetJournal(id);
      let size: number;
      try {
        size = await shrinkFile(path, committed);
      } catch (error) {
        throw unavailable(`Cannot cut back the journal of task "${id}"`, error);
      }
      if (size < committed) throw journalTooShort(id, size, committed);
      this.#journalSizes.set(id, committed);
    }
    try {
      await this.#journals.append(id, path, lines, { fsync: this.#fsync, create: committed === 0 });
    } catch (error) {
      await this.#takeBack(id, committed);
      throw unavailable(`Cannot append to the journal of task "${id}"`, error);
    }
    this.#journalSizes.set(id, committed + lines.length);
  }

  /**
   * After a failed save: cuts the journal back to `committed` (flushed when `fsync` is on),
   * so that a commit whose save was reported failed does not come back at the next start.
   * Best effort: when this fails, the next save cuts it back.
   */
  /** Stops knowing the size of the journal of `id`, and closes its handle. */
  #forgetJournal(id: string): void {
    this.#journalSizes.delete(id);
    this.#journals.close(id);
  }

  async #takeBack(id: string, committed: number): Promise<void> {
    this.#forgetJournal(id);
    try {
      const size = await shrinkFile(this.#journalPath(id), committed, { fsync: this.#fsync });
      if (size >= committed) this.#journalSizes.set(id, committed);
    } catch {
      // Left for the next save, which checks the size again.
    }
  }

  /** Puts back what the index knew of a task before a save that failed. */
  #restoreIndex(id: string, createdAt: string, before: TaskSummary | undefined): void {
    if (before) this.#index.set(before);
    else this.#index.delete(id, createdAt);
  }

  /**
   * Appends a line to the index file that need not be durable; a failure is ignored (the
   * next open() reads the records of the tasks the file lists as active).
   */
  async #note(line: string): Promise<void> {
    await this.#indexFile.append(line, false).catch(() => {});
    this.#maybeRewrite();
  }

  /** Rewrites the index file in the background when it holds too many lines. */
  #maybeRewrite(): void {
    if (this.#rewriting || !this.#indexFile.wantsRewrite(this.#index.size)) return;
    this.#rewriteIndex();
  }

  /** Rewrites the index file in the background (its snapshot and its header). */
  #rewriteIndex(): void {
    this.#rewriting = true;
    const snapshot = () => ({
      index: this.#index.clone(),
      removals: [...this.#removing].map(([id, createdMs]): Removal => ({ id, createdMs })),
    });
    this.#track(
      this.#indexFile.rewrite(snapshot).catch(() => {}).finally(() => this.#rewriting = false),
    );
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }

  /**
   * Removes the files of the removals an index file recorded (those the process died
   * during); one that fails stays recorded, and its task invisible, until the next open().
   */
  async #completeRemovals(removals: readonly Removal[]): Promise<void> {
    await mapWithLimit(removals, LOAD_CONCURRENCY, async ({ id, createdMs }) => {
      try {
        await this.#removeFiles(id);
      } catch {
        this.#removing.set(id, createdMs);
      }
    });
  }

  /**
   * Removes the record file (the task is gone from then on), then the journal, without a
   * flush: the removal's line in the index file is what makes it durable.
   */
  async #removeFiles(id: string): Promise<void> {
    this.#forgetJournal(id);
    this.#chains.delete(id);
    await removeFile(this.#recordPath(id), { fsync: false });
    await removeFile(this.#journalPath(id), { fsync: false });
  }

  async #removeLeftover(file: string): Promise<SkippedFile | undefined> {
    try {
      await Deno.remove(join(this.#dir, file));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      return { file, reason: `Cannot remove this leftover file: ${osReason(error)}` };
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

/** What the index knows of `record`. */
export function summaryOf(record: TaskRecord): TaskSummary {
  const { id, name, status, pauseCount, createdAt, updatedAt } = record;
  return {
    id,
    name,
    status,
    pauseCount,
    createdAt,
    updatedAt,
    callback: record.callbackUrl !== undefined,
  };
}

/** Whether two summaries say the same. */
function sameSummary(a: TaskSummary | undefined, b: TaskSummary): boolean {
  return a !== undefined && a.id === b.id && a.name === b.name && a.status === b.status &&
    a.pauseCount === b.pauseCount && a.createdAt === b.createdAt && a.updatedAt === b.updatedAt &&
    a.callback === b.callback;
}

/** The index file entry of `record`. */
function entryOf(record: TaskRecord) {
  return {
    id: record.id,
    status: record.status,
    createdMs: timeMs(record.createdAt),
    updatedMs: timeMs(record.updatedAt),
    pauseCount: record.pauseCount,
    name: record.name === record.id ? null : record.name,
    callback: record.callbackUrl !== undefined,
  };
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

/** `value` as the record of task `id`, or why it is not one. */
function checkRecord(value: unknown, id: string): TaskRecord | string {
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

/** The engine globals the task service defines for a task's `input`. */
function inputGlobals(input: unknown): Record<string, unknown> {
  return input === undefined ? {} : { input };
}

/**
 * The record a commit holds (`commit`, the record of a commit line), completed with what
 * the commit leaves out from `base`, a record of the same task or the journal's first
 * commit, and with `eventsBytes` set to `end`, the end of the commit line. Keys keep the
 * order of `base`.
 */
function fromCommit(
  base: object,
  commit: Record<string, unknown>,
  end: number,
): Record<string, unknown> {
  const fixed: Record<string, unknown> = "code" in commit ? commit : { ...base };
  const record: Record<string, unknown> = {};
  for (const key of Object.keys(base)) {
    if (key === "code" || key === "input") {
      if (key in fixed) record[key] = fixed[key];
    } else if (key in commit) {
      record[key] = commit[key];
    }
  }
  for (const [key, value] of Object.entries(commit)) {
    if (!(key in record) && key !== "eventsBytes") record[key] = value;
  }
  for (const key of ["code", "input"]) {
    if (key in fixed && !(key in record)) record[key] = fixed[key];
  }
  const vm = record.vm;
  if (isObject(vm) && !("code" in vm && "globals" in vm)) {
    // Keys in the order of VMState: id, code, ..., globals, ...
    const full: Record<string, unknown> = "id" in vm ? { id: vm.id } : {};
    if (!("code" in vm)) full.code = record.code;
    Object.assign(full, vm);
    if (!("globals" in vm)) full.globals = inputGlobals(record.input);
    record.vm = full;
  }
  record.eventsBytes = end;
  return record;
}

/** A commit line found in a journal: its record and the journal offset just past it. */
interface FoundCommit {
  record: Record<string, unknown>;
  end: number;
}

/**
 * The first and the last commit among the whole lines of `bytes` (the journal from offset
 * `start`, which begins a line), reading up to the first line that is not a JSON event or
 * commit: a torn write, after which nothing was committed.
 */
function scanCommits(
  bytes: Uint8Array,
  start: number,
): { first?: FoundCommit; last?: FoundCommit } {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let first: FoundCommit | undefined;
  let last: FoundCommit | undefined;
  let from = 0;
  for (let newline = bytes.indexOf(0x0a); newline !== -1; newline = bytes.indexOf(0x0a, from)) {
    const lineBytes = bytes.subarray(from, newline);
    from = newline + 1;
    let line: string;
    let value: unknown;
    try {
      line = decoder.decode(lineBytes);
      value = JSON.parse(line);
    } catch {
      break;
    }
    if (!isObject(value) || typeof value.type !== "string") break;
    if (!isCommitLine(line)) continue;
    if (!isObject(value.record)) break;
    last = { record: value.record, end: start + from };
    first ??= last;
  }
  return { first, last };
}

/**
 * The events of a journal's committed text, which must be whole lines (each ending with
 * `\n`), without its commit lines; `path` names the file in errors.
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
  const events: TaskEvent[] = [];
  for (const [index, line] of lines.entries()) {
    if (isCommitLine(line)) continue;
    const event = parseEvent(line);
    if (!event) {
      throw new Error(`Cannot read journal "${path}": line ${index + 1} is not a JSON event`);
    }
    events.push(event);
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

/**
 * The size of the file at `path`, 0 when it does not exist; rejects with a
 * `NotRegularFileError` when it is a symlink or a special file (never opened).
 */
async function fileSize(path: string): Promise<number> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
  refuseSpecial(path, info);
  return info.size;
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

/**
 * The error of a failed I/O step: 409 when a file of the task is a symlink or special file
 * (the id is taken by something this store will not touch), else 503 (retry later).
 */
function unavailable(what: string, error: unknown): HttpError {
  if (error instanceof NotRegularFileError) return new ConflictError(`${what}: ${error.message}`);
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
