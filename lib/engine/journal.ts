/**
 * The journal of a run: every `eval`, request and response in the order they happened, with
 * its size kept so the entry and byte limits are checked without re-serializing it.
 *
 * @module
 */
import { limitError } from "./limits.ts";
import type { JournalEntry } from "./types.ts";

/** A growing journal under an entry-count and a byte limit. */
export class Journal {
  #entries: JournalEntry[] = [];
  #bytes = 0;
  readonly #maxEntries: number;
  readonly #maxBytes: number;

  constructor(maxEntries: number, maxBytes: number) {
    this.#maxEntries = maxEntries;
    this.#maxBytes = maxBytes;
  }

  /** Number of entries. */
  get length(): number {
    return this.#entries.length;
  }

  /** The latest entry. */
  last(): JournalEntry | undefined {
    return this.#entries.at(-1);
  }

  /** A copy of the entries. */
  entries(): JournalEntry[] {
    return [...this.#entries];
  }

  /** Empties the journal. */
  clear(): void {
    this.#entries = [];
    this.#bytes = 0;
  }

  /** Appends `entry` (no limit check; `bytes` when {@link Journal.checkRoom} computed it). */
  append(entry: JournalEntry, bytes = entryBytes(entry)): void {
    this.#entries.push(entry);
    this.#bytes += bytes;
  }

  /** Throws a `limit` error if `entry` does not fit in the journal; returns its size. */
  checkRoom(entry: JournalEntry): number {
    if (this.#entries.length + 1 > this.#maxEntries) {
      throw limitError(`The journal is full: the limit is ${this.#maxEntries} entries`);
    }
    const bytes = entryBytes(entry);
    if (this.#bytes + bytes > this.#maxBytes) {
      throw limitError(
        `The journal would grow to ${
          this.#bytes + bytes
        } bytes, more than the limit of ${this.#maxBytes}`,
      );
    }
    return bytes;
  }
}

/** Size of an entry as the journal counts it: characters of its JSON. */
export function entryBytes(entry: JournalEntry): number {
  return JSON.stringify(entry).length;
}

/** Whether two journal entries are the same event (same object, or equal JSON). */
export function sameEntry(a: JournalEntry | undefined, b: JournalEntry | undefined): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
