/**
 * A tiny structured logger: every call writes one JSON line
 * `{"time":"<ISO>","level":"info","msg":"...",...fields}`.
 *
 * Logging never throws: a field that cannot be serialized (a cycle, a BigInt, a getter
 * that throws) is replaced by a string, and a failing writer is ignored.
 *
 * @module
 */

/** Severity of a log line, lowest first; `silent` turns logging off. */
export type LogLevelName = "debug" | "info" | "warn" | "error" | "silent";

/** Every accepted {@link LogLevelName}, lowest first. */
export const LOG_LEVELS: readonly LogLevelName[] = ["debug", "info", "warn", "error", "silent"];

/** Extra structured fields of a log line. */
export type LogFields = Record<string, unknown>;

/** Writes structured log lines. */
export interface Logger {
  /** Logs at `debug`. */
  debug(msg: string, fields?: LogFields): void;
  /** Logs at `info`. */
  info(msg: string, fields?: LogFields): void;
  /** Logs at `warn`. */
  warn(msg: string, fields?: LogFields): void;
  /** Logs at `error`. */
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line (call-site fields win on conflicts). */
  child(fields: LogFields): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lines below this level are dropped. Default `"info"`. */
  level?: LogLevelName;
  /** Receives each line without its newline. Default: standard output. */
  write?: (line: string) => void;
}

/** Whether `value` is a log level name. */
export function isLogLevel(value: unknown): value is LogLevelName {
  return LOG_LEVELS.includes(value as LogLevelName);
}

/** Names the logger sets itself; fields with these names are prefixed with `field.`. */
const RESERVED_KEYS = new Set(["time", "level", "msg"]);

/** Creates a logger writing JSON lines at or above `level`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level ?? "info");
  const write = options.write ?? ((line: string) => console.log(line));
  return makeLogger(threshold, write, {});
}

function makeLogger(threshold: number, write: (line: string) => void, base: LogFields): Logger {
  const emit = (level: Exclude<LogLevelName, "silent">, msg: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    try {
      write(formatLine(level, msg, { ...base, ...fields }));
    } catch {
      // A logger must never break its caller.
    }
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    child: (fields) => makeLogger(threshold, write, { ...base, ...fields }),
  };
}

/** Formats one line; exported for tests. Never throws. */
export function formatLine(level: string, msg: unknown, fields: LogFields): string {
  const line: LogFields = {
    time: new Date().toISOString(),
    level,
    msg: typeof msg === "string" ? msg : safeString(msg),
  };
  for (const key of Object.keys(fields)) {
    if (fields[key] === undefined) continue;
    const name = RESERVED_KEYS.has(key) ? `field.${key}` : key;
    line[name] = serializable(fields[key]);
  }
  return JSON.stringify(line);
}

/** Returns `value` if it serializes, else a JSON-safe replacement. */
function serializable(value: unknown): unknown {
  try {
    const text = JSON.stringify(value, replacer());
    return text === undefined ? safeString(value) : JSON.parse(text);
  } catch {
    return safeString(value);
  }
}

/** A replacer that expands errors, stringifies BigInts and marks cycles. */
function replacer(): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: object[] = [];
  return function (this: unknown, _key: string, value: unknown): unknown {
    if (typeof value === "bigint") return value.toString();
    if (typeof value !== "object" || value === null) return value;
    // `this` is the object holding `value`; drop ancestors that are no longer on the path.
    while (ancestors.length > 0 && ancestors.at(-1) !== this) ancestors.pop();
    if (ancestors.includes(value)) return "[Circular]";
    ancestors.push(value);
    if (value instanceof Error) {
      const out: LogFields = { name: value.name, message: value.message, stack: value.stack };
      if (value.cause !== undefined) out.cause = value.cause;
      ancestors.push(out);
      return out;
    }
    return value;
  };
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return "[unserializable]";
  }
}
