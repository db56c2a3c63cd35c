/**
 * Server configuration from environment variables.
 *
 * {@link CONFIG_DOC} lists every variable with its default and meaning; the README table is
 * generated from it and a test checks that {@link loadConfig} reads nothing else.
 *
 * @module
 */
import { parseAllowEntry } from "./outbound/mod.ts";
import { parseOrigin } from "./http/mod.ts";
import {
  isLogFormat,
  isLogLevel,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevelName,
} from "./log.ts";
import type { EngineOptions, Variant } from "./engine/mod.ts";

/** The validated configuration of the server. */
export interface Config {
  /** `PORT`: port to listen on (0 picks a free one). */
  port: number;
  /** `HOST`: interface to listen on; loopback unless set or a token is. */
  host: string;
  /** `ALLOWED_HOSTS`: host names served besides loopback names, IPs and `HOST`. */
  allowedHosts: string[];
  /** `ALLOWED_ORIGINS`: origins allowed to send unsafe requests cross-site. */
  allowedOrigins: string[];
  /**
   * `CALL_ENDPOINT`: where fetch responses are POSTed back to; `undefined` for this server's
   * own `/call` at the port it listens on.
   */
  callEndpoint: string | undefined;
  /** `STATES_DIR`: directory of persisted tasks. */
  statesDir: string;
  /** `DATABASE_URL`: the PostgreSQL database of the tasks; `undefined` for `STATES_DIR`. */
  databaseUrl: string | undefined;
  /** `REPLICA_ID`: this replica's id in a cluster; `undefined` for a random one per start. */
  replicaId: string | undefined;
  /**
   * `REPLICA_URL`: the origin the other replicas forward this replica's tasks' requests to;
   * `undefined` for `http://localhost:<port listened on>`.
   */
  replicaUrl: string | undefined;
  /** `LEASE_MS`: how long a replica's hold on a task lasts without being renewed. */
  leaseMs: number;
  /** `TASKS_DIR`: directory of named task definitions (`<name>.js`). */
  tasksDir: string;
  /** `JOURNAL_KEY`: secret that signs every journal line; unset = no integrity check. */
  journalKey: string | undefined;
  /** `JOURNAL_ENCRYPTION_KEY`: secret that seals request and response data at rest. */
  journalEncryptionKey: string | undefined;
  /** `FLOWSTATE_TOKEN`: bearer token required by every route but `/health`; unset = no auth. */
  token: string | undefined;
  /** `AUTO_FETCH`: whether the server performs the fetches of paused tasks itself. */
  autoFetch: boolean;
  /** `MAX_BODY_BYTES`: largest accepted request body. */
  maxBodyBytes: number;
  /** `HEADERS_TIMEOUT_MS`: time a client has to send a request's line and headers. */
  headersTimeoutMs: number;
  /** `BODY_TIMEOUT_MS`: time a client has to send a request's body after its headers. */
  bodyTimeoutMs: number;
  /** `MAX_CONNECTIONS`: most client connections open at once. */
  maxConnections: number;
  /** `FETCH_TIMEOUT_MS`: time limit of one outbound fetch, body included. */
  fetchTimeoutMs: number;
  /** `FETCH_MAX_BYTES`: largest accepted outbound response body. */
  fetchMaxBytes: number;
  /**
   * `FETCH_BODY_PART_MS`: a response whose body is not complete this long after its headers
   * reaches the task in parts, at most one per this many ms; 0: always whole.
   */
  fetchBodyPartMs: number;
  /** `FETCH_ALLOW`: host names, IPs and CIDRs exempt from the egress policy. */
  fetchAllow: string[];
  /** `FETCH_DENY_PRIVATE`: also refuse loopback and private addresses. */
  fetchDenyPrivate: boolean;
  /** `WORKERS`: number of engine processes. */
  workers: number;
  /** `LIVE_VMS`: live paused VMs kept per engine process. */
  liveVms: number;
  /** `LIVE_VM_MB`: memory of the live paused VMs of all engine processes, in MiB. */
  liveVmMb: number;
  /** `FSYNC`: fsync state files and their directory on every save. */
  fsync: boolean;
  /** `LOG_LEVEL`: lowest level logged. */
  logLevel: LogLevelName;
  /** `LOG_FORMAT`: `json` lines, or `pretty` text for humans. */
  logFormat: LogFormat;
  /** `TIME_LIMIT_MS`: CPU time per run segment. */
  timeLimitMs: number;
  /** `TIME_LIMIT_GRACE_MS`: time past the limit before the server kills a segment. */
  timeLimitGraceMs: number;
  /**
   * On SIGTERM/SIGINT, how long outbound requests already sent may take to finish and be
   * delivered before the server stops (those still running are sent again after the restart).
   */
  shutdownGraceMs: number;
  /** `TASK_CPU_BUDGET_MS`: CPU time a task's segments may use in all. */
  taskCpuBudgetMs: number;
  /** `MAX_LOG_BYTES`: console output a task keeps in all. */
  maxLogBytes: number;
  /** `GUEST_LOG_RATE`: guest console lines copied to the server log per second. */
  guestLogRate: number;
  /** `FETCH_INFLIGHT_MB`: response bytes read and not yet delivered, server-wide, MiB. */
  fetchInflightMb: number;
  /** `FETCH_TASK_INFLIGHT_MB`: the same per task, MiB. */
  fetchTaskInflightMb: number;
  /** `MEMORY_LIMIT_MB`: VM memory limit, in MiB. */
  memoryLimitMb: number;
  /** `STACK_BYTES`: guest stack size. */
  stackBytes: number;
  /** `MAX_CODE_BYTES`: largest accepted task code (UTF-8). */
  maxCodeBytes: number;
  /** `MAX_PENDING_FETCHES`: most fetches pending at once per task (later ones wait). */
  maxPendingFetches: number;
  /** `MAX_FETCHES`: most fetches per task over its life. */
  maxFetches: number;
  /** `MAX_JOURNAL_BYTES`: largest journal per task, bytes of JSON. */
  maxJournalBytes: number;
  /** `MAX_LOG_ENTRIES`: most console lines kept per task. */
  maxLogEntries: number;
  /** `ENGINE_VARIANT`: QuickJS build. */
  engineVariant: Variant;
  /** `SELF_POST_RETRIES`: attempts at POSTing a fetch response to `/call` before giving up. */
  selfPostRetries: number;
  /** `WEBHOOK_SECRET`: key of the HMAC-SHA256 signature of webhook deliveries; unset = none. */
  webhookSecret: string | undefined;
  /** `WEBHOOK_ATTEMPTS`: attempts at delivering one webhook before giving up. */
  webhookAttempts: number;
  /** `WEBHOOK_BACKOFF_MS`: delay before the first webhook retry (doubles, capped). */
  webhookBackoffMs: number;
  /** `RETAIN_FINISHED`: how long finished tasks are kept, ms; `undefined` = forever. */
  retainFinishedMs: number | undefined;
}

