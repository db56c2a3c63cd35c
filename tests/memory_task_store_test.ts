import { MemoryTaskStore } from "../lib/store/memory_task_store.ts";
import { testTaskStoreContract } from "./task_store_contract.ts";

testTaskStoreContract("MemoryTaskStore", () => {
  const store = new MemoryTaskStore();
  // A memory store outlives no process: reopening it is opening it again.
  return Promise.resolve({ store, reopen: () => store, cleanup: () => Promise.resolve() });
});
