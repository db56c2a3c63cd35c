/**
 * Engine limits: the defaults of every {@link EngineOptions} field, filling them in, and the
 * checks a run applies to code size.
 *
 * @module
 */
import { ExecutionError } from "./execution_error.ts";
import type { EngineOptions } from "./types.ts";

/** Defaults of every {@link EngineOptions} limit. */
export const ENGINE_DEFAULTS = {
  variant: "asyncify",
  timeLimitMs: 5_000,
  memoryLimitBytes: 64 * 1024 * 1024,
  maxStackBytes: 256 * 1024,
  maxCodeBytes: 1024 * 1024,
  maxPendingFetches: 100,
  maxTimers: 10_000,
  maxJournalEntries: 20_000,
  maxJournalBytes: 64 * 1024 * 1024,
  maxLogEntries: 1_000,
  maxResultBytes: 4 * 1024 * 1024,
  vmImages: true,
} as const satisfies Required<Omit<EngineOptions, "globals" | "id">>;

/** Engine options with every default filled in. */
export type ResolvedEngineOptions = Required<Omit<EngineOptions, "globals" | "id">>;

const encoder = new TextEncoder();

/** Fills defaults into `options`. */
export function resolveEngineOptions(options: EngineOptions = {}): ResolvedEngineOptions {
  const resolved = { ...ENGINE_DEFAULTS } as ResolvedEngineOptions;
  for (const key of Object.keys(ENGINE_DEFAULTS) as (keyof ResolvedEngineOptions)[]) {
    const value = options[key];
    if (value !== undefined) (resolved as Record<string, unknown>)[key] = value;
  }
  if (resolved.variant !== "asyncify" && resolved.variant !== "sync") {
    throw new TypeError(
      `Cannot use engine variant "${resolved.variant}": use "asyncify" or "sync"`,
    );
  }
  return resolved;
}

/** An {@link ExecutionError} of kind `limit`. */
export function limitError(message: string): ExecutionError {
  return new ExecutionError("limit", "LimitError", message);
}

/** Size of `text` in UTF-8 bytes. */
export function utf8Bytes(text: string): number {
  return encoder.encode(text).length;
}

/** Throws a `limit` error when `code` is larger than `maxCodeBytes`. */
export function checkCodeSize(code: string, maxCodeBytes: number): void {
  const bytes = utf8Bytes(code);
  if (bytes > maxCodeBytes) {
    throw limitError(`The code is ${bytes} bytes, more than the limit of ${maxCodeBytes}`);
  }
}
