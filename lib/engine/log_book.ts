/**
 * The console lines of a run: the bounded list a state keeps (newest kept, a count of the
 * dropped ones) and the lines of the current run segment.
 *
 * @module
 */
import type { LogEntry, LogLevel } from "./types.ts";

/** Longest console line kept, in characters. */
const MAX_LOG_LINE_CHARS = 8 * 1024;
const LOG_LEVELS: readonly LogLevel[] = ["log", "info", "warn", "error", "debug"];

/** Console lines under the `maxLogEntries` limit. */
export class LogBook {
  /** Lines kept in the state. */
  logs: LogEntry[] = [];
  /** How many older lines were dropped. */
  dropped = 0;
  /** Lines of the current run segment. */
  segment: LogEntry[] = [];
  readonly #max: number;

  constructor(maxEntries: number) {
    this.#max = maxEntries;
  }

  /** Starts a run segment: its lines start empty. */
  startSegment(): void {
    this.segment = [];
  }

  /** Replaces the kept lines (restoring a state). */
  reset(logs: readonly LogEntry[], dropped: number): void {
    this.logs = [...logs];
    this.dropped = dropped;
  }

  /** Adds a line the guest wrote, shortened past {@link MAX_LOG_LINE_CHARS}. */
  add(level: string, message: string): void {
    const entry: LogEntry = {
      level: LOG_LEVELS.includes(level as LogLevel) ? level as LogLevel : "log",
      message: message.length > MAX_LOG_LINE_CHARS
        ? `${message.slice(0, MAX_LOG_LINE_CHARS)}… [${
          message.length - MAX_LOG_LINE_CHARS
        } more characters]`
        : message,
      time: Date.now(),
    };
    this.segment.push(entry);
    this.logs.push(entry);
    if (this.logs.length > this.#max) {
      this.logs.splice(0, this.logs.length - this.#max);
      this.dropped++;
    }
    if (this.segment.length > this.#max) this.segment.shift();
  }
}
