/**
 * Databases for tests and benchmarks on the local PostgreSQL server: each one new, with a
 * unique name, dropped when done.
 *
 * @module
 */
import postgres from "postgres";

/** The PostgreSQL server tests use (`TEST_DATABASE_URL` overrides it). */
export const TEST_SERVER_URL = Deno.env.get("TEST_DATABASE_URL") ??
  "postgres://postgres@127.0.0.1:5432/postgres";

/** A database created for one test. */
export interface FreshDatabase {
  /** Its `postgres://` URL. */
  url: string;
  /** Drops it, ending any connection still open to it. */
  drop(): Promise<void>;
}

/** Creates an empty database with a unique name on {@link TEST_SERVER_URL}. */
export async function freshDatabase(): Promise<FreshDatabase> {
  const name = `flowstate_test_${Date.now().toString(36)}_${crypto.randomUUID().slice(0, 8)}`;
  await admin(async (sql) => {
    await sql.unsafe(`CREATE DATABASE ${name}`);
  });
  const url = new URL(TEST_SERVER_URL);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    drop: () =>
      admin(async (sql) => {
        await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      }),
  };
}

async function admin(fn: (sql: postgres.Sql) => Promise<void>): Promise<void> {
  const sql = postgres(TEST_SERVER_URL, { max: 1, onnotice: () => {} });
  try {
    await fn(sql);
  } finally {
    await sql.end();
  }
}
