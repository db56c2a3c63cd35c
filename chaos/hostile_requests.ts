/**
 * Hostile requests: generated bodies (random bytes, truncated JSON, deep nesting of 100k,
 * huge strings, wrong types, unicode and path-traversal ids, NUL), methods and paths. Each
 * must get a 4xx with a JSON error body, the server must stay up, and the states directory
 * must hold the files of the tasks created on purpose and nothing else.
 *
 * @module
 */
import { DASHBOARD_ASSETS } from "../lib/http/dashboard_routes.ts";
import { INDEX_FILE_NAME, isIndexFileName } from "../lib/store/index_file.ts";
import {
  checkStatesDir,
  grepLogFile,
  Random,
  type ScenarioOptions,
  type ScenarioResult,
  type ServerProcess,
  sleep,
  startChaosServer,
} from "./support.ts";
import { LOCK_FILE_NAME } from "../lib/store/dir_lock.ts";

/** One generated request. */
export interface FuzzCase {
  /** Category, for the figures. */
  kind: string;
  method: string;
  /** Path and query, sent as given. */
  path: string;
  body?: string | Uint8Array<ArrayBuffer>;
  headers?: Record<string, string>;
  /** Sent on a raw socket (methods `fetch` refuses, bytes `fetch` would normalize). */
  raw?: boolean;
  /**
   * Malformed HTTP, answered by the HTTP layer before the app sees it: a 4xx or a closed
   * connection is enough (no JSON body can be expected). `head` is then sent verbatim.
   */
  protocol?: string;
}

const KIB = 1024;
const MIB = 1024 * KIB;
const DEPTH = 100_000;

/** Ids that must never be accepted, nor become a path. */
export const BAD_IDS: readonly string[] = [
  "../x",
  "..",
  ".",
  "../../etc/passwd",
  "..\\x",
  "%2e%2e",
  "%2e%2e%2fx",
  "..%2fx",
  "a/b",
  "a\\b",
  "/abs",
  "x.json/../y",
  "\u0000",
  "a\u0000b",
  "a\u0000.json",
  "",
  " ",
  "a b",
  "-x",
  ".hidden",
  "_x",
  "é",
  "日本語",
  "😀",
  "a\u202eb",
  "a\nb",
  "a\rb",
  "a\tb",
  "x".repeat(129),
  "ａｂｃ",
  "a:b",
  "a*b",
  "a?b",
  "a#b",
  "\ud800",
];

/** Values of the wrong type for string, boolean and object fields. */
const WRONG_VALUES: readonly unknown[] = [
  0,
  -1,
  1.5,
  1e308,
  true,
  false,
  null,
  [],
  ["1"],
  {},
  { toString: "x" },
];

/** Percent-encodes `text`; a lone surrogate becomes the bytes of its (invalid) UTF-8 form. */
function encodeQuery(text: string): string {
  let out = "";
  for (const char of text) {
    const code = char.charCodeAt(0);
    out += code >= 0xd800 && code <= 0xdfff
      ? `%${(0xe0 | (code >> 12)).toString(16)}%${(0x80 | ((code >> 6) & 0x3f)).toString(16)}%${
        (0x80 | (code & 0x3f)).toString(16)
      }`
      : encodeURIComponent(char);
  }
  return out;
}

const deepArray = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
const deepObject = (depth: number) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth);

