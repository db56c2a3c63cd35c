/**
 * Hostile code: infinite loops, memory bombs, deep recursion, catastrophic regexes, huge
 * results and logs, too many fetches, prototype tampering, attempts to reach the host,
 * self-calls to the server's API and redirects to blocked addresses. With
 * `TIME_LIMIT_MS=1000` and `MEMORY_LIMIT_MB=32`, each must end as a task `error` (or a
 * refused fetch) with a clear message, while normal tasks run on beside them.
 *
 * @module
 */
import {
  grepLogFile,
  mib,
  type ScenarioOptions,
  type ScenarioResult,
  type ServerProcess,
  sleep,
  startChaosServer,
} from "./support.ts";
import { startUpstream, valueFor } from "../testing/upstream.ts";

const TIME_LIMIT_MS = 1_000;
const MEMORY_LIMIT_MB = 32;
const MAX_FETCHES = 20;
/** Console lines the server keeps per task (its default). */
const MAX_LOG_ENTRIES = 1_000;
/** Longest console line the engine keeps, plus its "… [n more characters]" suffix. */
const MAX_LOG_LINE = 8 * 1024 + 64;

/** A task as the API shows it, with the detail of `GET /status?id=`. */
export interface TaskDetail {
  id: string;
  status: string;
  result?: unknown;
  error?: { name: string; message: string; kind: string };
  logs?: { level: string; message: string }[];
}

/** Where the hostile code may reach. */
export interface Targets {
  upstream: string;
  server: string;
  port: number;
}

/** One hostile task: its code and what must become of it (`null` when it is fine). */
export interface HostileCase {
  name: string;
  code: (targets: Targets) => string;
  check: (task: TaskDetail, targets: Targets) => string | null;
}

/** A message nobody can act on: empty, `null`, `undefined`. */
function unclear(message: string | undefined): boolean {
  return message === undefined || /^\s*(null|undefined)?\s*$/.test(message);
}

/** The task must end in `error` of one of `kinds`, with a message matching `pattern`. */
function endsInError(kinds: string[], pattern: RegExp): HostileCase["check"] {
  return (task) => {
    if (task.status !== "error" || !task.error) {
      return `ended ${task.status} with ${JSON.stringify(task.result)}, expected an error (${
        kinds.join("/")
      })`;
    }
    const { kind, name, message } = task.error;
    if (unclear(message)) return `error without a clear message: ${JSON.stringify(task.error)}`;
    if (!kinds.includes(kind) || !pattern.test(message)) {
      return `ended with ${kind} ${name}: "${message}", expected ${
        kinds.join("/")
      } matching ${pattern}`;
    }
    return null;
  };
}

/** The guest's fetch must be refused: the task ends in a `TypeError` naming the refusal. */
const refused = (why: RegExp) => endsInError(["exception"], new RegExp(`refused: .*${why.source}`));

/** The task must complete with `expected` (as JSON). */
function completesWith(expected: (targets: Targets) => unknown): HostileCase["check"] {
  return (task, targets) => {
    const want = JSON.stringify(expected(targets));
    if (task.status === "completed" && JSON.stringify(task.result) === want) return null;
    return `ended ${task.status} with ${
      JSON.stringify(task.result ?? task.error)
    }, expected ${want}`;
  };
}

/** The task must end, either way, with a clear message if it failed. */
const endsClearly: HostileCase["check"] = (task) => {
  if (task.status === "completed") return null;
  if (task.status !== "error") return `ended ${task.status}`;
  return unclear(task.error?.message) ? `unclear error ${JSON.stringify(task.error)}` : null;
};

const TIMEOUT = endsInError(["timeout"], /time limit of 1000 ms/);
const OUT_OF_MEMORY = /out of memory|string too long|time limit/i;

const get = (t: Targets, path: string) => `await fetch(${JSON.stringify(t.upstream + path)})`;
const redirect = (t: Targets, to: string) =>
  `await fetch(${JSON.stringify(`${t.upstream}/redirect?to=${encodeURIComponent(to)}`)});`;

