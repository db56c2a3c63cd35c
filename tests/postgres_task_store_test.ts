import { assert, assertEquals, assertRejects } from "@std/assert";
import { ConflictError } from "../lib/errors.ts";
import type { TaskEvent } from "../lib/store/task_store.ts";
import { PostgresTaskStore } from "../lib/store/postgres_task_store.ts";
import { makeRecord, testTaskStoreContract } from "./task_store_contract.ts";
import { freshDatabase } from "../testing/postgres.ts";

testTaskStoreContract("PostgresTaskStore", async () => {
  const database = await freshDatabase();
  const owner = crypto.randomUUID();
  const open = () => new PostgresTaskStore({ url: database.url, owner, leaseMs: 30_000 });
  return { store: open(), reopen: open, cleanup: () => database.drop() };
});

Deno.test("PostgresTaskStore with an encryption key seals request and response secrets in the database and reads them back in clear", async () => {
  const database = await freshDatabase();
  const open = (encryptionKey: string) =>
    new PostgresTaskStore({ url: database.url, owner: "r", leaseMs: 30_000, encryptionKey });
  const store = open("sealing-key-0123456789");
  const wrong = open("another-key-0123456789");
  try {
    const request: TaskEvent = {
      type: "request",
      step: 0,
      index: 0,
      request: {
        id: "r1",
        url: "https://api.example.com/charge",
        options: {
          method: "POST",
          headers: { authorization: "Bearer sk-live-9" },
          body: "card=42",
        },
        timestamp: 1_700_000_000_000,
      },
    };
    const pending = request.type === "request" ? request.request : undefined!;
    let record = await store.save(makeRecord("t1", { pending: [pending] }), [request]);
    assertEquals(record.pending, [pending]);
    const response: TaskEvent = {
      type: "response",
      step: 1,
      at: 1_700_000_000_500,
      response: {
        id: "r1",
        success: true,
        status: 200,
        headers: { "set-cookie": "sid=upstream-secret" },
        body: '{"receipt":"rc-77"}',
        data: { receipt: "rc-77" },
        timestamp: 1_700_000_000_400,
      },
    };
    record = await store.save({ ...record, pending: [], pauseCount: 2 }, [response]);
    const rows = await store.sql<{ text: string }[]>`
      SELECT record AS text FROM flowstate_tasks UNION ALL SELECT line FROM flowstate_journal`;
    for (const { text } of rows) {
      for (const secret of ["sk-live-9", "card=42", "sid=upstream-secret", "rc-77"]) {
        assert(!text.includes(secret), `the database holds ${secret}: ${text}`);
      }
    }
    assertEquals(await store.readRecord("t1"), record);
    assertEquals(await store.readEvents(record), [request, response]);
    assertEquals((await store.loadAll()).tasks, [record]);
    await assertRejects(() => wrong.readEvents(record), ConflictError, "JOURNAL_ENCRYPTION_KEY");
  } finally {
    await store.close();
    await wrong.close();
    await database.drop();
  }
});
