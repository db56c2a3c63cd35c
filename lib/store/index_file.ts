/**
 * The file store's index on disk, `_index.tsv`: a header line, naming the binary snapshot
 * of the index it starts from when there is one ({@link encodeSnapshot}), then one line
 * per change since, tab-separated, replayed in order at the start:
 *
 * - `<id> <status> <createdMs> <updatedMs> <pauseCount> <name> <flags>`: what the index
 *   knows of the task (`name` empty when it is the id, else a JSON string; `flags` `c` when
 *   it has a callback URL, `?` when that is not known, else empty);
 * - `<id> removed <createdMs>`: the task is being removed (its files are removed again at
 *   the next start, so an interrupted removal completes).
 *
 * Lines are appended in batches (one write, one flush for the batch when a line of it
 * must be durable). When the file holds more lines than an eighth of the tasks (and 10,000),
 * it is rewritten: a new snapshot of the whole index (`_index.a.bin` and `_index.b.bin` in
 * turn, flushed), then the file, atomically (temp file, rename), as a header naming it and
 * the removals under way; so a start reads the snapshot and a few lines. A torn last line
 * is ignored and cut off. Index files of version 1 (no snapshot, no flags) are read and
 * rewritten.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { renameIntoPlace, STATE_FILE_MODE } from "./atomic_file.ts";
import { type IndexEntry, STATUS_LIST, TaskIndex } from "./task_index.ts";
import { decodeSnapshot, encodeSnapshot } from "./index_snapshot.ts";

/** Name of the index file in the states directory (never a task's file name). */
export const INDEX_FILE_NAME = "_index.tsv";
/** Whether `name` is one of the index's files in a states directory: the file or a snapshot. */
export function isIndexFileName(name: string): boolean {
  return name === INDEX_FILE_NAME || (SNAPSHOT_NAMES as readonly string[]).includes(name);
}

/** First line of an index file without a snapshot; an unknown first line means the file must be rebuilt. */
export const INDEX_HEADER = "flowstate-index\t2\n";
const HEADER = INDEX_HEADER;
/** First line of an index file of version 1. */
const V1_HEADER = "flowstate-index\t1\n";
/** How the first line of an index file naming its snapshot starts (the name follows). */
const SNAPSHOT_HEADER = "flowstate-index\t2\t";
/** The two names snapshots take in turn. */
const SNAPSHOT_NAMES = ["_index.a.bin", "_index.b.bin"] as const;
const REMOVED = "removed";
const TAB = 0x09;
const NEWLINE = 0x0a;
/** Lines beyond an eighth of the task count and this many make the file be rewritten. */
const REWRITE_SLACK = 10_000;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const STATUS_WORDS = STATUS_LIST.map((status) => encoder.encode(status));
const REMOVED_WORD = encoder.encode(REMOVED);

/** The line of what the index knows of a task. */
export function entryLine(entry: IndexEntry): string {
  const name = entry.name === null ? "" : JSON.stringify(entry.name);
  const flags = entry.callback === null ? "?" : entry.callback ? "c" : "";
  return `${entry.id}\t${entry.status}\t${entry.createdMs}\t${entry.updatedMs}\t` +
    `${entry.pauseCount}\t${name}\t${flags}\n`;
}

/**
 * What the first line of index file `bytes` says: its version, the snapshot it names, and
 * where its lines start; or why it is not an index file of a version this store reads.
 */
export function readHeader(
  bytes: Uint8Array,
): { version: 1 | 2; snapshot: string | null; start: number } | string {
  const newline = bytes.indexOf(NEWLINE);
  if (newline === -1) return "Not an index file of this version";
  const first = decoder.decode(bytes.subarray(0, newline + 1));
  if (first === V1_HEADER) return { version: 1, snapshot: null, start: newline + 1 };
  if (first === HEADER) return { version: 2, snapshot: null, start: newline + 1 };
  const name = first.startsWith(SNAPSHOT_HEADER)
    ? first.slice(SNAPSHOT_HEADER.length, -1)
    : undefined;
  if (name !== undefined && (SNAPSHOT_NAMES as readonly string[]).includes(name)) {
    return { version: 2, snapshot: name, start: newline + 1 };
  }
  return "Not an index file of this version";
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
  /** The file's version: 1 is rewritten before anything is appended. */
  version: 1 | 2;
  /** The snapshot the file names, if any. */
  snapshot: string | null;
  /** Removals recorded since the last rewrite, of ids no later line has. */
  removals: Removal[];
  /** Whole lines after the header. */
  lines: number;
  /** Bytes of the header and the whole lines (where a torn tail starts). */
  size: number;
}

/**
 * The index that `bytes` (an index file) holds, starting from `snapshot` (the bytes of the
 * snapshot its header names), or why they cannot be one: another header, a snapshot
 * missing or unreadable, or a whole line that does not parse.
 */