/** One documented environment variable. */
export interface ConfigDocEntry {
  /** Variable name. */
  name: string;
  /** Default, as shown in the README. */
  default: string;
  /** What it does. */
  description: string;
}

const DAY_MS = 86_400_000;
const KIB = 1024;
const MIB = 1024 * KIB;
/** Largest delay a timer accepts (2^31 - 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;
/** Largest memory a 32-bit WebAssembly VM can address, in MiB. */
const MAX_WASM_MEMORY_MB = 4096;
const VARIANTS: readonly Variant[] = ["asyncify", "sync"];
const TRUE_WORDS = new Set(["true", "1", "yes"]);
const FALSE_WORDS = new Set(["false", "0", "no"]);

/** Default number of workers: the CPU count, at least 1. */
function defaultWorkers(): number {
  const cpus = globalThis.navigator?.hardwareConcurrency;
  return typeof cpus === "number" && Number.isInteger(cpus) && cpus >= 1 ? cpus : 1;
}

/** Every environment variable {@link loadConfig} reads, for the README table. */
export const CONFIG_DOC: readonly ConfigDocEntry[] = [
  { name: "PORT", default: "8080", description: "Port to listen on." },
  {
    name: "HOST",
    default: "127.0.0.1 (0.0.0.0 with FLOWSTATE_TOKEN)",
    description:
      "Interface to listen on. Without a token the server listens on loopback only unless " +
      "HOST is set (the container image sets `0.0.0.0`).",
  },
  {
    name: "ALLOWED_HOSTS",
    default: "(empty; `*` with FLOWSTATE_TOKEN)",
    description:
      "Comma-separated `Host` names served besides loopback names, IP addresses, `HOST` and " +
      "the host of `CALL_ENDPOINT`: `name`, `.domain` (and its subdomains) or `*` (any); " +
      "others get 403 (DNS rebinding).",
  },
  {
    name: "ALLOWED_ORIGINS",
    default: "(empty)",
    description:
      "Comma-separated origins (`https://app.example`) whose pages may send POSTs cross-site; " +
      "other cross-site requests get 403.",
  },
  {
    name: "CALL_ENDPOINT",
    default: "http://localhost:<port listened on>/call",
    description:
      "URL fetch responses are POSTed to (this server's `/call`; by default at the port it " +
      "really listens on, also with `PORT=0`).",
  },
  { name: "STATES_DIR", default: "./states", description: "Directory of persisted tasks." },
  {
    name: "DATABASE_URL",
    default: "(unset)",
    description: "A `postgres://` URL: tasks are kept in that PostgreSQL database instead of " +
      "`STATES_DIR`, and several replicas may share it (see PostgreSQL mode). Not combined " +
      "with `JOURNAL_KEY` (`JOURNAL_ENCRYPTION_KEY` does apply).",
  },
  {
    name: "REPLICA_ID",
    default: "(random per start)",
    description:
      "With `DATABASE_URL`: this replica's id, the owner of its task leases. A replica " +
      "restarted with the same id takes its tasks back at once instead of after `LEASE_MS`.",
  },
  {
    name: "REPLICA_URL",
    default: "http://localhost:<port listened on>",
    description:
      "With `DATABASE_URL`: the origin the other replicas forward the requests for this " +
      "replica's tasks to (`/call`, `/signal`, cancel, retry, delete); its host is served " +
      "like those of `ALLOWED_HOSTS`.",
  },
  {
    name: "LEASE_MS",
    default: "10000",
    description:
      "With `DATABASE_URL`: how long a replica holds a task without renewing its lease " +
      "(renewed every third of it); the tasks of a replica that died are taken over by the " +
      "others within about 1.4 times this.",
  },
  {
    name: "TASKS_DIR",
    default: "./tasks",
    description: "Directory of named task definitions (`<name>.js`).",
  },
  {
    name: "FLOWSTATE_TOKEN",
    default: "(unset)",
    description:
      "Bearer token required by every route but `/health`; unset or empty disables auth.",
  },
  {
    name: "JOURNAL_KEY",
    default: "(unset)",
    description:
      "Secret (16+ visible ASCII characters) that signs every journal line (HMAC-SHA256, " +
      "chained); a task whose journal was edited is refused at startup. Journals written " +
      "without it then fail the check.",
  },
  {
    name: "JOURNAL_ENCRYPTION_KEY",
    default: "(unset)",
    description:
      "Random secret (16+ visible ASCII characters, e.g. `openssl rand -base64 32`): request " +
      "headers and bodies and response headers, bodies and data are sealed with AES-256-GCM " +
      "in the journal and in the record's `pending`.",
  },
  {
    name: "AUTO_FETCH",
    default: "true",
    description: "Perform the fetches of paused tasks and resume them automatically.",
  },
  { name: "MAX_BODY_BYTES", default: "1048576", description: "Largest accepted request body." },
  {
    name: "HEADERS_TIMEOUT_MS",
    default: "10000",
    description:
      "Time a client has to send a request's line and headers (from the connection's opening " +
      "for its first request); slower connections are closed (408 when nothing was answered).",
  },
  {
    name: "BODY_TIMEOUT_MS",
    default: "30000",
    description: "Time a client has to send a request's body once its headers are in.",
  },
  {
    name: "MAX_CONNECTIONS",
    default: "1024",
    description: "Most client connections open at once; more are answered 503 and closed.",
  },
  {
    name: "FETCH_TIMEOUT_MS",
    default: "30000",
    description: "Time limit of one outbound fetch, reading the body included.",
  },
  {
    name: "FETCH_MAX_BYTES",
    default: "10485760",
    description: "Largest accepted outbound response body.",
  },
  {
    name: "FETCH_BODY_PART_MS",
    default: "250",
    description:
      "A response whose body is not complete this long after its headers reaches the task in parts: its status, headers and the bytes so far, then the bytes that came since, at most once per this many ms (`0`: only whole responses).",
  },
  {
    name: "FETCH_INFLIGHT_MB",
    default: "256",
    description:
      "Response bytes read and not yet delivered to their tasks, server-wide, in MiB; reading " +
      "waits beyond it (the oldest response always proceeds).",
  },
  {
    name: "FETCH_TASK_INFLIGHT_MB",
    default: "64",
    description: "The same per task, in MiB.",
  },
  {
    name: "FETCH_ALLOW",
    default: "(empty)",
    description: "Comma-separated host names, IPs and CIDRs exempt from the egress policy.",
  },
  {
    name: "FETCH_DENY_PRIVATE",
    default: "false",
    description:
      "Also refuse fetches to every address that is not global unicast: loopback, private, " +
      "carrier-grade NAT, unique and site local, reserved, benchmarking and documentation ranges.",
  },
  {
    name: "WORKERS",
    default: "CPU count",
    description: "Number of engine processes (min 1).",
  },
  {
    name: "LIVE_VMS",
    default: "256",
    description: "Live paused VMs kept in memory per engine process.",
  },
  {
    name: "LIVE_VM_MB",
    default: "1024",
    description:
      "Memory of the live paused VMs of all engine processes together, in MiB; beyond it the " +
      "least recently used are dropped (and replayed from their journal when resumed).",
  },
  {
    name: "FSYNC",
    default: "true",
    description:
      "Flush the journal (fdatasync) on every save, and a new task's record and directory.",
  },
  {
    name: "LOG_LEVEL",
    default: "info",
    description: `Lowest level logged: ${LOG_LEVELS.join(", ")}.`,
  },
  {
    name: "LOG_FORMAT",
    default: "json",
    description: "`json` (one object per line) or `pretty` (text for a terminal).",
  },
  { name: "TIME_LIMIT_MS", default: "5000", description: "CPU time allowed per run segment." },
  {
    name: "TIME_LIMIT_GRACE_MS",
    default: "1000",
    description: "Time a segment may run past `TIME_LIMIT_MS` (inside a built-in QuickJS cannot " +
      "interrupt) before the server kills its engine process; the task fails with kind " +
      "`timeout`.",
  },
  {
    name: "SHUTDOWN_GRACE_MS",
    default: "5000",
    description: "On SIGTERM/SIGINT, how long outbound requests already sent may run to " +
      "finish; their responses are delivered before the stop, so a routine restart sends none " +
      "of them twice. Requests still running then are sent again after the restart.",
  },
  {
    name: "TASK_CPU_BUDGET_MS",
    default: "60000",
    description:
      "CPU time a task's segments may use in all (journal replays not counted); the segment " +
      "that crosses it fails the task with kind `timeout`. `POST /retry` starts a new budget.",
  },
  { name: "MEMORY_LIMIT_MB", default: "64", description: "Memory limit of a VM, in MiB." },
  { name: "STACK_BYTES", default: "262144", description: "Guest stack size, in bytes." },
  {
    name: "MAX_CODE_BYTES",
    default: "1048576",
    description: "Largest accepted task code, UTF-8 bytes.",
  },
  {
    name: "MAX_PENDING_FETCHES",
    default: "100",
    description: "Most fetches pending at once per task; later ones wait their turn.",
  },
  { name: "MAX_FETCHES", default: "10000", description: "Most fetches per task over its life." },
  {
    name: "MAX_JOURNAL_BYTES",
    default: "67108864",
    description: "Largest journal per task, bytes of JSON.",
  },
  { name: "MAX_LOG_ENTRIES", default: "1000", description: "Most console lines kept per task." },
  {
    name: "MAX_LOG_BYTES",
    default: "1048576",
    description:
      "Console output a task keeps in its journal over its life, bytes; later lines are dropped " +
      "(counted in the record's `droppedLogLines`).",
  },
  {
    name: "GUEST_LOG_RATE",
    default: "100",
    description:
      "Guest console lines copied to the server log per second, server-wide; the rest are " +
      "counted in one warning.",
  },
  {
    name: "ENGINE_VARIANT",
    default: "asyncify",
    description: "QuickJS build: `asyncify` or `sync`.",
  },
  {
    name: "SELF_POST_RETRIES",
    default: "8",
    description:
      "Attempts at POSTing a fetch response to `/call` before it is delivered in-process instead.",
  },
  {
    name: "WEBHOOK_SECRET",
    default: "(unset)",
    description:
      "Key signing webhook deliveries (`FlowState-Signature`); `callbackUrl` is refused while unset.",
  },
  {
    name: "WEBHOOK_ATTEMPTS",
    default: "10",
    description: "Attempts at delivering one webhook before it is given up (logged as an error).",
  },
  {
    name: "WEBHOOK_BACKOFF_MS",
    default: "1000",
    description: "Delay before the first webhook retry; it doubles up to 5 minutes.",
  },
  {
    name: "RETAIN_FINISHED",
    default: "7d",
    description:
      "How long completed, error and cancelled tasks are kept after their last update, as a " +
      "number and a unit (`ms`, `s`, `m`, `h`, `d`: `90s`, `12h`, `30d`); a background sweep " +
      "removes older ones, record and journal. `forever` keeps them.",
  },
];

