import type { LogEntry } from "./types.ts";

/**
 * The one error the engine rejects with: a guest exception, a syntax error, a broken
 * limit, or a replay that does not match its journal.
 *
 * @module
 */

/** What went wrong, as a machine-readable word. */
export type ExecutionErrorKind =
  | "exception"
  | "syntax"
  | "timeout"
  | "memory"
  | "stack"
  | "nondeterminism"
  | "limit"
  | "deadlock"
  | "stale"
  | "internal";

/** Serializable form of an {@link ExecutionError}. */
export interface ExecutionErrorJson {
  kind: ExecutionErrorKind;
  name: string;
  message: string;
  stack?: string;
}

/**
 * Why an execution could not go on. `message` is the guest error's message (or the
 * engine's explanation), `guestName` the guest error's name (`TypeError`,
 * `InternalError`...), `guestStack` the guest stack with file and line.
 */
export class ExecutionError extends Error {
  override name = "ExecutionError";
  /** The failure mode. */
  readonly kind: ExecutionErrorKind;
  /** Name of the guest error (`TypeError`...) or of the engine condition. */
  readonly guestName: string;
  /** Guest stack trace (`at f (task.js:3)`), empty when there is none. */
  readonly guestStack: string;
  /** Console lines the guest wrote in the failing run segment before it failed. */
  logs: LogEntry[] = [];

  constructor(
    kind: ExecutionErrorKind,
    guestName: string,
    message: string,
    options?: { guestStack?: string; cause?: unknown },
  ) {
    super(message, { cause: options?.cause });
    this.kind = kind;
    this.guestName = guestName;
    this.guestStack = trimStack(options?.guestStack ?? "");
    if (this.guestStack) this.stack = `${guestName}: ${message}\n${this.guestStack}`;
  }

  /** `{ kind, name, message, stack? }`, the shape the server stores. */
  toJSON(): ExecutionErrorJson {
    const json: ExecutionErrorJson = {
      kind: this.kind,
      name: this.guestName,
      message: this.message,
    };
    if (this.guestStack) json.stack = this.guestStack;
    return json;
  }
}

/** Longest guest stack kept, in frames (deep recursion would otherwise give thousands). */
const MAX_STACK_FRAMES = 20;

function trimStack(stack: string): string {
  const lines = stack.split("\n").filter((line) => line.trim() !== "");
  if (lines.length <= MAX_STACK_FRAMES) return lines.join("\n");
  const head = lines.slice(0, MAX_STACK_FRAMES - 2);
  const tail = lines.slice(-1);
  return [...head, `    ... ${lines.length - head.length - tail.length} more frames`, ...tail].join(
    "\n",
  );
}