/** The fixed cases: every bad id at every endpoint, wrong types, methods and paths. */
export function fixedCases(): FuzzCase[] {
  const cases: FuzzCase[] = [];
  const post = (kind: string, path: string, body: unknown, headers?: Record<string, string>) =>
    cases.push({
      kind,
      method: "POST",
      path,
      body: typeof body === "string" ? body : JSON.stringify(body),
      headers: { "content-type": "application/json", ...headers },
    });

  for (const id of BAD_IDS) {
    post("bad id", "/task", { id, code: "1" });
    post("bad id", "/task", { id, task: "fetch_json" });
    post("bad id", "/call", { taskId: id, fetchResponse: { id: "f", success: true } });
    cases.push({ kind: "bad id", method: "GET", path: `/status?id=${encodeQuery(id)}` });
  }
  for (const value of WRONG_VALUES) {
    post("wrong type", "/task", { code: value });
    post("wrong type", "/task", { code: "1", id: value });
    post("wrong type", "/task", { code: "1", name: value });
    if (typeof value !== "boolean") post("wrong type", "/task", { code: "1", autoFetch: value });
    post("wrong type", "/task", { task: value });
    post("wrong type", "/call", { taskId: value, fetchResponse: { id: "f", success: true } });
    post("wrong type", "/call", { taskId: "fuzz-done", fetchResponse: value });
    post("wrong type", "/call", {
      taskId: "fuzz-done",
      fetchResponse: { id: value, success: true },
    });
    post("wrong type", "/call", {
      taskId: "fuzz-done",
      fetchResponse: { id: "f", success: value },
    });
    for (const field of ["status", "statusText", "error", "url", "headers", "timestamp"]) {
      if (
        field === "status" && typeof value === "number" && Number.isInteger(value) && value >= 0
      ) {
        continue;
      }
      if (field === "timestamp" && typeof value === "number" && Number.isFinite(value)) continue;
      if (
        field === "headers" && typeof value === "object" && value !== null && !Array.isArray(value)
      ) {
        if (Object.values(value).every((v) => typeof v === "string")) continue;
      }
      post("wrong type", "/call", {
        taskId: "fuzz-paused",
        fetchResponse: { id: "f", success: true, [field]: value },
      });
    }
  }
  // Bodies that are valid JSON but not the right shape.
  for (const body of ["null", "1", '"x"', "[]", "true", '{"code":"1","task":"fetch_json"}', "{}"]) {
    post("wrong shape", "/task", body);
    post("wrong shape", "/call", body);
  }
  post("wrong shape", "/task", { code: "" });
  post("wrong shape", "/task", { code: "1", name: "n".repeat(201) });
  post("wrong shape", "/task", { task: "" });
  post("wrong shape", "/task", { task: "../fetch_json" });
  post("wrong shape", "/task", { task: "no_such_definition" });
  post("wrong shape", "/call", {
    taskId: "fuzz-paused",
    fetchResponse: { id: "f", success: true, status: 1000 },
  });
  post("wrong shape", "/call", {
    taskId: "fuzz-paused",
    fetchResponse: { id: "f", success: true, headers: { a: 1 } },
  });
  post(
    "wrong shape",
    "/call",
    '{"taskId":"fuzz-paused","fetchResponse":{"id":"f","success":true,"timestamp":1e400}}',
  );
  // Valid deliveries that do not fit the task's state.
  post("wrong state", "/call", {
    taskId: "no-such-task",
    fetchResponse: { id: "f", success: true },
  });
  post("wrong state", "/call", { taskId: "fuzz-done", fetchResponse: { id: "f", success: true } });
  post("wrong state", "/call", {
    taskId: "fuzz-paused",
    fetchResponse: { id: "nope", success: true },
  });
  post("wrong state", "/task", { id: "fuzz-done", code: "1" });
  cases.push({ kind: "wrong state", method: "GET", path: "/status?id=no-such-task" });

  // Deep nesting (100k levels) wherever the server rejects the value before using it.
  const deep = deepArray(DEPTH);
  const deepObj = deepObject(DEPTH);
  for (const body of [deep, deepObj]) {
    post("deep nesting", "/task", body);
    post("deep nesting", "/call", body);
    post("deep nesting", "/task", `{"code":${body}}`);
    post("deep nesting", "/task", `{"code":"1","id":${body}}`);
    post("deep nesting", "/task", `{"code":"1","name":${body}}`);
    post("deep nesting", "/task", `{"id":"../x","code":"1","input":${body}}`);
    post("deep nesting", "/task", `{"task":${body}}`);
    post("deep nesting", "/call", `{"taskId":${body}}`);
    post("deep nesting", "/call", `{"taskId":"fuzz-paused","fetchResponse":${body}}`);
    post(
      "deep nesting",
      "/call",
      `{"taskId":"fuzz-paused","fetchResponse":{"id":"f","success":true,"headers":${body}}}`,
    );
    post(
      "deep nesting",
      "/call",
      `{"taskId":"no-such-task","fetchResponse":{"id":"f","success":true,"data":${body}}}`,
    );
    post(
      "deep nesting",
      "/call",
      `{"taskId":"fuzz-done","fetchResponse":{"id":"f","success":true,"data":${body}}}`,
    );
    post(
      "deep nesting",
      "/call",
      `{"taskId":"fuzz-paused","fetchResponse":{"id":"nope","success":true,"data":${body}}}`,
    );
  }
  post("deep nesting", "/task", "[".repeat(DEPTH));
  post("deep nesting", "/task", '{"a":'.repeat(DEPTH));

  // Huge strings.
  const huge = "x".repeat(2 * MIB);
  post("huge", "/task", { code: huge });
  post("huge", "/call", {
    taskId: "fuzz-paused",
    fetchResponse: { id: "f", success: true, data: huge },
  });
  post("huge", "/task", { code: "1", id: "x".repeat(300 * KIB) });
  post("huge", "/task", { code: "1", name: "x".repeat(300 * KIB) });
  post("huge", "/task", { task: "x".repeat(300 * KIB) });
  post("huge", "/call", {
    taskId: "x".repeat(300 * KIB),
    fetchResponse: { id: "f", success: true },
  });
  cases.push({ kind: "huge", method: "GET", path: `/status?id=${"x".repeat(16 * KIB)}` });
  cases.push({
    kind: "protocol",
    method: "",
    path: "",
    raw: true,
    protocol: `GET /status?id=${"x".repeat(256 * KIB)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  });
  cases.push({ kind: "huge", method: "GET", path: `/status?limit=${"9".repeat(4 * KIB)}` });

  // Bodies that are not UTF-8 or not JSON.
  const bytes = (...values: number[]) => new Uint8Array(values);
  for (
    const body of [
      bytes(0xff, 0xfe, 0x7b, 0x7d),
      bytes(0xc0, 0xaf),
      bytes(0xed, 0xa0, 0x80),
      bytes(0x7b, 0x22, 0x63, 0x6f, 0x64, 0x65, 0x22, 0x3a, 0x22, 0x80, 0x22, 0x7d),
      "\ufeff{",
      "\u0000",
      "{\u0000}",
      "",
      "   \n\t ",
      "{'code': '1'}",
      '{"code": "1",}',
      '{"code": 01}',
      "NaN",
      "undefined",
      '{"code":"1"}{"code":"1"}',
    ]
  ) {
    cases.push({ kind: "not json", method: "POST", path: "/task", body });
    cases.push({ kind: "not json", method: "POST", path: "/call", body });
  }
  for (const [type, encoding] of [["text/plain", ""], ["multipart/form-data", ""], ["", "gzip"]]) {
    const headers: Record<string, string> = {};
    if (type) headers["content-type"] = type;
    if (encoding) headers["content-encoding"] = encoding;
    cases.push({ kind: "not json", method: "POST", path: "/task", body: "code=1", headers });
  }

  // Queries of GET /status.
  for (
    const query of [
      "limit=0",
      "limit=-1",
      "limit=1e3",
      "limit=0x10",
      "limit=1.5",
      "limit=%201",
      "limit=%D9%A1",
      "limit=10001",
      "limit=",
      "status=RUNNING",
      "status=done",
      "status=running%00",
      "status=..%2F",
      "status=",
      "id=",
      "id=%zz",
      "id=%",
    ]
  ) {
    cases.push({ kind: "bad query", method: "GET", path: `/status?${query}` });
  }

  // Methods and paths.
  const methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO", "PROPFIND"];
  const paths = [
    "/",
    "/task",
    "/call",
    "/status",
    "/health",
    "/tasks",
    "/task/",
    "/TASK",
    "//task",
    "/task/x",
    "/status/",
    "/%2e%2e/task",
    "/..%2ftask",
    "/task%00",
    "/states/fuzz-done.json",
    "/fuzz-done.json",
    "/favicon.ico",
    "/%ff",
    "/health/../task",
  ];
  for (const method of methods) {
    for (const path of paths) {
      if (isServedRoute(method, path)) continue;
      cases.push({
        kind: "method/path",
        method,
        path,
        body: method === "GET" || method === "HEAD" ? undefined : "{}",
      });
    }
  }
  for (const method of ["TRACE", "TRACK"]) {
    for (const path of ["/task", "/status", "/health"]) {
      cases.push({ kind: "method/path", method, path, raw: true });
    }
  }
  cases.push({ kind: "method/path", method: "CONNECT", path: "127.0.0.1:1", raw: true });
  cases.push({ kind: "method/path", method: "CONNECT", path: "example.com:443", raw: true });
  // Malformed HTTP: the HTTP layer answers (or hangs up), the server must stay up.
  for (
    const head of [
      "CONNECT /task HTTP/1.1\r\nHost: x\r\n\r\n",
      "GARBAGE\r\n\r\n",
      "GET /status HTTP/9.9\r\nHost: x\r\n\r\n",
      "GET /sta tus?id=a b HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /status HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
      `GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(200 * KIB)}\r\n\r\n`,
      "POST /task HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}",
      "POST /task HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
      "POST /task HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
      "GET /status HTTP/1.1\r\nHost: x\u0000y\r\n\r\n",
      "\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003",
    ]
  ) {
    cases.push({ kind: "protocol", method: "", path: "", raw: true, protocol: head });
  }
  cases.push({ kind: "method/path", method: "GET", path: "/status?id=../x", raw: true });
  cases.push({ kind: "method/path", method: "GET", path: "/../../etc/passwd", raw: true });
  cases.push({ kind: "method/path", method: "GET", path: "/task/../../x", raw: true });
  return cases;
}

/** Whether the request is a legitimate one (GET/HEAD of /health and /status). */
function isServedRoute(method: string, path: string): boolean {
  const pathname = new URL(path, "http://x").pathname;
  return (method === "GET" || method === "HEAD") &&
    (pathname === "/health" || pathname === "/status" || pathname in DASHBOARD_ASSETS);
}

/** `count` random cases: random bytes, truncated bodies, random ids and paths. */
export function randomCases(count: number, rng: Random): FuzzCase[] {
  const templates = [
    JSON.stringify({ id: "fuzz-new", code: "1" }),
    JSON.stringify({ code: "await fetch('http://127.0.0.1:1/x')", autoFetch: false }),
    JSON.stringify({ taskId: "fuzz-paused", fetchResponse: { id: "f", success: true, data: [1] } }),
  ];
  const cases: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    const path = rng.pick(["/task", "/call"]);
    const roll = rng.next();
    if (roll < 0.3) {
      cases.push({ kind: "random bytes", method: "POST", path, body: rng.bytes(rng.int(1, 4096)) });
    } else if (roll < 0.55) {
      // A strict prefix of a JSON object is never valid JSON.
      const template = rng.pick(templates);
      cases.push({
        kind: "truncated json",
        method: "POST",
        path,
        body: template.slice(0, rng.int(0, template.length - 1)),
        headers: { "content-type": "application/json" },
      });
    } else if (roll < 0.75) {
      const id = randomBadId(rng);
      cases.push(
        rng.next() < 0.5
          ? { kind: "random id", method: "GET", path: `/status?id=${encodeQuery(id)}` }
          : {
            kind: "random id",
            method: "POST",
            path: "/task",
            body: JSON.stringify({ id, code: "1" }),
          },
      );
    } else if (roll < 0.9) {
      let text = "";
      const length = rng.int(1, 200);
      for (let j = 0; j < length; j++) text += String.fromCharCode(rng.int(0, 0xffff));
      cases.push({
        kind: "random unicode",
        method: "POST",
        path,
        body: `{"id":${JSON.stringify("../" + text)},"code":"1","taskId":${JSON.stringify(text)}}`,
      });
    } else {
      let segment = "";
      const length = rng.int(1, 40);
      for (let j = 0; j < length; j++) {
        segment += rng.pick(["a", "%2e", ".", "/", "%00", "%ff", "..", "é", "~", "%2f", "task"]);
      }
      const method = rng.pick(["GET", "POST", "PUT", "DELETE"]);
      const pathname = `/x${segment}`;
      // Dot segments may lead back to a page that is served (`/x/..` is the dashboard):
      // draw again.
      if (isServedRoute(method, pathname)) {
        i--;
        continue;
      }
      cases.push({
        kind: "random path",
        method,
        path: pathname,
        body: method === "GET" ? undefined : "{}",
      });
    }
  }
  return cases;
}

/** An id that fails the id pattern: a bad character somewhere, or a bad start. */
function randomBadId(rng: Random): string {
  const good = "abcXYZ019._-";
  let id = "";
  const length = rng.int(1, 30);
  for (let i = 0; i < length; i++) id += good[rng.int(0, good.length - 1)];
  const bad = rng.pick(["/", "\\", "\u0000", " ", "é", "%", "..", "\n", "😀", "*", ":"]);
  const at = rng.int(0, id.length);
  const candidate = id.slice(0, at) + bad + id.slice(at);
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(candidate) ? `/${candidate}` : candidate;
}

/** A reply as seen on the wire. */
interface RawReply {
  status: number;
  body: string;
}

/** Sends `fuzz` on a raw socket and reads the reply until the server closes. */
async function sendRaw(port: number, fuzz: FuzzCase): Promise<RawReply> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const body = typeof fuzz.body === "string" ? new TextEncoder().encode(fuzz.body) : fuzz.body;
    const head = fuzz.protocol ??
      `${fuzz.method} ${fuzz.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `Connection: close\r\nContent-Length: ${body?.length ?? 0}\r\n\r\n`;
    await writeAll(conn, new TextEncoder().encode(head)).catch(() => {});
    if (body) await writeAll(conn, body).catch(() => {});
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(16 * KIB);
    const timer = setTimeout(() => {
      try {
        conn.close();
      } catch {
        // closed
      }
    }, 10_000);
    try {
      for (;;) {
        const read = await conn.read(buffer).catch(() => null);
        if (read === null) break;
        chunks.push(buffer.slice(0, read));
      }
    } finally {
      clearTimeout(timer);
    }
    const text = new TextDecoder().decode(concat(chunks));
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
    const split = text.indexOf("\r\n\r\n");
    let payload = split < 0 ? "" : text.slice(split + 4);
    if (/\r\ntransfer-encoding: chunked/i.test(text.slice(0, split))) payload = unchunk(payload);
    return { status, body: payload };
  } finally {
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function unchunk(text: string): string {
  let out = "";
  let rest = text;
  for (;;) {
    const line = rest.indexOf("\r\n");
    if (line < 0) return out;
    const size = parseInt(rest.slice(0, line), 16);
    if (!size) return out;
    out += rest.slice(line + 2, line + 2 + size);
    rest = rest.slice(line + 2 + size + 2);
  }
}

/** Why `status`/`body` is not a proper rejection, or `null`. */
function judge(fuzz: FuzzCase, status: number, body: string): string | null {
  if (fuzz.protocol !== undefined) {
    return status === 0 || (status >= 400 && status <= 499)
      ? null
      : `malformed HTTP answered ${status}: ${body.slice(0, 200)}`;
  }
  if (status < 400 || status > 499) return `answered ${status}: ${body.slice(0, 200)}`;
  if (fuzz.method === "HEAD") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return `answered ${status} without a JSON body: ${JSON.stringify(body.slice(0, 200))}`;
  }
  const error = parsed as { success?: unknown; error?: unknown } | null;
  if (error?.success !== false || typeof error.error !== "string" || error.error === "") {
    return `answered ${status} with ${body.slice(0, 200)}, expected {success: false, error}`;
  }
  return null;
}

function describe(fuzz: FuzzCase): string {
  if (fuzz.protocol !== undefined) {
    return `[${fuzz.kind}] ${JSON.stringify(fuzz.protocol.slice(0, 100))}`;
  }
  const body = fuzz.body === undefined
    ? ""
    : typeof fuzz.body === "string"
    ? ` ${JSON.stringify(fuzz.body.length > 80 ? `${fuzz.body.slice(0, 80)}…` : fuzz.body)}`
    : ` <${fuzz.body.length} bytes>`;
  const path = fuzz.path.length > 100 ? `${fuzz.path.slice(0, 100)}…` : fuzz.path;
  return `[${fuzz.kind}] ${fuzz.method} ${path}${body}`;
}

/** Runs the hostile requests scenario. */
export async function runHostileRequests(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const rng = new Random(options.seed ?? 1);
  const problems: string[] = [];
  let server: ServerProcess | null = null;
  try {
    server = await startChaosServer({ label: "requests" });
    const srv = server;
    // Tasks created on purpose: one completed, one paused (no automatic fetch).
    const legit = ["fuzz-done", "fuzz-paused"];
    const made = await Promise.all([
      srv.request("/task", { method: "POST", body: { id: "fuzz-done", code: "40 + 2" } }),
      srv.request("/task", {
        method: "POST",
        body: {
          id: "fuzz-paused",
          code: "await fetch('http://127.0.0.1:9/x'); 1",
          autoFetch: false,
        },
      }),
    ]);
    for (const reply of made) {
      if (reply.status !== 200) {
        problems.push(`setup: POST /task answered ${reply.status} ${reply.text}`);
      }
    }

    let cases = fixedCases();
    const fixedCount = cases.length;
    if (options.short) cases = cases.filter((_, index) => index % 4 === 0);
    cases = cases.concat(randomCases(options.short ? 150 : Math.max(0, 5000 - fixedCount), rng));
    log(`hostile requests: ${cases.length} requests (${fixedCount} fixed cases available)`);
    const byKind = new Map<string, number>();
    let index = 0;
    let rejected = 0;
    const worker = async () => {
      while (index < cases.length) {
        const fuzz = cases[index++]!;
        byKind.set(fuzz.kind, (byKind.get(fuzz.kind) ?? 0) + 1);
        let status: number;
        let body: string;
        try {
          if (fuzz.raw) {
            ({ status, body } = await sendRaw(srv.port, fuzz));
          } else {
            const reply = await srv.request(fuzz.path, {
              method: fuzz.method,
              body: fuzz.body ?? null,
              headers: fuzz.headers,
              timeoutMs: 20_000,
            });
            status = reply.status;
            body = reply.text;
          }
        } catch (error) {
          problems.push(`${describe(fuzz)}: the request failed: ${String(error)}`);
          continue;
        }
        const problem = judge(fuzz, status, body);
        if (problem) problems.push(`${describe(fuzz)}: ${problem}`);
        else rejected++;
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    log(`hostile requests: ${[...byKind].sort().map(([kind, n]) => `${kind} ${n}`).join(", ")}`);

    const health = await srv.request("/health");
    if (health.status !== 200) problems.push(`/health answered ${health.status} after the fuzzing`);
    const list = await srv.request("/status");
    const ids = ((list.body as { tasks?: { id: string }[] })?.tasks ?? []).map((task) => task.id);
    const extra = ids.filter((id) => !legit.includes(id));
    if (extra.length > 0) problems.push(`tasks created by fuzzed requests: ${extra.join(", ")}`);

    // Stray files: only the records and journals of the tasks created on purpose.
    const allowed = new Set([
      LOCK_FILE_NAME,
      INDEX_FILE_NAME,
      ...legit.flatMap((id) => [`${id}.json`, `${id}.journal.jsonl`]),
    ]);
    const stray: string[] = [];
    for await (const entry of Deno.readDir(srv.statesDir)) {
      if (!allowed.has(entry.name) && !isIndexFileName(entry.name)) stray.push(entry.name);
    }
    if (stray.length > 0) problems.push(`stray files in states/: ${stray.join(", ")}`);
    const strayOutside: string[] = [];
    for await (const entry of Deno.readDir(srv.workDir)) {
      if (entry.name !== "states" && entry.name !== "server.log") strayOutside.push(entry.name);
    }
    if (strayOutside.length > 0) {
      problems.push(`stray files beside states/: ${strayOutside.join(", ")}`);
    }
    const states = await checkStatesDir(srv.statesDir);
    for (const line of states.unreadable) problems.push(`unreadable state: ${line}`);
    const errors = await grepLogFile(srv.logPath, /"level":"error"/);
    for (const line of errors.slice(0, 5)) problems.push(`server error log: ${line.slice(0, 500)}`);

    return {
      name: "hostile requests",
      durationMs: performance.now() - started,
      figures: {
        "requests fuzzed": cases.length,
        "rejected as expected": rejected,
        "request kinds": byKind.size,
        "files in states/": states.records + states.journals,
      },
      problems,
      skipped: [],
    };
  } finally {
    await server?.close();
  }
}

/**
 * Deeply nested values the server accepts as opaque data (`input` of `POST /task`,
 * `fetchResponse.data` of `POST /call`). What must happen: a 4xx with a JSON error (or a
 * 200 when the value is usable), never a 5xx, and the engine workers stay usable, so a
 * normal task created afterwards completes.
 */
export async function runDeepNesting(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const problems: string[] = [];
  const log = options.log ?? (() => {});
  let server: ServerProcess | null = null;
  try {
    // Two workers, so two wedged workers stop all work.
    server = await startChaosServer({ label: "nesting", env: { WORKERS: "2" } });
    const srv = server;
    const made = await srv.request("/task", {
      method: "POST",
      body: { id: "nest-paused", code: "await fetch('http://127.0.0.1:9/x'); 1", autoFetch: false },
    });
    const fetchId = (made.body as { task?: { fetchRequest?: { id: string } } })?.task?.fetchRequest
      ?.id;
    if (!fetchId) throw new Error(`Cannot create the paused task: ${made.status} ${made.text}`);
    const cases: [string, string, string][] = [
      [
        "fetchResponse.data nested 100k deep",
        "/call",
        `{"taskId":"nest-paused","fetchResponse":{"id":${JSON.stringify(fetchId)},"success":true,` +
        `"status":200,"data":${deepArray(DEPTH)}}}`,
      ],
      [
        "input nested 100k deep",
        "/task",
        `{"id":"nest-100k","code":"1","input":${deepArray(DEPTH)}}`,
      ],
      ["input nested 4k deep", "/task", `{"id":"nest-4k","code":"1","input":${deepArray(4_000)}}`],
    ];
    for (const [what, path, body] of cases) {
      const reply = await srv.request(path, { method: "POST", body, timeoutMs: 10_000 }).catch((
        error,
      ) => ({
        status: 0,
        text: String(error),
      }));
      log(`deep nesting: ${what}: ${reply.status} ${reply.text.slice(0, 120)}`);
      if (reply.status >= 500 || reply.status === 0) {
        problems.push(
          `${what} (POST ${path}): answered ${reply.status} ${reply.text.slice(0, 200)}`,
        );
      }
    }
    const begun = performance.now();
    const normal = await srv.request("/task", {
      method: "POST",
      body: { id: "nest-normal", code: "6 * 7" },
      timeoutMs: 10_000,
    }).catch((error) => ({ status: 0, text: String(error), body: undefined }));
    const task = (normal.body as { task?: { status: string; result?: unknown } } | undefined)?.task;
    if (normal.status !== 200 || task?.status !== "completed" || task.result !== 42) {
      problems.push(
        `a normal task created afterwards did not complete within 10 s: ${normal.status} ${
          normal.text.slice(0, 200)
        } (${Math.round(performance.now() - begun)} ms)`,
      );
    }
    const health = await srv.request("/health");
    const errors = await grepLogFile(srv.logPath, /"level":"error"/);
    for (const line of errors.slice(0, 3)) problems.push(`server error log: ${line.slice(0, 400)}`);
    const stopping = performance.now();
    const exit = await srv.shutdown(5_000);
    const stopMs = Math.round(performance.now() - stopping);
    const stop = exit?.signal === "SIGKILL"
      ? `needed SIGKILL after ${stopMs} ms`
      : `exited ${exit?.code} in ${stopMs} ms`;
    if (exit?.signal === "SIGKILL") problems.push(`SIGTERM did not stop the server: ${stop}`);
    // The task saved as `running` is recovered at the next start: it must not wedge it again.
    await srv.restart();
    await sleep(2_000);
    const later = await srv.request("/task", {
      method: "POST",
      body: { id: "nest-after-restart", code: "6 * 7" },
      timeoutMs: 10_000,
    }).catch((error) => ({ status: 0, text: String(error), body: undefined }));
    const laterTask = (later.body as { task?: { status: string } } | undefined)?.task;
    if (later.status !== 200 || laterTask?.status !== "completed") {
      problems.push(
        `after a restart, a normal task did not complete within 10 s: ${later.status} ${
          later.text.slice(0, 200)
        }`,
      );
    }
    const recoveries = await grepLogFile(srv.logPath, /"msg":"task recovery failed"/);
    if (recoveries.length > 0) {
      problems.push(
        `after the restart, recovery failed ${recoveries.length} times: ${
          recoveries[0]!.slice(0, 300)
        }`,
      );
    }
    await srv.kill();
    return {
      name: "deep nesting",
      durationMs: performance.now() - started,
      figures: { requests: cases.length + 1, "health after": health.status, "graceful stop": stop },
      problems,
      skipped: [],
    };
  } finally {
    await server?.close();
  }
}