/** The README table of {@link CONFIG_DOC}, as Markdown. */
export function renderConfigTable(): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  const rows = CONFIG_DOC.map((e) =>
    `| \`${e.name}\` | ${cell(e.default)} | ${cell(e.description)} |`
  );
  return ["| Variable | Default | Description |", "| --- | --- | --- |", ...rows].join("\n");
}

type Env = Record<string, string | undefined>;

/**
 * Reads and validates the configuration. A bad value throws a `TypeError` (wrong form) or
 * `RangeError` (out of range) naming the variable and quoting the value.
 */
export function loadConfig(env: Env = Deno.env.toObject()): Config {
  const port = int(env, "PORT", 8080, 0, 65_535);
  const callEndpoint = url(env, "CALL_ENDPOINT");
  const fetchAllow = list(env, "FETCH_ALLOW");
  for (const entry of fetchAllow) {
    try {
      parseAllowEntry(entry);
    } catch (error) {
      throw new TypeError(`Invalid FETCH_ALLOW "${env.FETCH_ALLOW}": ${(error as Error).message}`);
    }
  }
  const allowedOrigins = list(env, "ALLOWED_ORIGINS");
  for (const entry of allowedOrigins) {
    try {
      parseOrigin(entry);
    } catch (error) {
      throw new TypeError(
        `Invalid ALLOWED_ORIGINS "${env.ALLOWED_ORIGINS}": ${(error as Error).message}`,
      );
    }
  }
  const secret = token(env, "FLOWSTATE_TOKEN");
  const databaseUrl = postgresUrl(env, "DATABASE_URL");
  if (databaseUrl !== undefined && raw(env, "JOURNAL_KEY")) {
    throw new TypeError(
      "DATABASE_URL cannot be combined with JOURNAL_KEY: the PostgreSQL store does not sign " +
        "journals (JOURNAL_ENCRYPTION_KEY does seal them)",
    );
  }
  return {
    port,
    host: text(env, "HOST", secret === undefined ? "127.0.0.1" : "0.0.0.0"),
    allowedHosts: raw(env, "ALLOWED_HOSTS") === undefined
      ? (secret === undefined ? [] : ["*"])
      : list(env, "ALLOWED_HOSTS"),
    allowedOrigins,
    callEndpoint,
    statesDir: text(env, "STATES_DIR", "./states"),
    databaseUrl,
    replicaId: replicaId(env, "REPLICA_ID"),
    replicaUrl: url(env, "REPLICA_URL"),
    leaseMs: int(env, "LEASE_MS", 10_000, 300, MAX_TIMER_MS),
    tasksDir: text(env, "TASKS_DIR", "./tasks"),
    token: secret,
    journalKey: journalKey(env, "JOURNAL_KEY"),
    journalEncryptionKey: journalKey(env, "JOURNAL_ENCRYPTION_KEY"),
    autoFetch: bool(env, "AUTO_FETCH", true),
    maxBodyBytes: int(env, "MAX_BODY_BYTES", MIB, 1),
    headersTimeoutMs: int(env, "HEADERS_TIMEOUT_MS", 10_000, 1, MAX_TIMER_MS),
    bodyTimeoutMs: int(env, "BODY_TIMEOUT_MS", 30_000, 1, MAX_TIMER_MS),
    maxConnections: int(env, "MAX_CONNECTIONS", 1024, 1),
    fetchTimeoutMs: int(env, "FETCH_TIMEOUT_MS", 30_000, 1, MAX_TIMER_MS),
    fetchMaxBytes: int(env, "FETCH_MAX_BYTES", 10 * MIB, 1),
    fetchBodyPartMs: int(env, "FETCH_BODY_PART_MS", 250, 0, MAX_TIMER_MS),
    fetchAllow,
    fetchDenyPrivate: bool(env, "FETCH_DENY_PRIVATE", false),
    workers: int(env, "WORKERS", defaultWorkers(), 1, 1024),
    liveVms: int(env, "LIVE_VMS", 256, 0),
    liveVmMb: int(env, "LIVE_VM_MB", 1024, 1),
    fsync: bool(env, "FSYNC", true),
    logLevel: oneOf(env, "LOG_LEVEL", "info", LOG_LEVELS, isLogLevel),
    logFormat: oneOf(env, "LOG_FORMAT", "json", LOG_FORMATS, isLogFormat),
    timeLimitMs: int(env, "TIME_LIMIT_MS", 5_000, 1, MAX_TIMER_MS),
    timeLimitGraceMs: int(env, "TIME_LIMIT_GRACE_MS", 1_000, 0, MAX_TIMER_MS),
    shutdownGraceMs: int(env, "SHUTDOWN_GRACE_MS", 5_000, 0, MAX_TIMER_MS),
    taskCpuBudgetMs: int(env, "TASK_CPU_BUDGET_MS", 60_000, 1),
    maxLogBytes: int(env, "MAX_LOG_BYTES", MIB, 0),
    guestLogRate: int(env, "GUEST_LOG_RATE", 100, 0),
    fetchInflightMb: int(env, "FETCH_INFLIGHT_MB", 256, 1),
    fetchTaskInflightMb: int(env, "FETCH_TASK_INFLIGHT_MB", 64, 1),
    memoryLimitMb: int(env, "MEMORY_LIMIT_MB", 64, 1, MAX_WASM_MEMORY_MB),
    stackBytes: int(env, "STACK_BYTES", 256 * KIB, 1 * KIB, 1024 * MIB),
    maxCodeBytes: int(env, "MAX_CODE_BYTES", MIB, 1),
    maxPendingFetches: int(env, "MAX_PENDING_FETCHES", 100, 1),
    maxFetches: int(env, "MAX_FETCHES", 10_000, 1),
    maxJournalBytes: int(env, "MAX_JOURNAL_BYTES", 64 * MIB, 1),
    maxLogEntries: int(env, "MAX_LOG_ENTRIES", 1_000, 0),
    engineVariant: oneOf(env, "ENGINE_VARIANT", "asyncify", VARIANTS, isVariant),
    selfPostRetries: int(env, "SELF_POST_RETRIES", 8, 0, 1_000),
    webhookSecret: token(env, "WEBHOOK_SECRET"),
    webhookAttempts: int(env, "WEBHOOK_ATTEMPTS", 10, 1, 1_000),
    webhookBackoffMs: int(env, "WEBHOOK_BACKOFF_MS", 1_000, 1, MAX_TIMER_MS),
    retainFinishedMs: duration(env, "RETAIN_FINISHED", 7 * DAY_MS, "forever"),
  };
}

