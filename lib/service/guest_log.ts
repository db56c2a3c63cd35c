/**
 * The copy of guest `console` lines to the server log, rate-limited server-wide: at most
 * `linesPerSecond` lines a second (with a burst of as many), so a task printing in a loop
 * cannot flood the server's output. Lines over the rate are not copied (the task's journal
 * still has them, within its own cap); how many were skipped is logged once the rate allows
 * again.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { LogEntry } from "../engine/mod.ts";

/** The server log level of each guest `console` method. */
const GUEST_LOG_LEVELS: Record<LogEntry["level"], "debug" | "info" | "warn" | "error"> = {
  debug: "debug",
  log: "info",
  info: "info",
  warn: "warn",
  error: "error",
};

/** Copies guest console lines to the server log within a rate. */
export class GuestLogCopier {
  readonly #logger: Logger;
  readonly #rate: number;
  #tokens: number;
  #refilled = performance.now();
  #skipped = 0;

  constructor(logger: Logger, linesPerSecond: number) {
    this.#logger = logger;
    this.#rate = linesPerSecond;
    this.#tokens = linesPerSecond;
  }

  /** Logs `line` of `taskId`, unless the rate is spent. */
  copy(taskId: string, line: LogEntry): void {
    const now = performance.now();
    this.#tokens = Math.min(this.#rate, this.#tokens + (now - this.#refilled) * this.#rate / 1000);
    this.#refilled = now;
    if (this.#tokens < 1) {
      this.#skipped++;
      return;
    }
    this.#tokens--;
    if (this.#skipped > 0) {
      this.#logger.warn("guest console lines not copied to the server log (over the rate)", {
        skipped: this.#skipped,
      });
      this.#skipped = 0;
    }
    this.#logger[GUEST_LOG_LEVELS[line.level]]("guest console", {
      taskId,
      console: line.level,
      message: line.message,
    });
  }
}
