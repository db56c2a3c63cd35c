/**
 * A budget of response bytes in flight, server-wide and per task: bytes of response bodies
 * read and not yet delivered to their task. Reading a chunk that would go over either limit
 * waits until earlier responses are delivered, except for the oldest response in flight,
 * which always proceeds, so the budget slows readers down but never deadlocks them.
 *
 * @module
 */

/** The bytes one response holds, from its first chunk until it is released. */
export interface ByteHold {
  /** Waits until `bytes` more fit the budget (or this is the oldest hold); `false` if aborted. */
  reserve(bytes: number, signal: AbortSignal): Promise<boolean>;
  /** Gives the hold's bytes back (once the response is delivered or dropped). */
  release(): void;
}

interface Hold {
  seq: number;
  taskId: string;
  bytes: number;
}

interface Waiter {
  hold: Hold;
  bytes: number;
  grant(): void;
}

/** Response bytes in flight, within `totalBytes` in all and `taskBytes` per task. */
export class ByteBudget {
  readonly #total: number;
  readonly #perTask: number;
  #used = 0;
  readonly #usedBy = new Map<string, number>();
  /** Open holds, oldest first. */
  readonly #holds = new Set<Hold>();
  readonly #waiting: Waiter[] = [];
  #seq = 0;

  constructor(totalBytes: number, taskBytes: number) {
    this.#total = totalBytes;
    this.#perTask = taskBytes;
  }

  /** Bytes held now, in all. */
  get used(): number {
    return this.#used;
  }

  /** Opens the hold of one response of `taskId`. */
  open(taskId: string): ByteHold {
    const hold: Hold = { seq: ++this.#seq, taskId, bytes: 0 };
    this.#holds.add(hold);
    let released = false;
    return {
      reserve: (bytes, signal) => this.#reserve(hold, bytes, signal),
      release: () => {
        if (released) return;
        released = true;
        this.#holds.delete(hold);
        this.#take(hold, -hold.bytes);
        this.#wake();
      },
    };
  }

  #reserve(hold: Hold, bytes: number, signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.#waiting.length === 0 && this.#fits(hold, bytes)) {
      this.#take(hold, bytes);
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        hold,
        bytes,
        grant: () => {
          signal.removeEventListener("abort", abort);
          resolve(true);
        },
      };
      const abort = () => {
        const at = this.#waiting.indexOf(waiter);
        if (at >= 0) this.#waiting.splice(at, 1);
        resolve(false);
        this.#wake();
      };
      this.#waiting.push(waiter);
      signal.addEventListener("abort", abort, { once: true });
      this.#wake();
    });
  }

  #fits(hold: Hold, bytes: number): boolean {
    const [oldest] = this.#holds;
    if (oldest === hold) return true;
    return this.#used + bytes <= this.#total &&
      (this.#usedBy.get(hold.taskId) ?? 0) + bytes <= this.#perTask;
  }

  #take(hold: Hold, bytes: number): void {
    hold.bytes += bytes;
    this.#used += bytes;
    const left = (this.#usedBy.get(hold.taskId) ?? 0) + bytes;
    if (left > 0) this.#usedBy.set(hold.taskId, left);
    else this.#usedBy.delete(hold.taskId);
  }

  /** Grants the waiting reservations that fit now, in order. */
  #wake(): void {
    for (let i = 0; i < this.#waiting.length;) {
      const waiter = this.#waiting[i]!;
      if (this.#fits(waiter.hold, waiter.bytes)) {
        this.#waiting.splice(i, 1);
        this.#take(waiter.hold, waiter.bytes);
        waiter.grant();
      } else {
        i++;
      }
    }
  }
}