/**
 * The engine limits of a configuration. A task's journal holds one request and one
 * response per fetch, so `MAX_FETCHES` becomes twice as many journal entries.
 */
export function engineOptions(config: Config): EngineOptions {
  return {
    variant: config.engineVariant,
    timeLimitMs: config.timeLimitMs,
    memoryLimitBytes: config.memoryLimitMb * MIB,
    maxStackBytes: config.stackBytes,
    maxCodeBytes: config.maxCodeBytes,
    maxPendingFetches: config.maxPendingFetches,
    maxJournalEntries: config.maxFetches * 2,
    maxJournalBytes: config.maxJournalBytes,
    maxLogEntries: config.maxLogEntries,
  };
}

function isVariant(value: string): value is Variant {
  return VARIANTS.includes(value as Variant);
}

/** The value with surrounding white space removed, or `undefined` when unset or blank. */
function raw(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

function text(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value)) {
    throw new TypeError(`Invalid ${name} "${env[name]}": expected a whole number`);
  }
  const n = Number(value);
  if (n < min || n > max) {
    throw new RangeError(`Invalid ${name} "${env[name]}": expected ${min} to ${max}`);
  }
  return n;
}

/** Milliseconds per unit of a duration. */
const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: DAY_MS,
};

/**
 * A duration, `<number><unit>` (`500ms`, `90s`, `15m`, `12h`, `7d`), in ms; `undefined`
 * for the word `never` (no limit).
 */
