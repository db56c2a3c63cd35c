/**
 * A tiny structured logger: every call writes one line, by default JSON
 * `{"time":"<ISO>","level":"info","msg":"...",...fields}`, or in the `pretty` format a line
 * for humans at a terminal (`10:00:00.123 INFO  request method=GET status=200`). Debug and
 * info lines go to standard output, warnings and errors to standard error.
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

/** How lines are written: one JSON object per line, or text for humans. */
export type LogFormat = "json" | "pretty";

/** Every accepted {@link LogFormat}. */
export const LOG_FORMATS: readonly LogFormat[] = ["json", "pretty"];

/** Whether `value` is a log format name. */
export function isLogFormat(value: unknown): value is LogFormat {
  return LOG_FORMATS.includes(value as LogFormat);
}

/** A level that writes lines (every level but `silent`). */
export type WrittenLevel = Exclude<LogLevelName, "silent">;

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
  /** `json` (default) or `pretty`. */
  format?: LogFormat;
  /** Colour the level in `pretty` lines (ANSI). Default `false`. */
  color?: boolean;
  /**
   * Receives each line without its newline, with its level. Default: standard output for
   * `debug` and `info`, standard error for `warn` and `error`.
   */
  write?: (line: string, level: WrittenLevel) => void;
}

/** Whether `value` is a log level name. */
export function isLogLevel(value: unknown): value is LogLevelName {
  return LOG_LEVELS.includes(value as LogLevelName);
}

/** Names the logger sets itself; fields with these names are prefixed with `field.`. */
const RESERVED_KEYS = new Set(["time", "level", "msg"]);

/** Writes debug and info to standard output, warnings and errors to standard error. */
function writeStd(line: string, level: WrittenLevel): void {
  if (level === "warn" || level === "error") console.error(line);
  else console.log(line);
}

/** Creates a logger writing lines at or above `level`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level ?? "info");
  const write = options.write ?? writeStd;
  const color = options.color ?? false;
  const format = options.format === "pretty"
    ? (level: WrittenLevel, msg: string, fields: LogFields) =>
      formatPretty(level, msg, fields, color)
    : formatLine;
  return makeLogger({ threshold, write, format }, {});
}

interface Sink {
  threshold: number;
  write: (line: string, level: WrittenLevel) => void;
  format: (level: WrittenLevel, msg: string, fields: LogFields) => string;
}

function makeLogger(sink: Sink, base: LogFields): Logger {
  const emit = (level: WrittenLevel, msg: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(level) < sink.threshold) return;
    try {
      sink.write(sink.format(level, msg, { ...base, ...fields }), level);
    } catch {
      // A logger must never break its caller.
    }
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    child: (fields) => makeLogger(sink, { ...base, ...fields }),
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

const ANSI: Record<WrittenLevel, string> = {
  debug: "\x1b[90m",
  info: "\x1b[36m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
};

/**
 * Formats one line for humans: local time of day, the level, the message, then the fields
 * as `key=value` (strings bare when they have no space or quote, JSON otherwise). Never
 * throws.
 */
export function formatPretty(
  level: WrittenLevel,
  msg: unknown,
  fields: LogFields,
  color = false,
): string {
  const now = new Date();
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const time = `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${
    pad(now.getMilliseconds(), 3)
  }`;
  const name = level.toUpperCase().padEnd(5);
  const parts = [
    time,
    color ? `${ANSI[level]}${name}\x1b[0m` : name,
    typeof msg === "string" ? msg : safeString(msg),
  ];
  for (const key of Object.keys(fields)) {
    if (fields[key] === undefined) continue;
    const value = serializable(fields[key]);
    const text = typeof value === "string" && /^[^\s"=]+$/.test(value)
      ? value
      : JSON.stringify(value) ?? safeString(value);
    parts.push(`${key}=${text}`);
  }
  return parts.join(" ");
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