/** The hostile cases that must pass. */
export const HOSTILE_CASES: readonly HostileCase[] = [
  { name: "sync infinite loop", code: () => "while (true) {}", check: TIMEOUT },
  {
    name: "infinite loop after await fetch",
    code: (t) => `${get(t, "/v/code/loop")}; for (;;) {}`,
    check: TIMEOUT,
  },
  {
    name: "endless microtasks",
    // Each callback queues the next one and drops its promise: no memory grows.
    code: () => "const f = () => { Promise.resolve().then(f); }; f(); await new Promise(() => {});",
    check: TIMEOUT,
  },
  {
    name: "memory bomb: arrays",
    code: () => "const a = []; for (;;) a.push(new Array(100000).fill(1));",
    check: endsInError(["memory", "timeout"], OUT_OF_MEMORY),
  },
  {
    name: "memory bomb: string doubling",
    code: () => "let s = 'x'; for (;;) s += s;",
    check: endsInError(["memory", "exception", "timeout"], OUT_OF_MEMORY),
  },
  {
    name: "memory bomb: ArrayBuffer",
    code: () => "new Uint8Array(1e9).length",
    check: endsInError(["memory", "exception"], /out of memory|invalid array buffer length/i),
  },
  {
    name: "deep recursion",
    code: () => "function f(n) { return f(n + 1) + 1; } f(0);",
    check: endsInError(["stack"], /call stack size exceeded/),
  },
  {
    name: "deep recursion after await fetch",
    code: (t) => `${get(t, "/v/code/rec")}; const f = (n) => f(n + 1) + 1; f(0);`,
    check: endsInError(["stack"], /call stack size exceeded/),
  },
  {
    name: "catastrophic regex",
    code: () => '/(a+)+$/.test("a".repeat(40) + "!")',
    check: TIMEOUT,
  },
  {
    name: "huge result",
    code: () => '"x".repeat(5 * 1024 * 1024)',
    check: endsInError(["limit"], /result is \d+ bytes of JSON, more than the limit/),
  },
  {
    name: "deeply nested result",
    code: () => "let o = []; for (let i = 0; i < 1e4; i++) o = [o]; o",
    check: endsInError(["stack", "limit"], /too deeply|deeper than/),
  },
  {
    name: "huge logs",
    code: () =>
      'for (let i = 0; i < 20000; i++) console.log("line " + i + " " + "x".repeat(100)); "logged"',
    check: (task) => {
      const problem = endsClearly(task, {} as Targets);
      if (problem) return problem;
      const kept = task.logs?.length ?? 0;
      return kept <= MAX_LOG_ENTRIES
        ? null
        : `${kept} log lines kept, more than ${MAX_LOG_ENTRIES}`;
    },
  },
  {
    name: "huge log line",
    code: () => 'console.log("y".repeat(10e6)); "logged"',
    check: (task) => {
      const problem = completesWith(() => "logged")(task, {} as Targets);
      if (problem) return problem;
      const longest = Math.max(0, ...(task.logs ?? []).map((line) => line.message.length));
      return longest <= MAX_LOG_LINE ? null : `a log line of ${longest} characters was kept`;
    },
  },
  {
    name: "thousands of sequential fetches",
    code: (t) =>
      `for (let i = 0; i < 5000; i++) await fetch(${
        JSON.stringify(`${t.upstream}/v/code/many/`)
      } + i);`,
    check: endsInError(["limit"], /journal is full: the limit is 40 entries/),
  },
  {
    name: "thousands of parallel fetches",
    code: (t) =>
      `await Promise.all(Array.from({ length: 5000 }, (_, i) => fetch(${
        JSON.stringify(t.upstream + "/v/code/par/")
      } + i)));`,
    check: endsInError(["limit"], /journal is full|too many pending fetches/i),
  },
  {
    name: "Object.prototype tampering",
    code: (t) =>
      `Object.prototype.then = function (resolve) { resolve(42); };
Object.prototype.toJSON = function () { return "tampered"; };
${get(t, "/v/code/proto")}; "after"`,
    check: endsClearly,
  },
  {
    name: "Promise replaced",
    code: (t) =>
      `globalThis.Promise = null; const r = ${get(t, "/v/code/promise")}; (await r.json()).value`,
    check: completesWith(() => valueFor("/v/code/promise")),
  },
  {
    name: "JSON replaced",
    code: (t) =>
      `JSON.parse = () => { throw new Error("tampered"); }; JSON.stringify = () => "tampered";
const r = ${get(t, "/v/code/json")}; const body = await r.text(); body.length > 0`,
    check: completesWith(() => true),
  },
  {
    name: "Math.random replaced",
    code: (t) =>
      `Math.random = () => 4; const r = ${
        get(t, "/v/code/random")
      }; [Math.random(), (await r.json()).value]`,
    check: completesWith(() => [4, valueFor("/v/code/random")]),
  },
  {
    name: "host: Deno",
    code: () => 'Deno.readTextFileSync("/etc/passwd")',
    check: endsInError(["exception"], /'Deno' is not defined/),
  },
  {
    name: "host: require",
    code: () => 'require("fs")',
    check: endsInError(["exception"], /'require' is not defined/),
  },
  {
    name: "host: import()",
    code: () => 'await import("node:fs")',
    check: endsInError(["exception"], /could not load module/),
  },
  {
    name: "host: constructor.constructor",
    code: () =>
      '(function () {}).constructor.constructor("return [typeof Deno, typeof process, typeof require, typeof __flowstateHost].join()")()',
    check: completesWith(() => "undefined,undefined,undefined,undefined"),
  },
  {
    name: "host: Function('return Deno')",
    code: () => '(() => {}).constructor("return Deno.env.toObject()")()',
    check: endsInError(["exception"], /'Deno' is not defined/),
  },
  {
    name: "self-call POST /task",
    code: (t) =>
      `await fetch(${
        JSON.stringify(`${t.server}/task`)
      }, { method: "POST", body: '{"code":"1"}' });`,
    check: refused(/cannot call this server's own API/),
  },
  {
    name: "self-call POST /call via localhost",
    code: (t) =>
      `await fetch(${
        JSON.stringify(`http://localhost:${t.port}/call`)
      }, { method: "POST", body: "{}" });`,
    check: refused(/cannot call this server's own API/),
  },
  {
    name: "self-call /TASK/ via 127.0.0.2",
    code: (t) => `await fetch(${JSON.stringify(`http://127.0.0.2:${t.port}/TASK/`)});`,
    check: refused(/cannot call this server's own API/),
  },
  {
    name: "self-call /call via [::1]",
    code: (t) => `await fetch(${JSON.stringify(`http://[::1]:${t.port}/call`)});`,
    check: refused(/cannot call this server's own API/),
  },
  {
    name: "redirect to cloud metadata",
    code: (t) => redirect(t, "http://169.254.169.254/latest/meta-data/"),
    check: refused(/link-local address/),
  },
  {
    name: "redirect to metadata host name",
    code: (t) => redirect(t, "http://metadata.google.internal/computeMetadata/v1/"),
    check: refused(/cloud metadata host name/),
  },
  {
    name: "redirect to 0.0.0.0",
    code: (t) => redirect(t, `http://0.0.0.0:${t.port}/health`),
    check: refused(/unspecified address/),
  },
  {
    name: "redirect to the server's /task",
    code: (t) => redirect(t, `${t.server}/task`),
    check: refused(/cannot call this server's own API/),
  },
  {
    name: "redirect to file:",
    code: (t) => redirect(t, "file:///etc/passwd"),
    check: refused(/only http: and https: URLs are allowed/),
  },
];

