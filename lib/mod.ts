/**
 * FetchFlow: run JavaScript in a QuickJS sandbox that pauses at every `fetch()` and resumes
 * anywhere, even in a fresh process, from a plain-JSON state.
 *
 * ```ts
 * import { executeCode, resumeExecution } from "./lib/mod.ts";
 *
 * const paused = await executeCode(`const r = await fetch("https://example.com/x"); await r.json()`);
 * // ... perform paused.fetchRequest yourself, then:
 * const done = await resumeExecution(paused.state!, {
 *   id: paused.fetchRequest!.id, success: true, status: 200, statusText: "OK", data: { a: 1 },
 * });
 * done.result; // { a: 1 }
 * ```
 *
 * @module
 */
export { ENGINE_DEFAULTS, executeCode, FetchVM, resumeExecution } from "./engine/mod.ts";
export type { ResolvedEngineOptions } from "./engine/mod.ts";
export { ExecutionError } from "./engine/mod.ts";
export type { ExecutionErrorJson, ExecutionErrorKind } from "./engine/mod.ts";
export type * from "./engine/mod.ts";
