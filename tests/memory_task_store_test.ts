import { MemoryTaskStore } from "../lib/store/memory_task_store.ts";
import { testTaskStoreContract } from "./task_store_contract.ts";

testTaskStoreContract(
  "MemoryTaskStore",
  () => Promise.resolve({ store: new MemoryTaskStore(), cleanup: () => Promise.resolve() }),
);
