import { PostgresTaskStore } from "../lib/store/postgres_task_store.ts";
import { testTaskStoreContract } from "./task_store_contract.ts";
import { freshDatabase } from "../testing/postgres.ts";

testTaskStoreContract("PostgresTaskStore", async () => {
  const database = await freshDatabase();
  const owner = crypto.randomUUID();
  const open = () => new PostgresTaskStore({ url: database.url, owner, leaseMs: 30_000 });
  return { store: open(), reopen: open, cleanup: () => database.drop() };
});
