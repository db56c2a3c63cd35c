/**
 * Small file helpers for durable storage, on `Deno.*` built-ins: create a directory,
 * replace a file atomically, read a file (or a range of its bytes) that may not exist,
 * append lines, cut a file back to a committed length and remove a file durably.
 *
 * Existing files are opened with {@link openRegularFile}: never through a symbolic link
 * and never when they are a FIFO, socket or device, so a symlink planted as a state file
 * is refused instead of read or overwritten through, and a FIFO instead of blocking the
 * server. New files are created with mode 0600 and directories with 0700: state holds
 * code, inputs and request headers.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";

/** Mode of the files created (owner read and write). */
export const STATE_FILE_MODE = 0o600;
/** Mode of the directories created (owner only). */
export const STATE_DIR_MODE = 0o700;

/** A symlink or a special file where a state file was expected; never opened through. */
export class NotRegularFileError extends Error {
  override name = "NotRegularFileError";
}

/** Random bytes in a temp file name (written as twice as many hex digits). */
const TEMP_RANDOM_BYTES = 8;

/** Names of the temp files of {@link writeTempFile}: `.<target name>.<16 hex digits>.tmp`. */
const TEMP_FILE_PATTERN = /^\..+\.[0-9a-f]{16}\.tmp$/;

/** Options of the writing helpers. */
export interface SyncOptions {
  /** Flush data (and, for a replaced file, the directory) to the disk. Default `true`. */
  fsync?: boolean;
}

/** Options of {@link appendLines}. */
export interface AppendOptions extends SyncOptions {
  /** Create the file when it does not exist (else reject with `NotFound`). Default `true`. */
  create?: boolean;
}

/** Creates `path` and its missing parents (mode 0700); does nothing if it already exists. */
export async function ensureDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: STATE_DIR_MODE });
}

/**
 * Opens the file at `path` unless it is a symbolic link or a special file (FIFO, socket,
 * device), which reject with a {@link NotRegularFileError}; a missing file rejects with
 * `NotFound`, unless `options.create`, which creates it (mode 0600, exclusively, so never
 * through a link). `Deno.open` cannot refuse to follow a link (no `O_NOFOLLOW`), so the
 * entry is `lstat`ed first and the opened file must be that same entry (device and inode),
 * which a link swapped in between is not. Directories are left to fail as the OS says.
 */
export async function openRegularFile(
  path: string,
  options: Deno.OpenOptions,
): Promise<Deno.FsFile> {
  return (await openChecked(path, options)).file;
}

/** {@link openRegularFile}, with what `stat` said of the opened file. */
export async function openChecked(
  path: string,
  options: Deno.OpenOptions,
): Promise<{ file: Deno.FsFile; info: Deno.FileInfo }> {
  let entry: Deno.FileInfo;
  try {
    entry = await Deno.lstat(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) || !options.create) throw error;
    try {
      const file = await Deno.open(path, { ...options, createNew: true, mode: STATE_FILE_MODE });
      return {
        file,
        info: await file.stat().catch((error) => (file.close(), Promise.reject(error))),
      };
    } catch (raced) {
      if (!(raced instanceof Deno.errors.AlreadyExists)) throw raced;
      entry = await Deno.lstat(path);
    }
  }
  refuseSpecial(path, entry);
  const file = await Deno.open(path, { ...options, create: false });
  try {
    const opened = await file.stat();
    if (opened.dev !== entry.dev || opened.ino !== entry.ino) {
      throw new NotRegularFileError(`Refusing "${basename(path)}": it was replaced while opening`);
    }
    return { file, info: opened };
  } catch (error) {
    file.close();
    throw error;
  }
}

/** Throws a {@link NotRegularFileError} when `entry` is a symlink or a special file. */
export function refuseSpecial(path: string, entry: Deno.FileInfo): void {
  if (entry.isFile || entry.isDirectory) return;
  const what = entry.isSymlink
    ? "a symbolic link"
    : entry.isFifo
    ? "a FIFO"
    : entry.isSocket
    ? "a socket"
    : "a device";
  throw new NotRegularFileError(`Refusing "${basename(path)}": it is ${what}, not a regular file`);
}

/** Whether `name` is the name of a temp file left by an interrupted {@link writeTempFile}. */
export function isTempFileName(name: string): boolean {
  return TEMP_FILE_PATTERN.test(name);
}

/**
 * Replaces `path` with `data` so that a crash of the process leaves either the old or the
 * new content: writes a unique temp file in the same directory, then renames it over
 * `path` ({@link writeTempFile}, then {@link renameIntoPlace}). With `fsync` (the default)
 * the temp file is flushed before the rename and the directory after it, so a power loss
 * too leaves the old or the new content, and the new one once this resolves. With
 * `fsync: false` nothing is flushed and the replacement costs two operations (write the
 * temp file, rename); after a power loss the file may then hold the old content, the new
 * one or, on file systems that do not order a rename after the data it replaces with,
 * neither (empty or torn). The temp file is removed if anything fails.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: SyncOptions = {},
): Promise<void> {
  await renameIntoPlace(await writeTempFile(path, data, options), path, options);
}

/**
 * The first half of {@link writeFileAtomic}: writes `data` to a new temp file beside `path`
 * (one operation with `fsync: false`; else open, write, fsync) and returns the temp file's
 * path, which a later {@link renameIntoPlace} (or `Deno.remove`) must consume. The temp file
 * is removed if the write fails.
 */
