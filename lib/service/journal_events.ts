/**
 * A task's journal as its events file holds it: the engine's journal entries in order,
 * with every `rewind` of `POST /retry` applied (the entries it cut stay in the file, for
 * the history and the logs, but are no longer replayed).
 *
 * @module
 */
import type { JournalEntry } from "../engine/mod.ts";
import type { TaskEvent } from "../store/mod.ts";

/** The journal entries of `events`, rewinds applied, log lines left out. */
export function journalOf(events: readonly TaskEvent[]): JournalEntry[] {
  const journal: JournalEntry[] = [];
  for (const event of events) {
    if (event.type === "log") continue;
    if (event.type === "rewind") {
      journal.length = Math.min(journal.length, event.journalLength);
      continue;
    }
    journal.push(event);
  }
  return journal;
}
