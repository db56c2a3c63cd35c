/**
 * A replica's side of task ownership in a cluster: every third of the lease time it
 * records itself alive (with the address its peers forward to), renews the leases of the
 * tasks it holds, drops those another replica took (its lease ran out while it could not
 * reach the database, say), and takes over the running and paused tasks whose lease
 * expired: their replica died. A task taken over is adopted as at a start: a segment
 * caught running runs again from the journal, the requests in flight are sent again (same
 * `Idempotency-Key`), the timers due fire.
 *
 * A failing database only logs: nothing is dropped on an error, the next round tries again.
 * The keeper knows how long its leases are surely in force: a lease renewed at a moment
 * lasts `leaseMs` from it, and no peer can take a task over before then. Past that (this
 * replica cut off from the database, or too late to renew) a peer may have taken any of
 * its tasks over and moved them on, and until the next round says which, this replica's
 * copies of its tasks may be behind the database ({@link LeaseKeeper.leasesInForce}).
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { TaskRecord } from "./task_types.ts";

/** The lease operations of the store. */
export interface LeaseOps {
  heartbeat(address: string): Promise<void>;
  renew(held: readonly string[]): Promise<string[]>;
  claim(limit: number, exclude: readonly string[]): Promise<TaskRecord[]>;
  release(): Promise<void>;
}

/** What the keeper needs. */
export interface LeaseKeeperDeps {
  leases: LeaseOps;
  service: {
    adopt(records: readonly TaskRecord[]): void;
    release(taskId: string): void;
    heldTasks(): string[];
  };
  /** How long a lease lasts, ms. */
  leaseMs: number;
  /** The address this replica is reached at. */
  address(): string;
  /** Runs at the end of every round (the store counts the cluster's tasks). */
  refresh?(): Promise<void>;
  logger: Logger;
}

/** Tasks taken over in one round at most. */
const CLAIM_BATCH = 100;

/** Renews this replica's leases and takes over expired ones, in rounds. */
export class LeaseKeeper {
  readonly #deps: LeaseKeeperDeps;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: Promise<void> | undefined;
  #stopped = false;
  #failing = false;
  /** Until when (`performance.now()`, ms) the leases renewed last are surely in force. */
  #inForceUntil = Number.NEGATIVE_INFINITY;

  constructor(deps: LeaseKeeperDeps) {
    this.#deps = deps;
  }

  /** Runs a first round now, then one every third of the lease time. */
  start(): Promise<void> {
    this.#round = this.#run();
    return this.#round;
  }

  /**
   * Whether this replica's leases are surely in force now: its last renewal was sent less
   * than `leaseMs` ago (the database dates a lease from when it runs the renewal, no
   * earlier). While they are, no other replica can have taken over a task this one holds;
   * once they are not, one may have, and this replica's copy of the task may be behind.
   */
  leasesInForce(): boolean {
    return performance.now() < this.#inForceUntil;
  }

  /** Stops the rounds (the leases held stay until {@link release} or their expiry). */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#round;
  }

  /** Ends this replica's leases at once, for a graceful stop (best effort). */
  async release(): Promise<void> {
    await this.stop();
    this.#inForceUntil = Number.NEGATIVE_INFINITY;
    try {
      await this.#deps.leases.release();
    } catch (error) {
      this.#deps.logger.warn("leases not released", { error: String(error) });
    }
  }

  async #run(): Promise<void> {
    const { leases, service, logger } = this.#deps;
    try {
      await leases.heartbeat(this.#deps.address());
      const renewing = performance.now();
      for (const id of await leases.renew(service.heldTasks())) service.release(id);
      this.#inForceUntil = renewing + this.#deps.leaseMs;
      if (!this.#stopped) {
        const claimed = await leases.claim(CLAIM_BATCH, service.heldTasks());
        if (claimed.length > 0) {
          logger.info("tasks taken over", { tasks: claimed.length });
          service.adopt(claimed);
        }
      }
      await this.#deps.refresh?.();
      if (this.#failing) logger.info("leases renewed again");
      this.#failing = false;
    } catch (error) {
      if (!this.#failing) logger.error("cannot renew leases", { error: String(error) });
      this.#failing = true;
    }
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#round = this.#run();
    }, Math.max(50, Math.floor(this.#deps.leaseMs / 3)));
  }
}
