import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  type Config,
  CONFIG_DOC,
  engineOptions,
  loadConfig,
  renderConfigTable,
} from "../lib/config.ts";

/** An environment that records every variable read from it. */
function recordingEnv(values: Record<string, string> = {}) {
  const read = new Set<string>();
  const env = new Proxy(values as Record<string, string | undefined>, {
    get(target, key) {
      if (typeof key === "string") read.add(key);
      return Reflect.get(target, key);
    },
  });
  return { env, read };
}

Deno.test("loadConfig gives the documented defaults for an empty environment", () => {
  const config = loadConfig({});
  const expected: Omit<Config, "workers"> = {
    port: 8080,
    host: "127.0.0.1",
    allowedHosts: [],
    allowedOrigins: [],
    callEndpoint: undefined,
    statesDir: "./states",
    databaseUrl: undefined,
    replicaId: undefined,
    replicaUrl: undefined,
    leaseMs: 10_000,
    tasksDir: "./tasks",
    token: undefined,
    journalKey: undefined,
    journalEncryptionKey: undefined,
    autoFetch: true,
    maxBodyBytes: 1024 * 1024,
    headersTimeoutMs: 10_000,
    bodyTimeoutMs: 30_000,
    maxConnections: 1024,
    fetchTimeoutMs: 30_000,
    fetchMaxBytes: 10 * 1024 * 1024,
    fetchBodyPartMs: 250,
    fetchAllow: [],
    fetchDenyPrivate: false,
    liveVms: 256,
    liveVmMb: 1024,
    fsync: true,
    logLevel: "info",
    timeLimitMs: 5000,
    timeLimitGraceMs: 1000,
    shutdownGraceMs: 5_000,
    taskCpuBudgetMs: 60_000,
    maxLogBytes: 1_048_576,
    guestLogRate: 100,
    fetchInflightMb: 256,
    fetchTaskInflightMb: 64,
    memoryLimitMb: 64,
    stackBytes: 262_144,
    maxCodeBytes: 1_048_576,
    maxPendingFetches: 100,
    maxFetches: 10_000,
    maxJournalBytes: 67_108_864,
    maxLogEntries: 1000,
    engineVariant: "asyncify",
    selfPostRetries: 8,
    logFormat: "json",
    webhookSecret: undefined,
    webhookAttempts: 10,
    webhookBackoffMs: 1000,
    retainFinishedMs: 7 * 86_400_000,
  };
  const { workers, ...rest } = config;
  assertEquals(rest, expected);
  assertEquals(workers, Math.max(1, navigator.hardwareConcurrency));
});

