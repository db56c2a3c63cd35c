/**
 * The file store's index on disk, `_index.tsv`: a header line, then one line per change,
 * tab-separated, replayed in order at the start:
 *
 * - `<id> <status> <createdMs> <updatedMs> <pauseCount> <name>`: what the index knows of
 *   the task (`name` empty when it is the id, else a JSON string);
 * - `<id> removed <createdMs>`: the task is being removed (its files are removed again at
 *   the next start, so an interrupted removal completes).
 *
 * Lines are appended in batches (one write, one flush for the batch when a line of it
 * must be durable); the file is rewritten (temp file, rename) from the index when it holds
 * twice as many lines as tasks. A torn last line is ignored and cut off.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { renameIntoPlace } from "./atomic_file.ts";
import { type IndexEntry, STATUS_LIST, TaskIndex } from "./task_index.ts";

/** Name of the index file in the states directory (never a task's file name). */
export const INDEX_FILE_NAME = "_index.tsv";
/** First line of the index file; another first line means the file must be rebuilt. */
export const INDEX_HEADER = "flowstate-index\t1\n";
const HEADER = INDEX_HEADER;
const REMOVED = "removed";
const TAB = 0x09;
const NEWLINE = 0x0a;
/** Lines beyond twice the task count (and this many) make the file be rewritten. */
const REWRITE_SLACK = 10_000;
/** Lines formatted between two writes of a rewrite. */
const REWRITE_CHUNK = 20_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const STATUS_WORDS = STATUS_LIST.map((status) => encoder.encode(status));
const REMOVED_WORD = encoder.encode(REMOVED);

/** The line of what the index knows of a task. */
export function entryLine(entry: IndexEntry): string {
  const name = entry.name === null ? "" : JSON.stringify(entry.name);
  return `${entry.id}\t${entry.status}\t${entry.createdMs}\t${entry.updatedMs}\t` +
    `${entry.pauseCount}\t${name}\n`;
}

/** The line of a task being removed. */
export function removalLine(id: string, createdMs: number): string {
  return `${id}\t${REMOVED}\t${createdMs}\n`;
}

/** A task removal the index file records. */
export interface Removal {
  id: string;
  createdMs: number;
}

/** An index file read back. */
export interface LoadedIndex {
  index: TaskIndex;
  /** Removals recorded since the last rewrite, of ids no later line has. */
  removals: Removal[];
  /** Whole lines after the header. */
  lines: number;
  /** Bytes of the header and the whole lines (where a torn tail starts). */
  size: number;
}

/**
 * The index that `bytes` (an index file) holds, or why they cannot be one: another header,
 * or a whole line that does not parse.
 */
export function parseIndex(bytes: Uint8Array): LoadedIndex | string {
  const header = encoder.encode(HEADER);
  if (bytes.length < header.length || header.some((byte, i) => bytes[i] !== byte)) {
    return "Not an index file of this version";
  }
  const index = new TaskIndex();
  // Removals of ids no later line brings back (a later line is of a task created anew,
  // after the removal had completed).
  const removed = new Map<string, number>();
  // Field starts, then the end of the line plus one (as the start of a next field).
  const at = new Int32Array(7);
  // Names repeat from line to line: the last one's bytes and code.
  let lastName: Uint8Array | undefined;
  let lastCode = -1;
  let lines = 0;
  let from = header.length;
  for (let end = bytes.indexOf(NEWLINE, from); end !== -1; end = bytes.indexOf(NEWLINE, from)) {
    let count = 0;
    at[count++] = from;
    for (let k = from; k < end && count < 6; k++) if (bytes[k] === TAB) at[count++] = k + 1;
    at[count] = end + 1;
    const bad = () => `Line ${lines + 2} is not an index line`;
    if (count < 3) return bad();
    const idLength = at[1]! - 1 - from;
    const createdMs = parseCount(bytes, at[2]!, at[3]! - 1);
    if (idLength <= 0 || idLength > 128 || createdMs === -1) return bad();
    const id = bytes.subarray(from, from + idLength);
    const wordStart = at[1]!;
    const wordEnd = at[2]! - 1;
    if (sameBytes(bytes, wordStart, wordEnd, REMOVED_WORD)) {
      if (count !== 3) return bad();
      if (index.deleteEntry(id, createdMs)) removed.set(decoder.decode(id), createdMs);
    } else {
      let status = -1;
      for (let code = 0; code < STATUS_WORDS.length && status === -1; code++) {
        if (sameBytes(bytes, wordStart, wordEnd, STATUS_WORDS[code]!)) status = code;
      }
      if (status === -1 || count !== 6) return bad();
      const updatedMs = parseCount(bytes, at[3]!, at[4]! - 1);
      const pauseCount = parseCount(bytes, at[4]!, at[5]! - 1);
      if (updatedMs === -1 || pauseCount === -1) return bad();
      const nameStart = at[5]!;
      const nameEnd = end;
      let name = -1;
      if (nameEnd > nameStart) {
        if (lastName && sameBytes(bytes, nameStart, nameEnd, lastName)) {
          name = lastCode;
        } else {
          let value: unknown;
          try {
            value = JSON.parse(decoder.decode(bytes.subarray(nameStart, nameEnd)));
          } catch {
            return `Line ${lines + 2} has an invalid name`;
          }
          if (typeof value !== "string") return `Line ${lines + 2} has an invalid name`;
          name = index.nameCode(value);
          lastName = bytes.slice(nameStart, nameEnd);
          lastCode = name;
        }
      }
      index.setEntry(id, createdMs, updatedMs, status, pauseCount, name);
      if (removed.size > 0) removed.delete(decoder.decode(id));
    }
    lines++;
    from = end + 1;
  }
  const removals = [...removed].map(([id, createdMs]) => ({ id, createdMs }));
  return { index, removals, lines, size: from };
}