/**
 * Memory bombs made of many small allocations, where QuickJS can fail to allocate the
 * out-of-memory error itself and throws `null`; they must still end as `memory` errors.
 * They run with a long time limit, so that the bomb reaches the memory limit every time.
 */
export const SMALL_OBJECT_BOMBS: readonly HostileCase[] = [
  {
    name: "memory bomb: small objects in an array",
    code: () => "const a = []; for (let i = 0; ; i++) a.push({ i });",
    check: endsInError(["memory"], /out of memory/),
  },
  {
    name: "memory bomb: Map entries",
    code: () => "const m = new Map(); for (let i = 0; ; i++) m.set(i, [i]);",
    check: endsInError(["memory"], /out of memory/),
  },
];

/** Normal tasks run beside the hostile ones; each must complete with its values. */
function normalCode(t: Targets, tag: string): string {
  return `
const values = [];
for (let i = 0; i < 4; i++) values.push((await (await fetch(${
    JSON.stringify(`${t.upstream}/v/normal/${tag}/`)
  } + i)).json()).value);
const more = await Promise.all([0, 1].map((j) => fetch(${
    JSON.stringify(`${t.upstream}/v/normal/${tag}/p`)
  } + j).then((r) => r.json())));
values.concat(more.map((body) => body.value));`;
}

function normalExpected(tag: string): number[] {
  return [
    ...[0, 1, 2, 3].map((i) => valueFor(`/v/normal/${tag}/${i}`)),
    ...[0, 1].map((j) => valueFor(`/v/normal/${tag}/p${j}`)),
  ];
}

