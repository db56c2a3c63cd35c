/**
 * What a task's journal holds besides fetches and logs, as `GET /status?id=` shows it: the
 * timers that fired and those still armed, the signals it received, the retries that
 * rewound it. With the fetches and the console lines, this is the task's timeline.
 *
 * @module
 */
import type { PendingTimer } from "../engine/mod.ts";
import type { TaskEvent } from "../store/mod.ts";
import { journalOf } from "./journal_events.ts";

/** A timer of the task: fired (`firedAt`) or still armed. */
export interface TimerView {
  /** Counted from 1 in the order the script armed its timers in the run. */
  id: number;
  /** When it was due (absent for timers journaled before due times were). */
  dueAt?: string;
  /** When it fired; absent while it is armed. */
  firedAt?: string;
}

/** A signal the task received (`POST /signal`). */
export interface SignalView {
  name: string;
  receivedAt: string;
  /** The signal's JSON data, when it had some. */
  data?: unknown;
}

/** The timeline's entries besides fetches and logs; each list is absent when empty. */
export interface TimelineView {
  timers?: TimerView[];
  signals?: SignalView[];
  /** When each `POST /retry` ran the task again, oldest first. */
  retriedAt?: string[];
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The timers, signals and retries of `events`, with the timers still `armed` after them. */
export function timelineOf(
  events: readonly TaskEvent[],
  armed: readonly PendingTimer[] = [],
): TimelineView {
  const timers: TimerView[] = [];
  const signals: SignalView[] = [];
  const retriedAt: string[] = [];
  for (const event of events) {
    if (event.type === "rewind") retriedAt.push(iso(event.at));
  }
  for (const entry of journalOf(events)) {
    if (entry.type === "timer") {
      const timer: TimerView = { id: entry.timer, firedAt: iso(entry.at) };
      if (entry.dueAt !== undefined) timer.dueAt = iso(entry.dueAt);
      timers.push(timer);
    } else if (entry.type === "signal") {
      const signal: SignalView = { name: entry.signal.name, receivedAt: iso(entry.at) };
      if (entry.signal.data !== undefined) signal.data = entry.signal.data;
      signals.push(signal);
    }
  }
  for (const timer of armed) timers.push({ id: timer.id, dueAt: iso(timer.dueAt) });
  const view: TimelineView = {};
  if (timers.length > 0) view.timers = timers;
  if (signals.length > 0) view.signals = signals;
  if (retriedAt.length > 0) view.retriedAt = retriedAt;
  return view;
}
