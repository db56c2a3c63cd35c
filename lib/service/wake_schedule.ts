/**
 * The host's one scheduler of task wake-ups: every paused task with an armed timer has one
 * entry (its earliest due time) in a binary heap, and a single host timer is set for the
 * earliest entry of all. 10,000 sleeping tasks are 10,000 small heap entries and one host
 * timer, whatever their due times. A task's entry is replaced when it is set again and
 * dropped when it ends (entries left behind in the heap are skipped when they surface).
 *
 * @module
 */
import { BinaryHeap } from "@std/data-structures/binary-heap";

/** Longest single host timer, ms; a later wake-up re-arms it when it ends. */
const MAX_HOST_DELAY_MS = 60 * 60 * 1000;

interface Wake {
  at: number;
  taskId: string;
}

/** Wakes tasks at their due times through one host timer. */
export class WakeSchedule {
  readonly #heap = new BinaryHeap<Wake>((a: Wake, b: Wake) => a.at - b.at);
  /** The one valid wake-up time of each task. */
  readonly #due = new Map<string, number>();
  readonly #onWake: (taskId: string) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #closed = false;

  /** `onWake(taskId)` is called once a task's wake-up time has come (then it is unset). */
  constructor(onWake: (taskId: string) => void) {
    this.#onWake = onWake;
  }

  /** Number of tasks with a wake-up time. */
  get size(): number {
    return this.#due.size;
  }

  /** The wake-up time of `taskId` (ms since the epoch), if it has one. */
  get(taskId: string): number | undefined {
    return this.#due.get(taskId);
  }

  /** Makes `at` the wake-up time of `taskId`, or removes it (`undefined`). */
  set(taskId: string, at: number | undefined): void {
    if (at === undefined) {
      this.#due.delete(taskId);
      return;
    }
    if (this.#due.get(taskId) === at) return;
    this.#due.set(taskId, at);
    this.#heap.push({ at, taskId });
    this.#arm();
  }

  /** Removes the wake-up time of `taskId` (it ended or was cancelled). */
  drop(taskId: string): void {
    this.#due.delete(taskId);
  }

  /** Stops the host timer; nothing is woken any more. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The earliest valid entry, dropping stale ones on the way. */
  #peek(): Wake | undefined {
    for (;;) {
      const top = this.#heap.peek() as Wake | undefined;
      if (top === undefined || this.#due.get(top.taskId) === top.at) return top;
      this.#heap.pop();
    }
  }

  #arm(): void {
    if (this.#closed) return;
    const top = this.#peek();
    if (top === undefined || (this.#timer !== undefined && this.#timerAt <= top.at)) return;
    clearTimeout(this.#timer);
    this.#timerAt = top.at;
    const delay = Math.min(Math.max(0, top.at - Date.now()), MAX_HOST_DELAY_MS);
    this.#timer = setTimeout(() => this.#fire(), delay);
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = Date.now();
    for (;;) {
      const top = this.#peek();
      if (top === undefined || top.at > now) break;
      this.#heap.pop();
      this.#due.delete(top.taskId);
      this.#onWake(top.taskId);
    }
    this.#arm();
  }
}