Deno.test("loadConfig reads every variable", () => {
  const config = loadConfig({
    PORT: "9000",
    HOST: "127.0.0.1",
    ALLOWED_HOSTS: "flow.example.com, .internal.test",
    ALLOWED_ORIGINS: "https://app.example.com",
    CALL_ENDPOINT: "https://flow.example.com/call",
    STATES_DIR: "data/states",
    REPLICA_ID: "replica-2",
    REPLICA_URL: "http://10.0.0.2:9000",
    LEASE_MS: "4000",
    TASKS_DIR: "defs",
    FLOWSTATE_TOKEN: "s3cret-token",
    JOURNAL_KEY: "journal-key-0123456789",
    JOURNAL_ENCRYPTION_KEY: "sealing-key-0123456789",
    AUTO_FETCH: "no",
    MAX_BODY_BYTES: "2048",
    HEADERS_TIMEOUT_MS: "2500",
    BODY_TIMEOUT_MS: "3500",
    MAX_CONNECTIONS: "64",
    FETCH_TIMEOUT_MS: "1500",
    FETCH_MAX_BYTES: "4096",
    FETCH_BODY_PART_MS: "0",
    FETCH_ALLOW: " intranet.test, 10.0.0.0/8 ,,::1 ",
    FETCH_DENY_PRIVATE: "YES",
    WORKERS: "3",
    LIVE_VMS: "0",
    LIVE_VM_MB: "64",
    FSYNC: "0",
    SHUTDOWN_GRACE_MS: "1200",
    LOG_LEVEL: "DEBUG",
    TIME_LIMIT_MS: "100",
    TIME_LIMIT_GRACE_MS: "250",
    TASK_CPU_BUDGET_MS: "9000",
    MAX_LOG_BYTES: "5000",
    GUEST_LOG_RATE: "7",
    FETCH_INFLIGHT_MB: "32",
    FETCH_TASK_INFLIGHT_MB: "8",
    MEMORY_LIMIT_MB: "16",
    STACK_BYTES: "65536",
    MAX_CODE_BYTES: "1000",
    MAX_PENDING_FETCHES: "5",
    MAX_FETCHES: "50",
    MAX_JOURNAL_BYTES: "100000",
    MAX_LOG_ENTRIES: "10",
    ENGINE_VARIANT: "sync",
    SELF_POST_RETRIES: "2",
    LOG_FORMAT: "Pretty",
    WEBHOOK_SECRET: "whsec_test",
    WEBHOOK_ATTEMPTS: "3",
    WEBHOOK_BACKOFF_MS: "50",
    RETAIN_FINISHED: "90s",
  });
  assertEquals(config, {
    port: 9000,
    host: "127.0.0.1",
    allowedHosts: ["flow.example.com", ".internal.test"],
    allowedOrigins: ["https://app.example.com"],
    callEndpoint: "https://flow.example.com/call",
    statesDir: "data/states",
    databaseUrl: undefined,
    replicaId: "replica-2",
    replicaUrl: "http://10.0.0.2:9000/",
    leaseMs: 4000,
    tasksDir: "defs",
    token: "s3cret-token",
    journalKey: "journal-key-0123456789",
    journalEncryptionKey: "sealing-key-0123456789",
    autoFetch: false,
    maxBodyBytes: 2048,
    headersTimeoutMs: 2500,
    bodyTimeoutMs: 3500,
    maxConnections: 64,
    fetchTimeoutMs: 1500,
    fetchMaxBytes: 4096,
    fetchBodyPartMs: 0,
    fetchAllow: ["intranet.test", "10.0.0.0/8", "::1"],
    fetchDenyPrivate: true,
    workers: 3,
    liveVms: 0,
    liveVmMb: 64,
    fsync: false,
    logLevel: "debug",
    timeLimitMs: 100,
    timeLimitGraceMs: 250,
    shutdownGraceMs: 1200,
    taskCpuBudgetMs: 9000,
    maxLogBytes: 5000,
    guestLogRate: 7,
    fetchInflightMb: 32,
    fetchTaskInflightMb: 8,
    memoryLimitMb: 16,
    stackBytes: 65536,
    maxCodeBytes: 1000,
    maxPendingFetches: 5,
    maxFetches: 50,
    maxJournalBytes: 100_000,
    maxLogEntries: 10,
    engineVariant: "sync",
    selfPostRetries: 2,
    logFormat: "pretty",
    webhookSecret: "whsec_test",
    webhookAttempts: 3,
    webhookBackoffMs: 50,
    retainFinishedMs: 90_000,
  });
});

Deno.test("without a token the server listens on loopback and serves loopback names only", () => {
  const open = loadConfig({});
  assertEquals([open.host, open.allowedHosts], ["127.0.0.1", []]);
  const guarded = loadConfig({ FLOWSTATE_TOKEN: "t0ken" });
  assertEquals([guarded.host, guarded.allowedHosts], ["0.0.0.0", ["*"]]);
  const explicit = loadConfig({ HOST: "0.0.0.0", ALLOWED_HOSTS: "flow.test" });
  assertEquals([explicit.host, explicit.allowedHosts], ["0.0.0.0", ["flow.test"]]);
});

Deno.test("an allowed origin that is not scheme://host[:port] is refused", () => {
  for (const value of ["app.example.com", "https://app.example.com/path", "null"]) {
    assertThrows(
      () => loadConfig({ ALLOWED_ORIGINS: value }),
      TypeError,
      "Invalid ALLOWED_ORIGINS",
    );
  }
  assertEquals(loadConfig({ ALLOWED_ORIGINS: "http://a.test:8080/" }).allowedOrigins, [
    "http://a.test:8080/",
  ]);
});

Deno.test("without CALL_ENDPOINT the call endpoint is left to the port the server listens on", () => {
  assertEquals(loadConfig({ PORT: "0" }).callEndpoint, undefined);
  assertEquals(loadConfig({ PORT: "3000" }).callEndpoint, undefined);
});

