/**
 * The timers of a run, as the host keeps them: every `setTimeout`, `setInterval` tick,
 * `FlowState.sleep` and signal timeout the guest arms is a host timer with an id (counted
 * from 1 in the order the guest armed them, so a replay gives the same ids) and a due time
 * (the guest clock when it was armed plus its delay). Firing one is an input of the run,
 * journaled like a response; arming and clearing are outputs, recomputed by a replay.
 *
 * A weak timer (`AbortSignal.timeout`'s) fires like any other, but does not keep a task whose
 * code has finished from completing, as an unref'd timer does not keep Deno running.
 *
 * @module
 */
import { limitError } from "./limits.ts";
import type { PendingTimer } from "./types.ts";

/** The armed timers of a run, earliest due first when fired. */
export class Timers {
  readonly #armed = new Map<number, PendingTimer>();
  /** Ids of the armed weak timers. */
  readonly #weak = new Set<number>();
  #next = 1;
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  /** Number of armed timers. */
  get size(): number {
    return this.#armed.size;
  }

  /** Number of armed timers that keep a finished task from completing (not weak). */
  get holding(): number {
    return this.#armed.size - this.#weak.size;
  }

  /** Forgets every timer (a state is being restored). */
  clear(): void {
    this.#armed.clear();
    this.#weak.clear();
    this.#next = 1;
  }

  /**
   * Arms a timer due `delayMs` after `clock` (`weak`: not holding a finished task); returns
   * its id. Throws a `limit` error.
   */
  arm(delayMs: number, clock: number, weak = false): number {
    if (this.#armed.size >= this.#max) {
      throw limitError(`The script armed more than ${this.#max} timers at once`);
    }
    const id = this.#next++;
    this.#armed.set(id, { id, dueAt: clock + delayMs });
    if (weak) this.#weak.add(id);
    return id;
  }

  /** Disarms timer `id` (no-op when it is not armed). */
  disarm(id: number): void {
    this.#armed.delete(id);
    this.#weak.delete(id);
  }

  /** Whether timer `id` is armed. */
  has(id: number): boolean {
    return this.#armed.has(id);
  }

  /** The armed timer due first (ties: armed first), or `undefined`. */
  earliest(): PendingTimer | undefined {
    let best: PendingTimer | undefined;
    for (const timer of this.#armed.values()) {
      if (!best || timer.dueAt < best.dueAt) best = timer;
    }
    return best;
  }

  /** Every armed timer, earliest due first. */
  list(): PendingTimer[] {
    return [...this.#armed.values()].sort((a, b) => a.dueAt - b.dueAt || a.id - b.id);
  }
}