/** Options of {@link IndexFile}. */
export interface IndexFileOptions {
  /** Flush the lines that must be durable. Default `true`. */
  fsync?: boolean;
}

interface Waiter {
  text: string;
  durable: boolean;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Appends to and rewrites an index file. Appends are batched: lines handed over while a
 * write is under way go out together in the next write, flushed once when one of them
 * must be durable. One writer at a time, in the order the calls were made.
 */
export class IndexFile {
  readonly #path: string;
  readonly #fsync: boolean;
  #size = 0;
  #lines = 0;
  #waiting: Waiter[] = [];
  #writing = false;
  #queue: Promise<void> = Promise.resolve();

  /** The index file at `path`; {@link adopt} or {@link rewrite} before appending. */
  constructor(path: string, options: IndexFileOptions = {}) {
    this.#path = path;
    this.#fsync = options.fsync ?? true;
  }

  /** The file's bytes, or `null` when it does not exist. */
  async read(): Promise<Uint8Array | null> {
    try {
      return await Deno.readFile(this.#path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return null;
      throw error;
    }
  }

  /** Appends after what `loaded` read, cutting off a torn tail after it. */
  async adopt(loaded: Pick<LoadedIndex, "lines" | "size">): Promise<void> {
    const file = await Deno.open(this.#path, { read: true, write: true });
    try {
      const { size } = await file.stat();
      if (size > loaded.size) await file.truncate(loaded.size);
    } finally {
      file.close();
    }
    this.#size = loaded.size;
    this.#lines = loaded.lines;
  }

  /** Whether the file holds so many more lines than `tasks` that it should be rewritten. */
  wantsRewrite(tasks: number): boolean {
    return this.#lines > 2 * tasks + REWRITE_SLACK;
  }

  /**
   * Appends `text` (whole lines) in the next batch; resolves once written, and flushed
   * when `durable` and `fsync` are on. On failure the file is cut back to its size before
   * the batch, and every line of the batch is rejected.
   */
  append(text: string, durable: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ text, durable, resolve, reject });
      if (!this.#writing) {
        this.#writing = true;
        this.#enqueue(() => this.#writeBatch());
      }
    });
  }

  /**
   * Replaces the file, atomically, with the lines of what `snapshot` answers when the
   * rewrite runs (after the writes asked for before it); later appends go to the new file.
   */
  rewrite(snapshot: () => { index: TaskIndex; removals: readonly Removal[] }): Promise<void> {
    return this.#enqueue(async () => {
      const { index, removals } = snapshot();
      const random = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
      const temp = join(dirname(this.#path), `.${basename(this.#path)}.${random}.tmp`);
      let lines = 0;
      let size = 0;
      try {
        using file = await Deno.open(temp, { write: true, createNew: true });
        let chunk = HEADER;
        const flush = async () => {
          const bytes = encoder.encode(chunk);
          await writeAll(file, bytes);
          size += bytes.length;
          chunk = "";
        };
        for (const entry of index.entries()) {
          chunk += entryLine(entry);
          if (++lines % REWRITE_CHUNK === 0) await flush();
        }
        for (const removal of removals) {
          chunk += removalLine(removal.id, removal.createdMs);
          lines++;
        }
        await flush();
        if (this.#fsync) await file.sync();
      } catch (error) {
        await Deno.remove(temp).catch(() => {});
        throw error;
      }
      await renameIntoPlace(temp, this.#path, { fsync: this.#fsync });
      this.#size = size;
      this.#lines = lines;
    });
  }

  /** Waits for the writes under way. */
  async close(): Promise<void> {
    await this.#queue;
  }

  #enqueue(step: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(step);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #writeBatch(): Promise<void> {
    this.#writing = false;
    const batch = this.#waiting;
    this.#waiting = [];
    let bytes = encoder.encode(batch.map((waiter) => waiter.text).join(""));
    let file: Deno.FsFile | undefined;
    try {
      file = await Deno.open(this.#path, { append: true, create: true });
      if (this.#size === 0) {
        // A file neither adopted nor rewritten: a new one, which starts with the header.
        this.#size = (await file.stat()).size;
        if (this.#size === 0) bytes = encoder.encode(HEADER + decoder.decode(bytes));
      }
      await writeAll(file, bytes);
      if (this.#fsync && batch.some((waiter) => waiter.durable)) await file.syncData();
    } catch (error) {
      await file?.truncate(this.#size).catch(() => {});
      for (const waiter of batch) waiter.reject(error);
      return;
    } finally {
      file?.close();
    }
    this.#size += bytes.length;
    for (const waiter of batch) this.#lines += countLines(waiter.text);
    for (const waiter of batch) waiter.resolve();
  }
}

function countLines(text: string): number {
  let lines = 0;
  for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) lines++;
  return lines;
}

/** The whole number `bytes[start, end)` spell in decimal digits, or -1. */
function parseCount(bytes: Uint8Array, start: number, end: number): number {
  if (end <= start || end - start > 16) return -1;
  let value = 0;
  for (let k = start; k < end; k++) {
    const byte = bytes[k]!;
    if (byte < 0x30 || byte > 0x39) return -1;
    value = value * 10 + byte - 0x30;
  }
  return value;
}

/** Whether `bytes[start, end)` are the bytes of `word`. */
function sameBytes(bytes: Uint8Array, start: number, end: number, word: Uint8Array): boolean {
  if (end - start !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (bytes[start + k] !== word[k]) return false;
  return true;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}
