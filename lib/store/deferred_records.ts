/**
 * Deferred writes of the record files of a {@link FileTaskStore}. A record file is a
 * readable cache of its journal's last commit line (reads catch up from the journal when it
 * lags), so a save need not rewrite it at once: the write is deferred for
 * {@link DEFER_MS} and made once, with the latest text, however many saves of the task come
 * in between. A task that pauses many times a second then costs one record write a second
 * instead of one per pause, and a record file is never more than about that much behind.
 *
 * Writes of one task are serialized: {@link DeferredRecords.settle} cancels the task's
 * deferred write and waits for one under way, so a write the store makes itself afterwards
 * is never overtaken by an older text. {@link DeferredRecords.flush} makes every deferred
 * write at once (a closed store leaves its record files current).
 *
 * @module
 */
import { renameIntoPlace, writeTempFile } from "./atomic_file.ts";

/** How long a record write may be deferred, ms. */
export const DEFER_MS = 1_000;

interface Deferred {
  path: string;
  text: string;
  timer: ReturnType<typeof setTimeout>;
}

/** The record writes deferred, by task id, and those under way. */
export class DeferredRecords {
  readonly #deferred = new Map<string, Deferred>();
  readonly #writing = new Map<string, Promise<void>>();

  /** Number of tasks whose record write is deferred. */
  get size(): number {
    return this.#deferred.size;
  }

  /**
   * Defers writing `text` to the record file `path` of task `id` (replacing the text of a
   * write already deferred, which keeps its time).
   */
  defer(id: string, path: string, text: string): void {
    const deferred = this.#deferred.get(id);
    if (deferred) {
      deferred.text = text;
      return;
    }
    const timer = setTimeout(() => this.#write(id), DEFER_MS);
    Deno.unrefTimer(timer);
    this.#deferred.set(id, { path, text, timer });
  }

  /** Cancels the deferred write of task `id`, and waits for one under way. */
  async settle(id: string): Promise<void> {
    const deferred = this.#deferred.get(id);
    if (deferred) {
      clearTimeout(deferred.timer);
      this.#deferred.delete(id);
    }
    await this.#writing.get(id);
  }

  /** Makes every deferred write now and waits for all writes under way. */
  async flush(): Promise<void> {
    for (const id of [...this.#deferred.keys()]) this.#write(id);
    await Promise.all([...this.#writing.values()]);
  }

  #write(id: string): void {
    const deferred = this.#deferred.get(id);
    if (!deferred) return;
    clearTimeout(deferred.timer);
    this.#deferred.delete(id);
    const before = this.#writing.get(id) ?? Promise.resolve();
    const write = before.then(async () => {
      const { path, text } = deferred;
      // Not flushed, as a routine save's record file is not: reads catch up from the
      // journal. A failed write leaves the file behind by as much, and no temp file.
      await renameIntoPlace(await writeTempFile(path, text, { fsync: false }), path, {
        fsync: false,
      });
    }).catch(() => {}).finally(() => {
      if (this.#writing.get(id) === write) this.#writing.delete(id);
    });
    this.#writing.set(id, write);
  }
}
