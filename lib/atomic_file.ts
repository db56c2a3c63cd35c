/**
 * Small file helpers for durable storage, on `Deno.*` built-ins: create a directory,
 * replace a file atomically, read a file (or its first bytes) that may not exist, append
 * lines and cut a file back to a committed length.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

/** Random bytes in a temp file name (written as twice as many hex digits). */
const TEMP_RANDOM_BYTES = 8;

/** Names of the temp files of {@link writeFileAtomic}: `.<target name>.<16 hex digits>.tmp`. */
const TEMP_FILE_PATTERN = /^\..+\.[0-9a-f]{16}\.tmp$/;

/** Options of the writing helpers. */
export interface SyncOptions {
  /** Flush data (and, for a replaced file, the directory) to the disk. Default `true`. */
  fsync?: boolean;
}

/** Creates `path` and its missing parents; does nothing if it already exists. */
export async function ensureDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true });
}

/** Whether `name` is the name of a temp file left by an interrupted {@link writeFileAtomic}. */
export function isTempFileName(name: string): boolean {
  return TEMP_FILE_PATTERN.test(name);
}

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content:
 * writes a unique temp file in the same directory, flushes it, renames it over `path`,
 * then flushes the directory. With `fsync: false` nothing is flushed (tests, benchmarks).
 * The temp file is removed if anything fails.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  { fsync = true }: SyncOptions = {},
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const tempPath = join(dirname(path), `.${basename(path)}.${randomHex(TEMP_RANDOM_BYTES)}.tmp`);
  try {
    {
      using file = await Deno.open(tempPath, { write: true, createNew: true });
      await writeAll(file, bytes);
      if (fsync) await file.sync();
    }
    await Deno.rename(tempPath, path);
    if (fsync) await syncDir(dirname(path));
  } catch (error) {
    await Deno.remove(tempPath).catch(() => {});
    throw error;
  }
}

/** The file's text, or `null` if it does not exist. */
export async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * Appends `text` (whole lines, each ending with `\n`) to `path`, creating the file if
 * needed, and flushes its data unless `fsync` is `false`. Returns the number of bytes appended.
 */
export async function appendLines(
  path: string,
  text: string,
  { fsync = true }: SyncOptions = {},
): Promise<number> {
  const bytes = new TextEncoder().encode(text);
  using file = await Deno.open(path, { append: true, create: true });
  await writeAll(file, bytes);
  // fdatasync: the data and the new size, not timestamps; a new file's directory entry is
  // made durable by the record write that always follows (it fsyncs the directory).
  if (fsync) await file.syncData();
  return bytes.length;
}

/**
 * The first `length` bytes of `path`, reading no further; fewer when the file is shorter,
 * `null` when it does not exist.
 */
export async function readHead(path: string, length: number): Promise<Uint8Array | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  using _ = file;
  const bytes = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const read = await file.read(bytes.subarray(filled));
    if (read === null) break;
    filled += read;
  }
  return bytes.subarray(0, filled);
}

/**
 * Truncates `path` to `length` bytes when it is longer; never lengthens it and never
 * creates it. Returns the file's size before (0 when it does not exist), so a caller can
 * tell a file shorter than `length`. The new size is not flushed to the disk.
 */
export async function shrinkFile(path: string, length: number): Promise<number> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
  using _ = file;
  const { size } = await file.stat();
  if (size > length) await file.truncate(length);
  return size;
}

/** Flushes a directory's entries (a no-op on Windows, which cannot open directories). */
async function syncDir(path: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  using dir = await Deno.open(path, { read: true });
  await dir.sync();
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

function randomHex(byteCount: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(byteCount));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
