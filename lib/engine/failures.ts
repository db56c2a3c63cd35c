/**
 * How a failure of a run is classified: a guest exception, a stack overflow, a memory
 * exhaustion (which QuickJS sometimes reports as an empty error), or a host failure of the
 * VM itself.
 *
 * @module
 */
import { ExecutionError, type ExecutionErrorKind } from "./execution_error.ts";
import type { GuestErrorInfo } from "./host_bridge.ts";

/** Share of the memory cap above which a stuck script is taken to have run out of memory. */
const NEAR_MEMORY_CAP = 0.9;

/** The VM facts a classification needs. */
export interface FailureContext {
  memoryLimitBytes: number;
  maxStackBytes: number;
  /** The VM's WebAssembly memory, to tell a memory exhaustion apart. */
  memory: WebAssembly.Memory | null;
}

/** Maps a guest error to its kind. */
export function guestFailure(info: GuestErrorInfo, vm: FailureContext): ExecutionError {
  let kind: ExecutionErrorKind = "exception";
  let message = info.message;
  // Out of memory sometimes surfaces as a bare `null` thrown (QuickJS could not allocate the
  // error object itself): near the cap, an empty error is a memory exhaustion.
  const bare = info.message === "" || info.message === "null" ||
    info.message === "[unprintable error]";
  if (/out of memory/i.test(info.message) || (bare && nearMemoryCap(vm))) {
    return memoryError(vm, info.stack);
  } else if (info.name === "InternalError" && /stack overflow/i.test(info.message)) {
    kind = "stack";
    message = `Maximum call stack size exceeded (stack limit ${vm.maxStackBytes} bytes)`;
  }
  return new ExecutionError(kind, info.name, message, { guestStack: info.stack });
}

/** The error of a script that ran out of memory. */
export function memoryError(vm: FailureContext, guestStack = ""): ExecutionError {
  return new ExecutionError(
    "memory",
    "InternalError",
    `The script ran out of memory (limit ${vm.memoryLimitBytes} bytes)`,
    { guestStack },
  );
}

/** Whether the VM's memory has grown to (nearly) its cap. */
export function nearMemoryCap(vm: FailureContext): boolean {
  return vm.memory !== null &&
    vm.memory.buffer.byteLength >= vm.memoryLimitBytes * NEAR_MEMORY_CAP;
}

/** Turns anything thrown on the host while running into an {@link ExecutionError}. */
export function classifyHostError(error: unknown): ExecutionError {
  if (error instanceof ExecutionError) return error;
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (error instanceof RangeError && /call stack/i.test(error.message)) {
    // QuickJS recursing in C (e.g. JSON.stringify of data nested thousands of levels deep)
    // exhausts the host stack before its own stack check fires.
    return new ExecutionError(
      "stack",
      "InternalError",
      "The script nested data or calls too deeply for the engine (host stack exhausted)",
      { cause: error },
    );
  }
  if (/memory/i.test(text)) {
    return new ExecutionError("memory", "RangeError", `The VM ran out of memory: ${text}`, {
      cause: error,
    });
  }
  return new ExecutionError("internal", "Error", `The VM failed: ${text}`, { cause: error });
}