export function parseIndex(
  bytes: Uint8Array,
  snapshot: Uint8Array | null = null,
): LoadedIndex | string {
  const header = readHeader(bytes);
  if (typeof header === "string") return header;
  let index: TaskIndex;
  if (header.snapshot === null) {
    index = new TaskIndex();
  } else {
    if (snapshot === null) return `Its snapshot "${header.snapshot}" is missing`;
    const decoded = decodeSnapshot(snapshot);
    if (typeof decoded === "string") return `${decoded} ("${header.snapshot}")`;
    index = decoded;
  }
  const fields = header.version === 1 ? 6 : 7;
  // Removals of ids no later line brings back (a later line is of a task created anew,
  // after the removal had completed).
  const removed = new Map<string, number>();
  // Field starts, then the end of the line plus one (as the start of a next field).
  const at = new Int32Array(8);
  // Names repeat from line to line: the last one's bytes and code.
  let lastName: Uint8Array | undefined;
  let lastCode = -1;
  let lines = 0;
  let from = header.start;
  for (let end = bytes.indexOf(NEWLINE, from); end !== -1; end = bytes.indexOf(NEWLINE, from)) {
    let count = 0;
    at[count++] = from;
    for (let k = from; k < end && count < fields; k++) if (bytes[k] === TAB) at[count++] = k + 1;
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
      if (status === -1 || count !== fields) return bad();
      const updatedMs = parseCount(bytes, at[3]!, at[4]! - 1);
      const pauseCount = parseCount(bytes, at[4]!, at[5]! - 1);
      if (updatedMs === -1 || pauseCount === -1) return bad();
      const nameStart = at[5]!;
      const nameEnd = fields === 6 ? end : at[6]! - 1;
      let callback: boolean | null = null;
      if (fields === 7) {
        const flags = end - at[6]!;
        const flag = bytes[at[6]!];
        if (flags === 0) callback = false;
        else if (flags === 1 && flag === 0x63) callback = true; // "c"
        else if (flags !== 1 || flag !== 0x3f) return bad(); // "?"
      }
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
      index.setEntry(id, createdMs, updatedMs, status, pauseCount, name, callback);
      if (removed.size > 0) removed.delete(decoder.decode(id));
    }
    lines++;
    from = end + 1;
  }
  const removals = [...removed].map(([id, createdMs]) => ({ id, createdMs }));
  return { index, version: header.version, snapshot: header.snapshot, removals, lines, size: from };
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
  /** The snapshot the file names, if any. */
  #snapshot: string | null = null;

  /** The index file at `path`; {@link adopt} or {@link rewrite} before appending. */
  constructor(path: string, options: IndexFileOptions = {}) {
    this.#path = path;
    this.#fsync = options.fsync ?? true;
  }

  /**
   * The file's bytes and those of the snapshot its header names (`null` when that is
   * missing), or `null` when there is no file.
   */
  async read(): Promise<{ bytes: Uint8Array; snapshot: Uint8Array | null } | null> {
    const bytes = await readOrNull(this.#path);
    if (bytes === null) return null;
    const header = readHeader(bytes);
    const name = typeof header === "string" ? null : header.snapshot;
    const snapshot = name === null ? null : await readOrNull(join(dirname(this.#path), name));
    return { bytes, snapshot };
  }

  /**
   * Appends after what `loaded` read, cutting off a torn tail after it; removes the
   * snapshot it does not name (left by a rewrite that did not complete).
   */
  async adopt(loaded: Pick<LoadedIndex, "lines" | "size" | "snapshot">): Promise<void> {
    this.#snapshot = loaded.snapshot;
    for (const name of SNAPSHOT_NAMES) {
      if (name !== loaded.snapshot) await removeIfThere(join(dirname(this.#path), name));
    }
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
    return this.#lines > tasks / 8 + REWRITE_SLACK;
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
   * Replaces the file with what `snapshot` answers when the rewrite runs (after the writes
   * asked for before it): writes the index as a snapshot under the name the file does not
   * use (flushed), then the file, atomically, as a header naming it and the removals; later
   * appends go to the new file. The previous snapshot is removed.
   */
  rewrite(snapshot: () => { index: TaskIndex; removals: readonly Removal[] }): Promise<void> {
    return this.#enqueue(async () => {
      const { index, removals } = snapshot();
      const dir = dirname(this.#path);
      const name = this.#snapshot === SNAPSHOT_NAMES[0] ? SNAPSHOT_NAMES[1] : SNAPSHOT_NAMES[0];
      {
        using file = await Deno.open(join(dir, name), {
          write: true,
          create: true,
          truncate: true,
          mode: STATE_FILE_MODE,
        });
        await writeAll(file, encodeSnapshot(index));
        if (this.#fsync) await file.sync();
      }
      const random = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
      const temp = join(dir, `.${basename(this.#path)}.${random}.tmp`);
      let text = `${SNAPSHOT_HEADER}${name}\n`;
      for (const removal of removals) text += removalLine(removal.id, removal.createdMs);
      const bytes = encoder.encode(text);
      try {
        using file = await Deno.open(temp, { write: true, createNew: true, mode: STATE_FILE_MODE });
        await writeAll(file, bytes);
        if (this.#fsync) await file.sync();
      } catch (error) {
        await Deno.remove(temp).catch(() => {});
        throw error;
      }
      await renameIntoPlace(temp, this.#path, { fsync: this.#fsync });
      const previous = this.#snapshot;
      this.#snapshot = name;
      this.#size = bytes.length;
      this.#lines = removals.length;
      if (previous !== null) await removeIfThere(join(dir, previous));
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

async function readOrNull(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

async function removeIfThere(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
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
