import { assert, assertEquals, assertRejects } from "@std/assert";
import { PostgresTaskStore } from "../lib/store/postgres_task_store.ts";
import { MIGRATIONS } from "../lib/store/postgres_schema.ts";
import { LeaseLostError } from "../lib/errors.ts";
import { freshDatabase } from "../testing/postgres.ts";
import { delay } from "../testing/wait.ts";
import { logEvent, makeRecord } from "./task_store_contract.ts";

const SHORT_LEASE_MS = 300;

/** Runs `fn` with stores on one fresh database, each a replica of its own. */
async function withReplicas(
  count: number,
  fn: (stores: PostgresTaskStore[]) => Promise<void>,
  leaseMs = SHORT_LEASE_MS,
): Promise<void> {
  const database = await freshDatabase();
  const stores = Array.from(
    { length: count },
    (_, i) => new PostgresTaskStore({ url: database.url, owner: `replica-${i}`, leaseMs }),
  );
  try {
    await fn(stores);
  } finally {
    for (const store of stores) await store.close();
    await database.drop();
  }
}

Deno.test("replicas opening at once apply each migration once", async () => {
  await withReplicas(6, async (stores) => {
    await Promise.all(stores.map((store) => store.open()));
    const rows = await stores[0]!.sql<{ version: number }[]>`
      SELECT version FROM flowstate_schema_version ORDER BY version`;
    assertEquals(rows.map((row) => row.version), MIGRATIONS.map((_, i) => i + 1));
  });
});

Deno.test("a task leased to another replica cannot be saved until its lease expires", async () => {
  await withReplicas(2, async ([a, b]) => {
    const first = await a!.save(makeRecord("t1", { status: "running" }), [logEvent("a")]);
    await assertRejects(() => b!.save(first, [logEvent("b")]), LeaseLostError, "lease");
    await delay(SHORT_LEASE_MS * 2);
    // Expired: taken over by a save built on the last commit.
    const taken = await b!.save({ ...first, pauseCount: 2 }, [logEvent("b")]);
    assertEquals(await b!.readEvents(taken), [logEvent("a"), logEvent("b")]);
    // The first replica's copy is stale now: its save is refused.
    await assertRejects(() => a!.save(first, [logEvent("late")]), LeaseLostError);
    assertEquals(await a!.readRecord("t1"), taken);
  });
});

Deno.test("a task last saved by another replica is not built on an older record", async () => {
  await withReplicas(2, async ([a, b]) => {
    const first = await a!.save(makeRecord("t1", { status: "completed" }), [logEvent("a")]);
    const second = await a!.save(first, [logEvent("a2")]);
    // Finished: no lease, but the older record is not the latest commit.
    await assertRejects(() => b!.save(first, [logEvent("b")]), LeaseLostError, "since");
    await b!.save({ ...second, status: "running" }, [logEvent("retried")]);
  });
});

Deno.test("expired leases are taken over by exactly one replica each", async () => {
  await withReplicas(4, async ([dead, ...alive]) => {
    const ids = Array.from({ length: 30 }, (_, i) => `t${i}`);
    await Promise.all(ids.map((id) => dead!.save(makeRecord(id, { status: "paused" }), [])));
    assertEquals(await alive[0]!.leases.claim(100, []), []);
    await delay(2_000);
    const claims = await Promise.all(alive.map((store) => store.leases.claim(100, [])));
    const claimed = claims.flat().map((record) => record.id).sort();
    assertEquals(claimed, [...ids].sort());
    assertEquals((await dead!.leases.renew(ids)).sort(), [...ids].sort());
  }, 1_000);
});

Deno.test("the owner's address is known while it holds the lease", async () => {
  await withReplicas(2, async ([a, b]) => {
    await a!.leases.heartbeat("http://127.0.0.1:9001");
    await a!.save(makeRecord("t1", { status: "paused" }), []);
    assertEquals(await b!.leases.ownerAddress("t1"), "http://127.0.0.1:9001");
    assertEquals(await a!.leases.ownerAddress("t1"), null);
    await a!.leases.release();
    assertEquals(await b!.leases.ownerAddress("t1"), null);
    assert((await b!.leases.claim(10, [])).some((record) => record.id === "t1"));
  }, 60_000);
});
