/**
 * A {@link TaskStore} in PostgreSQL, shared by the replicas of a cluster (`DATABASE_URL`).
 *
 * The semantics are the file store's: the journal is a write-ahead log of JSON lines (one
 * row per line, with the journal's UTF-8 size up to its end), each save appends its events
 * and a commit line, and `eventsBytes` is the commit point. Here a save is one transaction,
 * so it is committed whole or not at all.
 *
 * Ownership: every replica opens the store with its own `owner` id. A save leases the task
 * to its owner for `leaseMs` (finished tasks are saved without a lease). A save is refused
 * with a {@link LeaseLostError} when another replica holds the task's lease, or when the
 * task was last saved by another replica and the record given is not the latest (a replica
 * taking a task over builds on its last commit, never on an older one). Listings, counts
 * and the retention sweep are answered from SQL, so every replica sees every task.
 *
 * A database that cannot be reached makes every operation reject with an
 * `UnavailableError` (503); nothing is half written, since each save is a transaction.
 *
 * @module
 */
import postgres, { type Sql } from "postgres";
import { assertTaskId, commitLine, isCommitLine } from "./file_task_store.ts";
import {
  decodeCursor,
  encodeCursor,
  isFinished,
  type ListQuery,
  STATUS_LIST,
  type TaskPage,
  type TaskSummary,
  timeMs,
} from "./task_index.ts";
import { migrate } from "./postgres_schema.ts";
import { JournalCipher, SealedPartError } from "./journal_cipher.ts";
import { PostgresLeases } from "./postgres_leases.ts";
import { ConflictError, HttpError, LeaseLostError, UnavailableError } from "../errors.ts";
import type {
  PendingRequest,
  SkippedFile,
  TaskEvent,
  TaskRecord,
  TaskStatus,
  TaskStore,
} from "./task_store.ts";
import type { FetchRequest } from "../engine/types.ts";

/** How to reach the database, and as whom. */
export interface PostgresStoreOptions {
  /** A `postgres://` URL. */
  url: string;
  /** This replica's id, the owner of the leases it takes; random when omitted. */
  owner?: string;
  /** How long a save leases a running or paused task to its owner, ms. */
  leaseMs: number;
  /** Most connections the store opens; default 10. */
  maxConnections?: number;
  /**
   * A secret: request and response data are sealed in the journal and the record's
   * `pending` and variables view, as in the file store ({@link JournalCipher}).
   */
  encryptionKey?: string;
}

/** Default of {@link PostgresStoreOptions.maxConnections}. */
const MAX_CONNECTIONS = 10;
/** Seconds to wait for a connection before the operation fails (503). */
const CONNECT_TIMEOUT_S = 5;
/** Rows of a listing are capped at this many per query. */
const MAX_PAGE = 1_000_000;
const encoder = new TextEncoder();

/** A journal read or cut that does not fall on a line's end. */
class JournalCutError extends Error {
  override name = "JournalCutError";
}

interface SummaryRow {
  id: string;
  name: string;
  status: TaskStatus;
  pause_count: number;
  created_at: string;
  updated_at: string;
  created_ms: number;
}

/** The {@link TaskStore} of a cluster of replicas sharing one PostgreSQL database. */
export class PostgresTaskStore implements TaskStore {
  /** The connection pool. */
  readonly sql: Sql;
  /** This replica's id. */
  readonly owner: string;
  /** The lease operations of the cluster, on the same connections. */
  readonly leases: PostgresLeases;
  readonly #leaseMs: number;
  readonly #cipher: JournalCipher | undefined;
  #schema: Promise<number> | undefined;
  #counts = zeroCounts();
  /** Bumped by every local change: a count refresh started before one is dropped. */
  #generation = 0;

  constructor(options: PostgresStoreOptions) {
    this.sql = postgres(options.url, {
      max: options.maxConnections ?? MAX_CONNECTIONS,
      connect_timeout: CONNECT_TIMEOUT_S,
      onnotice: () => {},
      // bigint columns as numbers (journal sizes stay far below 2^53).
      types: {
        bigint: {
          to: 20,
          from: [20],
          serialize: (value: number) => String(value),
          parse: (value: string) => Number(value),
        },
      },
    });
    this.owner = options.owner ?? crypto.randomUUID();
    this.#leaseMs = options.leaseMs;
    this.#cipher = options.encryptionKey === undefined
      ? undefined
      : new JournalCipher(options.encryptionKey);
    this.leases = new PostgresLeases(
      this.sql,
      this.owner,
      options.leaseMs,
      (action, fn) => this.#run(action, fn),
      (texts) => this.#records(texts),
    );
  }

