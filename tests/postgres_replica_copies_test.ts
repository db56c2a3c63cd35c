/**
 * What a replica keeps of a task (its record, its live VM) never stands in for the
 * database's state once another replica may have moved the task on: a replica whose leases
 * lapsed (cut off from the database, or too late to renew them) reads the task from the
 * database, and a segment whose save was refused leaves no live VM ahead of it. Two task
 * services on one PostgreSQL database, each with its own store and engine process, as two
 * replicas of a cluster.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import postgres from "postgres";
import { waitFor } from "../testing/wait.ts";
import { freshDatabase } from "../testing/postgres.ts";
import { jsonResponse } from "../testing/engine_driver.ts";
import { FlowTaskService } from "../lib/service/task_service.ts";
import { WorkerPool } from "../lib/service/executor.ts";
import { PostgresTaskStore } from "../lib/store/postgres_task_store.ts";
import { createLogger } from "../lib/log.ts";
import { LeaseLostError } from "../lib/errors.ts";

/** One replica: a store leasing to `owner`, an engine process and the service over them. */
function replica(
  url: string,
  owner: string,
  options: { leaseMs: number; leasesInForce?: () => boolean },
) {
  const { leaseMs, leasesInForce } = options;
  const store = new PostgresTaskStore({ url, owner, leaseMs, maxConnections: 2 });
  const pool = new WorkerPool({ size: 1, liveVms: 16, timeLimitMs: 5_000, graceMs: 1_000 });
  const service = new FlowTaskService({
    store,
    pool,
    engine: { timeLimitMs: 5_000 },
    tasksDir: "tasks",
    autoFetch: false,
    onPending: () => {},
    logger: createLogger({ level: "silent" }),
    version: "test",
    leasesInForce,
  });
  return {
    service,
    store,
    async close() {
      await service.close();
      await pool.close();
      await store.close();
    },
  };
}

Deno.test({
  name:
    "a replica whose leases lapsed acts on a task as the database has it, not as its older copy",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const database = await freshDatabase();
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  let inForce = true;
  const a = replica(database.url, "a", { leaseMs: 300, leasesInForce: () => inForce });
  const b = replica(database.url, "b", { leaseMs: 300 });
  const leaseExpired = (owner: string) =>
    waitFor(async () => {
      const [row] = await sql<{ expired: boolean }[]>`
        SELECT lease_until < now() AS expired FROM flowstate_tasks
        WHERE id = 'moved' AND owner = ${owner}`;
      return row?.expired;
    }, { message: `the lease of replica ${owner} on the task to expire` });
  try {
    await a.service.start();
    await b.service.start();
    const created = await a.service.create({
      id: "moved",
      code: `const one = await (await fetch("https://api.test/1")).json();
const two = await (await fetch("https://api.test/2")).json();
one.n + two.n`,
    });
    assertEquals(created.status, "paused");

    // a stops renewing (as when cut off from the database); b takes the task on, then
    // goes quiet too: nobody holds the task, and a's copy is a step behind.
    inForce = false;
    await leaseExpired("a");
    const second = await b.service.deliver(
      "moved",
      jsonResponse(created.fetchRequest!.id, { n: 20 }),
    );
    assertEquals(second.status, "paused");
    await leaseExpired("b");

    const done = await a.service.deliver("moved", jsonResponse(second.fetchRequest!.id, { n: 22 }));
    assertEquals([done.status, done.result], ["completed", 42]);
    const [row] = await sql<{ owner: string; status: string }[]>`
      SELECT owner, status FROM flowstate_tasks WHERE id = 'moved'`;
    assertEquals(row, { owner: "a", status: "completed" });
  } finally {
    await a.close();
    await b.close();
    await sql.end();
    await database.drop();
  }
});

Deno.test({
  name:
    "a replica whose save of a task was refused keeps no live VM of it, and runs the database's state when it takes the task over",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const database = await freshDatabase();
  // Leases far longer than the test: they end only when b gives them up.
  const a = replica(database.url, "a", { leaseMs: 60_000 });
  const b = replica(database.url, "b", { leaseMs: 60_000 });
  try {
    await a.service.start();
    await b.service.start();
    const created = await b.service.create({
      id: "contested",
      code: `const one = await (await fetch("https://api.test/1")).json();
const two = await (await fetch("https://api.test/2")).json();
one.n + two.n`,
    });
    const first = jsonResponse(created.fetchRequest!.id, { n: 20 });

    // The first response reaches a while b holds the task: a runs the step, and its save is
    // refused. b then takes the same step itself (its next fetch has another id).
    await assertRejects(() => a.service.deliver("contested", first), LeaseLostError);
    const second = await b.service.deliver("contested", first);
    assertEquals(second.status, "paused");

    // b stops (its leases end at once) and a takes the task over, at the same step.
    await b.store.leases.release();
    a.service.adopt(await a.store.leases.claim(10, []));
    assert(a.service.holds("contested"));
    const done = await a.service.deliver(
      "contested",
      jsonResponse(second.fetchRequest!.id, { n: 22 }),
    );
    assertEquals([done.status, done.result], ["completed", 42]);
  } finally {
    await a.close();
    await b.close();
    await database.drop();
  }
});
