/**
 * The leases of a cluster's tasks in PostgreSQL: a replica renews the leases of the tasks
 * it holds, learns which ones another replica took, takes over the running and paused
 * tasks whose lease expired (their replica died or lost the database), and tells its peers
 * where to forward a task's requests.
 *
 * Takeover claims rows with `FOR UPDATE SKIP LOCKED`, so replicas claiming at once never
 * wait for each other and never claim the same task; a claim re-checks the expiry on the
 * row it locks, so a lease renewed meanwhile is kept by its holder.
 *
 * @module
 */
import type { Sql } from "postgres";
import type { TaskRecord } from "./task_store.ts";
import { sortByCreation } from "./postgres_task_store.ts";

/** Runs a database operation, turning its failures into HTTP errors. */
type Runner = <T>(action: string, fn: () => Promise<T>) => Promise<T>;

/** The lease operations of one replica. */
export class PostgresLeases {
  readonly #sql: Sql;
  readonly #owner: string;
  readonly #leaseMs: number;
  readonly #run: Runner;
  readonly #records: (texts: readonly string[]) => Promise<TaskRecord[]>;

  constructor(
    sql: Sql,
    owner: string,
    leaseMs: number,
    run: Runner,
    records: (texts: readonly string[]) => Promise<TaskRecord[]>,
  ) {
    this.#sql = sql;
    this.#owner = owner;
    this.#leaseMs = leaseMs;
    this.#run = run;
    this.#records = records;
  }

  /** Records that this replica is alive and reachable at `address`. */
  heartbeat(address: string): Promise<void> {
    return this.#run("record this replica", async () => {
      await this.#sql`
        INSERT INTO flowstate_replicas (id, address, seen_at)
        VALUES (${this.#owner}, ${address}, now())
        ON CONFLICT (id) DO UPDATE SET address = excluded.address, seen_at = now()`;
    });
  }

  /**
   * Extends the leases of the tasks in `held` this replica still owns; resolves with those
   * of `held` another replica owns now (this replica must drop them).
   */
  renew(held: readonly string[]): Promise<string[]> {
    return this.#run("renew the leases", async () => {
      if (held.length === 0) return [];
      const ids = [...held];
      await this.#sql`
        UPDATE flowstate_tasks SET lease_until = ${this.#leaseEnd()}
        WHERE id = ANY(${ids}) AND owner = ${this.#owner}
          AND status IN ('running', 'paused')`;
      const lost = await this.#sql<{ id: string }[]>`
        SELECT id FROM flowstate_tasks
        WHERE id = ANY(${ids}) AND owner IS DISTINCT FROM ${this.#owner}`;
      return lost.map((row) => row.id);
    });
  }

  /**
   * Leases to this replica up to `limit` running or paused tasks whose lease expired (none
   * of `exclude`, the tasks this replica is still working on), answering their records,
   * oldest first.
   */
  claim(limit: number, exclude: readonly string[]): Promise<TaskRecord[]> {
    return this.#run("take over tasks", async () => {
      const rows = await this.#sql<{ record: string }[]>`
        UPDATE flowstate_tasks SET owner = ${this.#owner}, lease_until = ${this.#leaseEnd()}
        WHERE id IN (
          SELECT id FROM flowstate_tasks
          WHERE status IN ('running', 'paused') AND lease_until < now()
            AND id <> ALL(${[...exclude]})
          ORDER BY lease_until LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        ) AND lease_until < now()
        RETURNING record`;
      return sortByCreation(await this.#records(rows.map((row) => row.record)));
    });
  }

  /**
   * The address of the live replica that holds the task's lease, or `null` when it is
   * this replica, or nobody's (no lease, or an expired one): then this replica may act.
   */
  ownerAddress(id: string): Promise<string | null> {
    return this.#run(`find the owner of task "${id}"`, async () => {
      const [row] = await this.#sql<{ address: string }[]>`
        SELECT r.address FROM flowstate_tasks t JOIN flowstate_replicas r ON r.id = t.owner
        WHERE t.id = ${id} AND t.owner <> ${this.#owner} AND t.lease_until > now()`;
      return row?.address ?? null;
    });
  }

  /**
   * Ends this replica's leases at once and forgets its address (a graceful stop), so its
   * peers take its tasks over without waiting for the leases to expire.
   */
  release(): Promise<void> {
    return this.#run("release the leases", async () => {
      await this.#sql`
        UPDATE flowstate_tasks SET lease_until = now() - interval '1 millisecond'
        WHERE owner = ${this.#owner} AND lease_until IS NOT NULL`;
      await this.#sql`DELETE FROM flowstate_replicas WHERE id = ${this.#owner}`;
    });
  }

  #leaseEnd() {
    return this.#sql`now() + ${this.#leaseMs} * interval '1 millisecond'`;
  }
}