  /**
   * Migrates the schema, counts the tasks, and leases to this replica the running and
   * paused tasks it owned or that no live replica holds, answering their records, oldest
   * first.
   */
  open(): Promise<{ active: TaskRecord[]; skipped: SkippedFile[] }> {
    return this.#run("open the store", async () => {
      await this.refreshCounts();
      const rows = await this.sql<{ record: string }[]>`
        UPDATE flowstate_tasks SET owner = ${this.owner}, lease_until = ${this.#leaseEnd()}
        WHERE status IN ('running', 'paused')
          AND (owner = ${this.owner} OR owner IS NULL OR lease_until IS NULL
            OR lease_until < now())
        RETURNING record`;
      const active = sortByCreation(await this.#records(rows.map((row) => row.record)));
      return { active, skipped: [] };
    });
  }

  /** Every record. */
  loadAll(): Promise<{ tasks: TaskRecord[]; skipped: SkippedFile[] }> {
    return this.#run("load the tasks", async () => {
      const rows = await this.sql<{ record: string }[]>`
        SELECT record FROM flowstate_tasks ORDER BY created_ms, id`;
      return { tasks: await this.#records(rows.map((row) => row.record)), skipped: [] };
    });
  }

  /** A page of the tasks matching `query`, from SQL. */
  list(query: ListQuery): Promise<TaskPage> {
    return this.#run("list the tasks", async () => {
      const sql = this.sql;
      const newest = query.order === "newest";
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
      const statuses = query.status?.length ? [...query.status] : undefined;
      const limit = Math.min(Math.max(0, query.limit), MAX_PAGE);
      const rows = await sql<SummaryRow[]>`
        SELECT id, name, status, pause_count, created_at, updated_at, created_ms
        FROM flowstate_tasks
        WHERE ${statuses ? sql`status = ANY(${statuses})` : sql`true`}
          AND ${query.name === undefined ? sql`true` : sql`name = ${query.name}`}
          AND ${
        after === undefined
          ? sql`true`
          : newest
          ? sql`(created_ms, id) < (${after.createdMs}, ${after.id})`
          : sql`(created_ms, id) > (${after.createdMs}, ${after.id})`
      }
        ORDER BY ${newest ? sql`created_ms DESC, id DESC` : sql`created_ms, id`}
        LIMIT ${limit + 1}`;
      const tasks = rows.slice(0, limit).map(summaryOfRow);
      const last = rows.length > limit ? rows[limit - 1] : undefined;
      return { tasks, nextCursor: last ? encodeCursor(last.created_ms, last.id) : null };
    });
  }

  /**
   * Tasks by status: counted in SQL when the store opens and at each
   * {@link refreshCounts}, and kept up to date by this replica's own saves and removals in
   * between.
   */
  counts(): Record<TaskStatus, number> {
    return { ...this.#counts };
  }

  /** Counts the tasks of every replica again. */
  async refreshCounts(): Promise<void> {
    const generation = this.#generation;
    const rows = await this.#run(
      "count the tasks",
      () =>
        this.sql<{ status: TaskStatus; count: number }[]>`
        SELECT status, count(*)::integer AS count FROM flowstate_tasks GROUP BY status`,
    );
    if (generation !== this.#generation) return;
    const counts = zeroCounts();
    for (const row of rows) if (row.status in counts) counts[row.status] = row.count;
    this.#counts = counts;
  }

  /** Finished tasks last updated before `cutoffMs`, in creation order. */
  finishedBefore(cutoffMs: number, limit: number): Promise<TaskSummary[]> {
    return this.#run("list finished tasks", async () => {
      const finished = STATUS_LIST.filter(isFinished);
      const rows = await this.sql<SummaryRow[]>`
        SELECT id, name, status, pause_count, created_at, updated_at, created_ms
        FROM flowstate_tasks
        WHERE status = ANY(${finished}) AND updated_ms < ${cutoffMs}
        ORDER BY created_ms, id LIMIT ${limit}`;
      return rows.map(summaryOfRow);
    });
  }

  /** Closes the connections (after the queries in flight). */
  async close(): Promise<void> {
    await this.sql.end({ timeout: CONNECT_TIMEOUT_S });
  }

  /**
   * In one transaction: checks the task's ownership, cuts its journal back to
   * `record.eventsBytes`, appends the events and the commit line, and writes the record,
   * leased to this replica unless it is finished.
   */
  save(record: TaskRecord, events: readonly TaskEvent[]): Promise<TaskRecord> {
    return this.#run(`save task "${record.id}"`, async () => {
      const id = record.id;
      assertTaskId(id);
      const from = record.eventsBytes;
      assertBytes(id, from);
      const cipher = this.#cipher;
      const stored = cipher
        ? await Promise.all(events.map((event) => cipher.sealEvent(event)))
        : events;
      const lines = stored.map((event) => JSON.stringify(event));
      if (lines.some(isCommitLine)) {
        throw new TypeError(`Event of type "commit" in a save of task "${id}"`);
      }
      const sealed = cipher ? await cipher.sealRecord(record) : record;
      lines.push(commitLine(sealed));
      let end = from;
      const ends = lines.map((line) => end += encoder.encode(line).length + 1);
      const text = JSON.stringify({ ...sealed, eventsBytes: end });
      const finished = isFinished(record.status);
      const before = await this.sql.begin(async (tx) => {
        const [row] = await tx<
          {
            status: TaskStatus;
            events_bytes: number;
            owner: string | null;
            leased: boolean | null;
          }[]
        >`
          SELECT status, events_bytes, owner, lease_until > now() AS leased
          FROM flowstate_tasks WHERE id = ${id} FOR UPDATE`;
        const size = row?.events_bytes ?? 0;
        if (size < from) throw shorter(id, size, from);
        if (row && row.owner !== this.owner && (row.leased || size !== from)) {
          throw new LeaseLostError(
            `Cannot save task "${id}": ${
              row.leased ? "another replica holds its lease" : "another replica saved it since"
            }; try again`,
          );
        }
        const [kept] = await tx<{ next: number; end: number }[]>`
          SELECT coalesce(max(line_no) + 1, 0)::integer AS next,
            coalesce(max(end_bytes), 0) AS end
          FROM flowstate_journal WHERE task_id = ${id} AND end_bytes <= ${from}`;
        if ((kept?.end ?? 0) !== from) throw cutOff(id, from);
        if (from < size) {
          await tx`DELETE FROM flowstate_journal WHERE task_id = ${id} AND end_bytes > ${from}`;
        }
        const next = kept?.next ?? 0;
        const rows = lines.map((line, index) => ({
          task_id: id,
          line_no: next + index,
          end_bytes: ends[index]!,
          is_commit: index === lines.length - 1,
          line,
        }));
        await tx`INSERT INTO flowstate_journal ${tx(rows)}`;
        const wakeAt = record.status === "paused" ? record.vm?.timers?.[0]?.dueAt ?? null : null;
        const task = {
          id,
          status: record.status,
          name: record.name,
          pause_count: record.pauseCount,
          created_at: record.createdAt,
          updated_at: record.updatedAt,
          created_ms: timeMs(record.createdAt),
          updated_ms: timeMs(record.updatedAt),
          events_bytes: end,
          wake_at: wakeAt,
          owner: this.owner,
          record: text,
        };
        await tx`
          INSERT INTO flowstate_tasks ${tx(task)}
          ON CONFLICT (id) DO UPDATE SET status = excluded.status, name = excluded.name,
            pause_count = excluded.pause_count, created_at = excluded.created_at,
            updated_at = excluded.updated_at, created_ms = excluded.created_ms,
            updated_ms = excluded.updated_ms, events_bytes = excluded.events_bytes,
            wake_at = excluded.wake_at, owner = excluded.owner, record = excluded.record`;
        await tx`UPDATE flowstate_tasks SET lease_until = ${
          finished ? null : this.#leaseEnd()
        } WHERE id = ${id}`;
        return row?.status;
      });
      this.#generation++;
      if (before !== undefined) this.#counts[before]--;
      this.#counts[record.status]++;
      return JSON.parse(JSON.stringify({ ...record, eventsBytes: end }));
    });
  }

  /** The record, or `null` if there is none. */
  readRecord(id: string): Promise<TaskRecord | null> {
    return this.#run(`read task "${id}"`, async () => {
      assertTaskId(id);
      const [row] = await this.sql<{ record: string }[]>`
        SELECT record FROM flowstate_tasks WHERE id = ${id}`;
      return row ? (await this.#records([row.record]))[0]! : null;
    });
  }

  /** `request` as it is: this store keeps bodies in its records (it makes no `bodyRef`). */
  requestWithBody(_id: string, request: PendingRequest): Promise<FetchRequest> {
    const { bodyRef: _bodyRef, ...plain } = request;
    return Promise.resolve(plain);
  }

  /** The events in the first `record.eventsBytes` bytes of the journal, without commits. */
  readEvents(record: Pick<TaskRecord, "id" | "eventsBytes">): Promise<TaskEvent[]> {
    return this.#run(`read the journal of task "${record.id}"`, async () => {
      const { id, eventsBytes } = record;
      assertTaskId(id);
      assertBytes(id, eventsBytes);
      const rows = await this.sql<{ line: string; end_bytes: number; is_commit: boolean }[]>`
        SELECT line, end_bytes, is_commit FROM flowstate_journal
        WHERE task_id = ${id} AND end_bytes <= ${eventsBytes} ORDER BY line_no`;
      if ((rows.at(-1)?.end_bytes ?? 0) !== eventsBytes) {
        const [size] = await this.sql<{ end: number }[]>`
          SELECT coalesce(max(end_bytes), 0) AS end FROM flowstate_journal
          WHERE task_id = ${id}`;
        const bytes = size?.end ?? 0;
        throw bytes < eventsBytes ? shorter(id, bytes, eventsBytes) : cutOff(id, eventsBytes);
      }
      const events: TaskEvent[] = rows.filter((row) => !row.is_commit).map((row) =>
        JSON.parse(row.line)
      );
      const cipher = this.#cipher;
      if (!cipher) return events;
      try {
        return await Promise.all(events.map((event) => cipher.openEvent(event)));
      } catch (error) {
        if (!(error instanceof SealedPartError)) throw error;
        throw new ConflictError(`Cannot read the journal of task "${id}": ${error.message}`);
      }
    });
  }

  /**
   * The committed events whose lines lie in the journal's last `maxBytes` bytes, and the
   * bytes before the first of them: only those rows are read.
   */
  async readTail(
    record: Pick<TaskRecord, "id" | "eventsBytes">,
    maxBytes: number,
  ): Promise<{ events: TaskEvent[]; skippedBytes: number }> {
    const { id, eventsBytes } = record;
    if (eventsBytes <= maxBytes) return { events: await this.readEvents(record), skippedBytes: 0 };
    return await this.#run(`read the journal of task "${id}"`, async () => {
      assertTaskId(id);
      assertBytes(id, eventsBytes);
      const start = eventsBytes - maxBytes;
      const rows = await this.sql<
        { line: string; end_bytes: number; start_bytes: number; is_commit: boolean }[]
      >`
        SELECT line, end_bytes, end_bytes - octet_length(line) - 1 AS start_bytes, is_commit
        FROM flowstate_journal
        WHERE task_id = ${id} AND end_bytes <= ${eventsBytes}
          AND end_bytes - octet_length(line) - 1 >= ${start}
        ORDER BY line_no`;
      const last = rows.at(-1);
      if (last !== undefined && Number(last.end_bytes) !== eventsBytes) {
        throw cutOff(id, eventsBytes);
      }
      if (last === undefined) {
        const [size] = await this.sql<{ end: number }[]>`
          SELECT coalesce(max(end_bytes), 0) AS end FROM flowstate_journal
          WHERE task_id = ${id}`;
        const bytes = Number(size?.end ?? 0);
        if (bytes < eventsBytes) throw shorter(id, bytes, eventsBytes);
      }
      let events: TaskEvent[] = rows.filter((row) => !row.is_commit).map((row) =>
        JSON.parse(row.line)
      );
      const cipher = this.#cipher;
      if (cipher) {
        try {
          events = await Promise.all(events.map((event) => cipher.openEvent(event)));
        } catch (error) {
          if (!(error instanceof SealedPartError)) throw error;
          throw new ConflictError(`Cannot read the journal of task "${id}": ${error.message}`);
        }
      }
      return { events, skippedBytes: rows.length > 0 ? Number(rows[0]!.start_bytes) : eventsBytes };
    });
  }

  /** Removes the task's row and journal in one transaction; `false` when there was none. */
  remove(id: string): Promise<boolean> {
    return this.#run(`remove task "${id}"`, async () => {
      assertTaskId(id);
      const status = await this.sql.begin(async (tx) => {
        const [row] = await tx<{ status: TaskStatus }[]>`
          DELETE FROM flowstate_tasks WHERE id = ${id} RETURNING status`;
        await tx`DELETE FROM flowstate_journal WHERE task_id = ${id}`;
        return row?.status;
      });
      if (status === undefined) return false;
      this.#generation++;
      this.#counts[status]--;
      return true;
    });
  }

  /**
   * Runs `fn` on the connections once the schema is migrated, a failure of the database
   * becoming an `UnavailableError` (for the store's siblings: leases, webhook marks).
   */
  run<T>(action: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    return this.#run(action, () => fn(this.sql));
  }

  /** Records from their stored text, opened with the key when there is one. */
  async #records(texts: readonly string[]): Promise<TaskRecord[]> {
    const records: TaskRecord[] = texts.map((text) => JSON.parse(text));
    const cipher = this.#cipher;
    if (!cipher) return records;
    try {
      return await Promise.all(records.map((record) => cipher.openRecord(record)));
    } catch (error) {
      if (!(error instanceof SealedPartError)) throw error;
      throw new ConflictError(`Cannot read a task: ${error.message}`);
    }
  }

  /** When a lease taken now ends, as SQL. */
  #leaseEnd() {
    return this.sql`now() + ${this.#leaseMs} * interval '1 millisecond'`;
  }

  /**
   * Runs `fn` once the schema is migrated; a failure of the database (unreachable,
   * restarting) becomes an `UnavailableError`.
   */
  async #run<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      this.#schema ??= migrate(this.sql).catch((error) => {
        this.#schema = undefined;
        throw error;
      });
      await this.#schema;
      return await fn();
    } catch (error) {
      throw databaseError(action, error);
    }
  }
}

