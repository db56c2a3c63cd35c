/**
 * Journals kept open between saves: an active task's journal is appended to at every
 * pause, and opening it each time (a link check, the open, a check of what was opened, the
 * close) costs four file operations beside the write and the flush. A kept handle is the
 * file `openRegularFile` checked when it was opened, in append mode; before each append the
 * path is `lstat`ed again, one operation instead of four, and a path that is no longer that
 * file (replaced, removed, a link put in its place) is opened anew, with the checks that
 * refuse links and special files. The least recently used handles beyond `max` are closed,
 * never one an append is using; the store closes a task's handle whenever it stops knowing
 * its journal (a cut, a removal, the task's end).
 *
 * @module
 */
import { openChecked } from "./atomic_file.ts";

interface Handle {
  file: Deno.FsFile;
  /** Device and inode of the file, as opened. */
  dev: number;
  ino: number | null;
  users: number;
  /** Set when closed while in use: the last user closes it. */
  closed: boolean;
}

/** Open append handles of task journals, by task id. */
export class OpenJournals {
  readonly #handles = new Map<string, Handle>();

  constructor(readonly max = 64) {}

  /**
   * Appends `bytes` to the journal of `id` at `path` in one write, flushed (fdatasync) with
   * `fsync`; the journal is created when `create` and missing. A failed append closes the
   * handle, so the next one opens the file again.
   */
  async append(
    id: string,
    path: string,
    bytes: Uint8Array,
    { fsync, create }: { fsync: boolean; create: boolean },
  ): Promise<void> {
    let handle = this.#handles.get(id);
    if (handle) {
      handle.users++; // Not closed by an eviction while its path is checked.
      if (!isStill(path, handle) || handle.closed) {
        unuse(handle);
        if (this.#handles.get(id) === handle) this.close(id);
        handle = undefined;
      } else {
        this.#handles.delete(id); // Re-inserted last: the map is in order of use.
      }
    }
    if (!handle) {
      const { file, info } = await openChecked(path, { append: true, create });
      // An append of the same task that opened it meanwhile: keep one handle of the two.
      const raced = this.#handles.get(id);
      if (raced) file.close();
      handle = raced ?? { file, dev: info.dev, ino: info.ino, users: 0, closed: false };
      handle.users++;
      this.#handles.delete(id);
    }
    this.#handles.set(id, handle);
    this.#evict();
    try {
      // A write to the page cache costs about a microsecond synchronously, 30 through a
      // thread hand-off; the flush, which waits for the disk, stays asynchronous.
      writeAllSync(handle.file, bytes);
      if (fsync) await handle.file.syncData();
    } catch (error) {
      if (this.#handles.get(id) === handle) this.close(id);
      throw error;
    } finally {
      unuse(handle);
    }
  }

  /** Closes the handle of `id`, if open (once its appends under way are done). */
  close(id: string): void {
    const handle = this.#handles.get(id);
    if (!handle) return;
    this.#handles.delete(id);
    release(handle);
  }

  /** Closes every handle. */
  closeAll(): void {
    for (const handle of this.#handles.values()) release(handle);
    this.#handles.clear();
  }

  #evict(): void {
    for (const [id, handle] of this.#handles) {
      if (this.#handles.size <= this.max) return;
      if (handle.users > 0) continue;
      this.#handles.delete(id);
      release(handle);
    }
  }
}

/** Whether `path` is still the regular file `handle` opened (not a link put in its place). */
function isStill(path: string, handle: Handle): boolean {
  try {
    // Synchronous: a metadata read costs about a microsecond here, a thread hand-off 30.
    const entry = Deno.lstatSync(path);
    return entry.isFile && entry.dev === handle.dev && entry.ino === handle.ino;
  } catch {
    return false;
  }
}

function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
}

/** Ends one use of `handle`: the last use of a closed handle closes its file. */
function unuse(handle: Handle): void {
  handle.users--;
  if (handle.closed && handle.users === 0) handle.file.close();
}

function release(handle: Handle): void {
  if (handle.closed) return;
  handle.closed = true;
  if (handle.users === 0) handle.file.close();
}
