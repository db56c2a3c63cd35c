/**
 * The PostgreSQL schema of the store, as numbered migrations applied at start-up.
 *
 * Every replica migrates when it opens the store. The migrations run in one transaction
 * that first takes a transaction-level advisory lock, so replicas starting at once apply
 * each migration exactly once, in order: the first to get the lock applies what is missing
 * and records each version in `flowstate_schema_version`; the others, once it commits, find
 * nothing left to do.
 *
 * @module
 */
import type { Sql } from "postgres";

/** Key of the advisory lock held while migrating ("FlowStat" as a 64-bit number). */
const MIGRATION_LOCK = 0x466c6f7753746174n;

/**
 * The migrations, oldest first: `MIGRATIONS[n]` takes the schema from version `n` to
 * `n + 1`. Append only; never edit one that was released.
 */
export const MIGRATIONS: readonly (readonly string[])[] = [
  [
    // One row per task: the record as JSON text (as the store returns it), the fields a
    // listing shows, the journal's committed size, and the lease of the replica owning it.
    `CREATE TABLE flowstate_tasks (
      id text COLLATE "C" PRIMARY KEY,
      status text NOT NULL,
      name text NOT NULL,
      pause_count integer NOT NULL,
      created_at text NOT NULL,
      updated_at text NOT NULL,
      created_ms double precision NOT NULL,
      updated_ms double precision NOT NULL,
      events_bytes bigint NOT NULL,
      wake_at double precision,
      owner text,
      lease_until timestamptz,
      record text NOT NULL
    )`,
    `CREATE INDEX flowstate_tasks_created ON flowstate_tasks (created_ms, id)`,
    `CREATE INDEX flowstate_tasks_status ON flowstate_tasks (status, created_ms, id)`,
    `CREATE INDEX flowstate_tasks_name ON flowstate_tasks (name, created_ms, id)`,
    `CREATE INDEX flowstate_tasks_lease ON flowstate_tasks (lease_until)
      WHERE status IN ('running', 'paused')`,
    // The journal: one row per line (events and commit lines), with the journal's size in
    // UTF-8 bytes up to the end of that line, as the file store counts it.
    `CREATE TABLE flowstate_journal (
      task_id text COLLATE "C" NOT NULL,
      line_no integer NOT NULL,
      end_bytes bigint NOT NULL,
      is_commit boolean NOT NULL,
      line text NOT NULL,
      PRIMARY KEY (task_id, line_no)
    )`,
    // The replicas, with the address their peers forward a task's requests to.
    `CREATE TABLE flowstate_replicas (
      id text PRIMARY KEY,
      address text NOT NULL,
      seen_at timestamptz NOT NULL
    )`,
    // What became of each finished task's webhook (see webhook_marks.ts).
    `CREATE TABLE flowstate_webhook_marks (
      task_id text COLLATE "C" PRIMARY KEY,
      mark text NOT NULL
    )`,
  ],
];

/** Brings the database's schema to the latest version; resolves with that version. */
export async function migrate(sql: Sql): Promise<number> {
  return await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK.toString()}::bigint)`;
    await tx`CREATE TABLE IF NOT EXISTS flowstate_schema_version (
      version integer PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`;
    const [row] = await tx<{ version: number }[]>`
      SELECT coalesce(max(version), 0)::integer AS version FROM flowstate_schema_version`;
    const from = row?.version ?? 0;
    if (from > MIGRATIONS.length) {
      throw new Error(
        `The database's schema is version ${from}, newer than this server's ` +
          `${MIGRATIONS.length}: upgrade the server`,
      );
    }
    for (let version = from; version < MIGRATIONS.length; version++) {
      for (const statement of MIGRATIONS[version]!) await tx.unsafe(statement);
      await tx`INSERT INTO flowstate_schema_version (version) VALUES (${version + 1})`;
    }
    return MIGRATIONS.length;
  });
}