/** Counts of zero tasks by status. */
function zeroCounts(): Record<TaskStatus, number> {
  return Object.fromEntries(STATUS_LIST.map((status) => [status, 0])) as Record<
    TaskStatus,
    number
  >;
}

function summaryOfRow(row: SummaryRow): TaskSummary {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    pauseCount: row.pause_count,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Records by creation time, then id. */
export function sortByCreation(records: TaskRecord[]): TaskRecord[] {
  const key = (record: TaskRecord) => timeMs(record.createdAt);
  return records.sort((a, b) => key(a) - key(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function assertBytes(id: string, eventsBytes: number): void {
  if (!Number.isSafeInteger(eventsBytes) || eventsBytes < 0) {
    throw new TypeError(`Invalid eventsBytes ${eventsBytes} for the journal of task "${id}"`);
  }
}

function shorter(id: string, size: number, eventsBytes: number): UnavailableError {
  return new UnavailableError(
    `The journal of task "${id}" is shorter than its record: ${size} bytes, fewer than ` +
      `the ${eventsBytes} the record accounts for (corrupted)`,
  );
}

function cutOff(id: string, eventsBytes: number): JournalCutError {
  return new JournalCutError(
    `Cannot read the journal of task "${id}": no line ends at the record's eventsBytes ` +
      `(${eventsBytes})`,
  );
}

/** What a failure of `action` is answered with. */
function databaseError(action: string, error: unknown): unknown {
  if (error instanceof HttpError || error instanceof TypeError) return error;
  if (error instanceof JournalCutError) return error;
  const code = (error as { code?: unknown })?.code;
  if (code === "23505") {
    return new ConflictError(`Cannot ${action}: another replica saved it at the same time`);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new UnavailableError(`Cannot ${action}: the database is unavailable (${message})`, {
    cause: error,
  });
}