export async function writeTempFile(
  path: string,
  data: string | Uint8Array,
  { fsync = true }: SyncOptions = {},
): Promise<string> {
  const tempPath = join(dirname(path), `.${basename(path)}.${randomHex(TEMP_RANDOM_BYTES)}.tmp`);
  try {
    // createNew (O_EXCL) never follows a symlink planted at the temp file's name.
    if (fsync) {
      const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
      using file = await Deno.open(tempPath, {
        write: true,
        createNew: true,
        mode: STATE_FILE_MODE,
      });
      await writeAll(file, bytes);
      await file.sync();
    } else if (typeof data === "string") {
      await Deno.writeTextFile(tempPath, data, { createNew: true, mode: STATE_FILE_MODE });
    } else {
      await Deno.writeFile(tempPath, data, { createNew: true, mode: STATE_FILE_MODE });
    }
  } catch (error) {
    await Deno.remove(tempPath).catch(() => {});
    throw error;
  }
  return tempPath;
}

/**
 * The second half of {@link writeFileAtomic}: renames the temp file `tempPath` over `path`,
 * then flushes their directory unless `fsync` is `false`. The temp file is removed if the
 * rename fails.
 */
export async function renameIntoPlace(
  tempPath: string,
  path: string,
  { fsync = true }: SyncOptions = {},
): Promise<void> {
  try {
    await Deno.rename(tempPath, path);
  } catch (error) {
    await Deno.remove(tempPath).catch(() => {});
    throw error;
  }
  if (fsync) await syncDir(dirname(path));
}

/**
 * The file's text, or `null` if it does not exist; a symlink or a special file rejects
 * with a {@link NotRegularFileError}.
 */
export async function readTextOrNull(path: string): Promise<string | null> {
  let opened: { file: Deno.FsFile; info: Deno.FileInfo };
  try {
    opened = await openChecked(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  using file = opened.file;
  // One buffer of the file's size (and a byte more, to see the end), grown should the file
  // grow meanwhile: a record is read with one allocation, not one of 64 KiB.
  let buffer = new Uint8Array(opened.info.size + 1);
  let filled = 0;
  for (;;) {
    if (filled === buffer.length) {
      const larger = new Uint8Array(buffer.length * 2);
      larger.set(buffer);
      buffer = larger;
    }
    const read = await file.read(buffer.subarray(filled));
    if (read === null) break;
    filled += read;
  }
  return new TextDecoder().decode(buffer.subarray(0, filled));
}

/**
 * Appends `data` (whole lines, each ending with `\n`) to `path` in one write, creating the
 * file if needed unless `create` is `false`, and flushes its data unless `fsync` is `false`.
 * Returns the number of bytes appended.
 *
 * The flush is an fdatasync: the data and the new size, not timestamps, and not the
 * directory entry of a file this call created: a caller that needs the new file to survive
 * a power loss flushes its directory afterwards (see {@link writeFileAtomic}).
 */
export async function appendLines(
  path: string,
  data: string | Uint8Array,
  { fsync = true, create = true }: AppendOptions = {},
): Promise<number> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  using file = await openRegularFile(path, { append: true, create });
  await writeAll(file, bytes);
  if (fsync) await file.syncData();
  return bytes.length;
}

/**
 * The first `length` bytes of `path`, reading no further; fewer when the file is shorter,
 * `null` when it does not exist.
 */
export function readHead(path: string, length: number): Promise<Uint8Array | null> {
  return readRange(path, 0, length);
}

/**
 * `length` bytes of `path` from byte `offset`, reading no further; fewer when the file ends
 * first (none when it ends before `offset`), `null` when it does not exist.
 */
export async function readRange(
  path: string,
  offset: number,
  length: number,
): Promise<Uint8Array | null> {
  let file: Deno.FsFile;
  try {
    file = await openRegularFile(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  using _ = file;
  if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
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
 * tell a file shorter than `length`. The new size is flushed to the disk only with
 * `fsync: true` (default `false`: a flushed append usually follows, which flushes it).
 */
export async function shrinkFile(
  path: string,
  length: number,
  { fsync = false }: SyncOptions = {},
): Promise<number> {
  let file: Deno.FsFile;
  try {
    file = await openRegularFile(path, { read: true, write: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
  using _ = file;
  const { size } = await file.stat();
  if (size > length) {
    await file.truncate(length);
    if (fsync) await file.syncData();
  }
  return size;
}

/**
 * Removes the file at `path` and, unless `fsync` is `false`, flushes its directory, so the
 * removal survives a power loss once this resolves. Resolves `false` when there was no file.
 */
export async function removeFile(
  path: string,
  { fsync = true }: SyncOptions = {},
): Promise<boolean> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  if (fsync) await syncDir(dirname(path));
  return true;
}

/** Flushes a directory's entries (a no-op on Windows, which cannot open directories). */
async function syncDir(path: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  using dir = await Deno.open(path, { read: true });
  await dir.sync();
}

/** Writes all of `bytes` to `file`, in as many writes as it takes. */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

function randomHex(byteCount: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(byteCount));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
