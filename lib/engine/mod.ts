/**
 * The engine room: QuickJS, the guest world, the journal, replay and limits. It imports
 * nothing of the server (no HTTP edge, task service, store or outbound fetching), so the
 * engine runs as a library on its own; `lib/mod.ts` is its public face.
 *
 * @module
 */
export * from "./fetch_vm.ts";
export * from "./execution_error.ts";
export * from "./body_bytes.ts";
export type * from "./types.ts";