function duration(
  env: Env,
  name: string,
  fallback: number,
  never: string,
): number | undefined {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (value === never) return undefined;
  const match = /^([0-9]{1,12})(ms|s|m|h|d)$/.exec(value);
  if (!match) {
    throw new TypeError(
      `Invalid ${name} "${env[name]}": expected a number and a unit (ms, s, m, h, d), such ` +
        `as 7d, or ${never}`,
    );
  }
  const ms = Number(match[1]) * DURATION_UNITS[match[2]!]!;
  if (ms < 1 || !Number.isSafeInteger(ms)) {
    throw new RangeError(`Invalid ${name} "${env[name]}": expected at least 1ms`);
  }
  return ms;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (TRUE_WORDS.has(value)) return true;
  if (FALSE_WORDS.has(value)) return false;
  throw new TypeError(`Invalid ${name} "${env[name]}": expected true/false, 1/0 or yes/no`);
}

function oneOf<T extends string>(
  env: Env,
  name: string,
  fallback: T,
  values: readonly T[],
  is: (value: string) => value is T,
): T {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (is(value)) return value;
  throw new TypeError(`Invalid ${name} "${env[name]}": expected one of ${values.join(", ")}`);
}

/** A `postgres://` or `postgresql://` URL, or `undefined` when unset. */
function postgresUrl(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  let parsed: URL | undefined;
  try {
    parsed = new URL(value);
  } catch {
    parsed = undefined;
  }
  if (!parsed || !["postgres:", "postgresql:"].includes(parsed.protocol)) {
    throw new TypeError(`Invalid ${name}: expected a postgres:// URL`);
  }
  return value;
}

/** A replica id (the task id pattern), or `undefined` when unset. */
function replicaId(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(value)) {
    throw new TypeError(
      `Invalid ${name} "${value}": use 1 to 128 letters, digits, ".", "_" or "-"`,
    );
  }
  return value;
}

function url(env: Env, name: string): string | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new TypeError(`Invalid ${name} "${value}": expected an absolute http or https URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(`Invalid ${name} "${value}": expected an absolute http or https URL`);
  }
  return parsed.href;
}

function list(env: Env, name: string): string[] {
  return (raw(env, name) ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** A journal secret: like a token, and long enough to be a key. */
function journalKey(env: Env, name: string): string | undefined {
  const value = token(env, name);
  if (value !== undefined && value.length < 16) {
    throw new RangeError(`Invalid ${name} (value not shown): expected at least 16 characters`);
  }
  return value;
}

/** A bearer token: visible ASCII only, so it survives an HTTP header unchanged. */
function token(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined || value === "") return undefined;
  if (!/^[\x21-\x7e]+$/.test(value)) {
    // Do not echo a secret into logs.
    throw new TypeError(
      `Invalid ${name} (value not shown): expected visible ASCII characters without spaces`,
    );
  }
  return value;
}