Deno.test("booleans accept true/false, 1/0 and yes/no in any case", () => {
  for (
    const [text, value] of [["TRUE", true], ["1", true], ["Yes", true], ["false", false], [
      "0",
      false,
    ], ["NO", false]] as const
  ) {
    assertEquals(loadConfig({ FSYNC: text }).fsync, value, text);
  }
  const error = assertThrows(() => loadConfig({ FSYNC: "maybe" }), TypeError);
  assertEquals(error.message, `Invalid FSYNC "maybe": expected true/false, 1/0 or yes/no`);
});

Deno.test("a blank variable counts as unset", () => {
  const config = loadConfig({ PORT: "", LOG_LEVEL: "  ", FLOWSTATE_TOKEN: "" });
  assertEquals(config.port, 8080);
  assertEquals(config.logLevel, "info");
  assertEquals(config.token, undefined);
});

Deno.test("bad numbers throw an error naming the variable and quoting the value", () => {
  const cases: [Record<string, string>, ErrorConstructor, string][] = [
    [{ PORT: "80a" }, TypeError, `Invalid PORT "80a": expected a whole number`],
    [{ PORT: "-1" }, TypeError, `Invalid PORT "-1"`],
    [{ PORT: "1.5" }, TypeError, `Invalid PORT "1.5"`],
    [{ PORT: "65536" }, RangeError, `Invalid PORT "65536": expected 0 to 65535`],
    [{ MAX_BODY_BYTES: "0" }, RangeError, `Invalid MAX_BODY_BYTES "0"`],
    [{ FETCH_TIMEOUT_MS: "99999999999" }, RangeError, `Invalid FETCH_TIMEOUT_MS "99999999999"`],
    [{ WORKERS: "0" }, RangeError, `Invalid WORKERS "0"`],
    [{ MEMORY_LIMIT_MB: "5000" }, RangeError, `Invalid MEMORY_LIMIT_MB "5000"`],
    [{ MAX_FETCHES: "1e3" }, TypeError, `Invalid MAX_FETCHES "1e3"`],
  ];
  for (const [env, type, message] of cases) {
    const error = assertThrows(() => loadConfig(env), type);
    assert(error.message.startsWith(message), `${error.message} should start with ${message}`);
  }
});

Deno.test("RETAIN_FINISHED takes a number and a unit, or forever", () => {
  const retain = (value: string) => loadConfig({ RETAIN_FINISHED: value }).retainFinishedMs;
  assertEquals(
    ["250ms", "90s", "15m", "12h", "30d", "7D", "forever", "FOREVER"].map(retain),
    [250, 90_000, 900_000, 43_200_000, 2_592_000_000, 604_800_000, undefined, undefined],
  );
  for (const value of ["7", "1.5h", "d", "-1d", "1w", "0s"]) {
    const error = assertThrows(() => retain(value));
    assert(error.message.startsWith(`Invalid RETAIN_FINISHED "${value}"`), error.message);
  }
});

Deno.test("enumerations accept only their values", () => {
  assertThrows(
    () => loadConfig({ LOG_LEVEL: "verbose" }),
    TypeError,
    `Invalid LOG_LEVEL "verbose"`,
  );
  assertThrows(
    () => loadConfig({ ENGINE_VARIANT: "fast" }),
    TypeError,
    `Invalid ENGINE_VARIANT "fast": expected one of asyncify, sync`,
  );
});

Deno.test("CALL_ENDPOINT must be an absolute http or https URL", () => {
  assertThrows(
    () => loadConfig({ CALL_ENDPOINT: "/call" }),
    TypeError,
    `Invalid CALL_ENDPOINT "/call"`,
  );
  assertThrows(() => loadConfig({ CALL_ENDPOINT: "ftp://x/call" }), TypeError, "CALL_ENDPOINT");
});

Deno.test("FETCH_ALLOW entries are validated", () => {
  assertThrows(
    () => loadConfig({ FETCH_ALLOW: "ok.test, bad entry" }),
    TypeError,
    `Invalid FETCH_ALLOW "ok.test, bad entry"`,
  );
});

Deno.test("a token with spaces or control characters is refused without echoing it", () => {
  const error = assertThrows(() => loadConfig({ FLOWSTATE_TOKEN: "my secret" }), TypeError);
  assert(error.message.includes("FLOWSTATE_TOKEN"));
  assert(!error.message.includes("my secret"));
});