/** Options of {@link runHostileCode}. */
export interface HostileCodeOptions extends ScenarioOptions {
  /** Run {@link SMALL_OBJECT_BOMBS} (with a 10 s time limit) instead of {@link HOSTILE_CASES}. */
  smallObjectBombs?: boolean;
}

/** Runs the hostile code scenario. */
export async function runHostileCode(options: HostileCodeOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const cases = options.smallObjectBombs ? SMALL_OBJECT_BOMBS : HOSTILE_CASES;
  const repeats = options.short || options.smallObjectBombs ? 1 : 2;
  const problems: string[] = [];
  const upstream = startUpstream({ minDelayMs: 5, maxDelayMs: 60 });
  let server: ServerProcess | null = null;
  try {
    server = await startChaosServer({
      label: "code",
      env: {
        TIME_LIMIT_MS: String(options.smallObjectBombs ? 10 * TIME_LIMIT_MS : TIME_LIMIT_MS),
        MEMORY_LIMIT_MB: String(MEMORY_LIMIT_MB),
        MAX_FETCHES: String(MAX_FETCHES),
        // Host work after the guest's limit (converting a deep result, thousands of fetch
        // calls) can take a second or two on a loaded machine: these cases test the engine's
        // own limits, not the server's watchdog.
        TIME_LIMIT_GRACE_MS: String(4 * TIME_LIMIT_MS),
      },
    });
    const srv = server;
    const targets: Targets = { upstream: upstream.origin, server: srv.origin, port: srv.port };
    const rssBefore = await srv.rssBytes();
    let hostile = 0;
    let normal = 0;
    let slowestNormal = 0;
    const kinds = new Map<string, number>();

    const finish = async (id: string, timeoutMs: number): Promise<TaskDetail | null> => {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const reply = await srv.request(`/status?id=${id}`);
        const task = (reply.body as { task?: TaskDetail } | undefined)?.task;
        if (task && task.status !== "running" && task.status !== "paused") return task;
        await sleep(150);
      }
      return null;
    };
    const runOne = async (id: string, code: string): Promise<TaskDetail | string> => {
      const reply = await srv.request("/task", { method: "POST", body: { id, code } });
      if (reply.status !== 200) return `POST /task answered ${reply.status}: ${reply.text}`;
      const task = await finish(id, 90_000);
      return task ?? "did not end within 90 s";
    };
    const runNormal = async (tag: string) => {
      normal++;
      const begun = performance.now();
      const outcome = await runOne(`normal-${tag}`, normalCode(targets, tag));
      slowestNormal = Math.max(slowestNormal, performance.now() - begun);
      const problem = typeof outcome === "string"
        ? outcome
        : completesWith(() => normalExpected(tag))(outcome, targets);
      if (problem) problems.push(`normal task ${tag} beside the hostile ones: ${problem}`);
    };

    const jobs: Promise<void>[] = [runNormal("first")];
    for (let round = 0; round < repeats; round++) {
      cases.forEach((hostileCase, index) => {
        jobs.push((async () => {
          hostile++;
          const id = `code-${round}-${index}`;
          const outcome = await runOne(id, hostileCase.code(targets));
          const problem = typeof outcome === "string"
            ? outcome
            : hostileCase.check(outcome, targets);
          if (typeof outcome !== "string") {
            const kind = outcome.error?.kind ?? outcome.status;
            kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
          }
          if (problem) problems.push(`${hostileCase.name}: ${problem}`);
        })());
      });
      jobs.push(sleep(500).then(() => runNormal(`round${round}`)));
    }
    await Promise.all(jobs);
    await runNormal("after");
    log(`hostile code: ${hostile} hostile tasks, ${normal} normal tasks`);

    const health = await srv.request("/health");
    if (health.status !== 200) problems.push(`/health answered ${health.status} after the run`);
    const rssAfter = await srv.rssBytes();
    const errors = await grepLogFile(srv.logPath, /"level":"error"/);
    for (const line of errors.slice(0, 5)) problems.push(`server error log: ${line}`);
    return {
      name: options.smallObjectBombs ? "small-object memory bombs" : "hostile code",
      durationMs: performance.now() - started,
      figures: {
        "hostile tasks": hostile,
        "normal tasks": normal,
        "slowest normal task, ms": Math.round(slowestNormal),
        outcomes: [...kinds].sort().map(([kind, count]) => `${kind} ${count}`).join(", "),
        "RSS before": mib(rssBefore),
        "RSS after": mib(rssAfter),
      },
      problems,
      skipped: [],
    };
  } finally {
    await server?.close();
    await upstream.close();
  }
}
