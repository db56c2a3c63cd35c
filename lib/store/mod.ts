/**
 * The store room: the {@link TaskStore} contract and its implementations. It imports no
 * QuickJS, only the engine's plain JSON types.
 *
 * @module
 */
export * from "./task_store.ts";
export * from "./file_task_store.ts";
export { MemoryTaskStore } from "./memory_task_store.ts";
export { type PostgresStoreOptions, PostgresTaskStore } from "./postgres_task_store.ts";
export { PostgresWebhookMarks } from "./postgres_webhook_marks.ts";
export * from "./webhook_marks.ts";
export { type DirectoryLock, DirectoryLockedError, lockDirectory } from "./dir_lock.ts";
export { decodeCursor, encodeCursor, isFinished } from "./task_index.ts";