Deno.test("every variable loadConfig reads is documented, and every documented one is read", () => {
  const { env, read } = recordingEnv();
  loadConfig(env);
  const documented = new Set(CONFIG_DOC.map((entry) => entry.name));
  assertEquals([...read].filter((name) => !documented.has(name)), []);
  assertEquals([...documented].filter((name) => !read.has(name)), []);
  assertEquals(documented.size, CONFIG_DOC.length, "no variable is documented twice");
  for (const entry of CONFIG_DOC) {
    assert(entry.default !== "" && entry.description !== "", entry.name);
  }
});

Deno.test("documented defaults match what loadConfig uses", () => {
  const config = loadConfig({});
  const byName = Object.fromEntries(CONFIG_DOC.map((e) => [e.name, e.default]));
  // A default documented as a literal value must load to the same config when set explicitly.
  let compared = 0;
  for (const [name, value] of Object.entries(byName)) {
    if (!/^([0-9]+|[0-9]+d|true|false|asyncify|info|json|\.\/[a-z]+|0\.0\.0\.0)$/.test(value)) {
      continue;
    }
    compared++;
    assertEquals(loadConfig({ [name]: value }), config, `${name}=${value}`);
  }
  assertEquals(
    compared,
    CONFIG_DOC.length - 13,
    "all but HOST, ALLOWED_HOSTS, ALLOWED_ORIGINS, CALL_ENDPOINT, the token, allow, workers, " +
      "the webhook secret, the journal keys, the database URL and the replica's id and URL",
  );
});

Deno.test("engineOptions maps the limits to the engine's options", () => {
  const options = engineOptions(
    loadConfig({ MEMORY_LIMIT_MB: "16", MAX_FETCHES: "7", ENGINE_VARIANT: "sync" }),
  );
  assertEquals(options, {
    variant: "sync",
    timeLimitMs: 5000,
    memoryLimitBytes: 16 * 1024 * 1024,
    maxStackBytes: 262_144,
    maxCodeBytes: 1_048_576,
    maxPendingFetches: 100,
    maxJournalEntries: 14,
    maxJournalBytes: 67_108_864,
    maxLogEntries: 1000,
  });
});

Deno.test("the README table has a row per documented variable", () => {
  const lines = renderConfigTable().split("\n");
  assertEquals(lines.length, CONFIG_DOC.length + 2);
  for (const [i, entry] of CONFIG_DOC.entries()) {
    assert(lines[i + 2]!.startsWith(`| \`${entry.name}\` | `), lines[i + 2]);
  }
});

Deno.test("JOURNAL_KEY must be 16+ visible characters and is never echoed", () => {
  assertEquals(loadConfig({ JOURNAL_KEY: "0123456789abcdef" }).journalKey, "0123456789abcdef");
  const short = assertThrows(() => loadConfig({ JOURNAL_KEY: "short-key" }), RangeError);
  assert(!short.message.includes("short-key"), short.message);
  const spaced = assertThrows(() => loadConfig({ JOURNAL_KEY: "has a space in it!" }), TypeError);
  assert(!spaced.message.includes("has a space"), spaced.message);
});

Deno.test("loadConfig reads DATABASE_URL and refuses one that is not postgres:// or comes with JOURNAL_KEY", () => {
  const url = "postgres://postgres@127.0.0.1:5432/flowstate";
  assertEquals(loadConfig({ DATABASE_URL: url }).databaseUrl, url);
  assertThrows(() => loadConfig({ DATABASE_URL: "mysql://x/y" }), TypeError, "postgres://");
  assertThrows(
    () => loadConfig({ DATABASE_URL: url, JOURNAL_KEY: "k".repeat(20) }),
    TypeError,
    "JOURNAL_KEY",
  );
  const sealing = "sealing-key-0123456789";
  const sealed = loadConfig({ DATABASE_URL: url, JOURNAL_ENCRYPTION_KEY: sealing });
  assertEquals(sealed.journalEncryptionKey, sealing);
  assertThrows(() => loadConfig({ REPLICA_ID: "a/b" }), TypeError, "REPLICA_ID");
  assertEquals(loadConfig({ LEASE_MS: "2000" }).leaseMs, 2000);
});
