/**
 * Tests of the HTTP edge alone: routing, validation, error codes, auth and body limits.
 * The task service is a recording stand-in that returns canned views; the engine's own
 * behaviour is tested elsewhere.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { createApp, isTaskId, parseTaskId, TASK_ID_PATTERN } from "../lib/http/app.ts";
import { type Config, loadConfig } from "../lib/config.ts";
import { ConflictError, NotFoundError, UnavailableError } from "../lib/errors.ts";
import { createLogger } from "../lib/log.ts";
import type {
  CreateTaskInput,
  DefinitionView,
  FetchDetailView,
  ForkTaskInput,
  HealthView,
  ListTasksQuery,
  TaskDetailView,
  TaskListView,
  TaskService,
  TaskSourceView,
  TaskView,
} from "../lib/service/task_types.ts";
import { TaskEventHub } from "../lib/service/task_events.ts";
import type { FetchResponse, Signal } from "../lib/engine/types.ts";

const BASE = "http://flowstate.test";
const JSON_TYPE = { "content-type": "application/json" };
const KIB = 1024;
const MIB = 1024 * KIB;

const VIEW: TaskView = {
  id: "t1",
  name: "demo",
  status: "paused",
  pauseCount: 1,
  fetchRequest: { id: "f1", url: "https://api.test/x", method: "GET" },
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:01.000Z",
};

const HEALTH: HealthView = {
  status: "ok",
  version: "0.1.0",
  tasks: { running: 0, paused: 1, completed: 2, error: 0, cancelled: 0 },
};

type Call =
  | { method: "create"; input: CreateTaskInput }
  | { method: "deliver"; taskId: string; response: FetchResponse }
  | { method: "signal"; taskId: string; signal: Signal }
  | { method: "get"; id: string }
  | { method: "source"; id: string }
  | { method: "fetch"; taskId: string; fetch: number | string }
  | { method: "list"; query: ListTasksQuery }
  | { method: "cancel"; taskId: string; reason?: string }
  | { method: "retry"; taskId: string }
  | { method: "fork"; input: ForkTaskInput }
  | { method: "remove"; taskId: string };

/** A task service that records calls and returns canned views, or throws `failWith`. */
class RecordingService implements TaskService {
  readonly calls: Call[] = [];
  readonly events = new TaskEventHub();
  failWith: unknown = undefined;

  #answer<T>(value: T): Promise<T> {
    return this.failWith === undefined ? Promise.resolve(value) : Promise.reject(this.failWith);
  }

  create(input: CreateTaskInput): Promise<TaskView> {
    this.calls.push({ method: "create", input });
    return this.#answer({ ...VIEW, id: input.id ?? VIEW.id });
  }

  deliver(taskId: string, response: FetchResponse): Promise<TaskView> {
    this.calls.push({ method: "deliver", taskId, response });
    return this.#answer({ ...VIEW, id: taskId, status: "completed", result: 42 });
  }

  cancel(taskId: string, reason?: string): Promise<TaskView> {
    this.calls.push(
      reason === undefined ? { method: "cancel", taskId } : {
        method: "cancel",
        taskId,
        reason,
      },
    );
    return this.#answer({ ...VIEW, id: taskId, status: "cancelled" });
  }

  retry(taskId: string): Promise<TaskView> {
    this.calls.push({ method: "retry", taskId });
    return this.#answer({ ...VIEW, id: taskId, retries: 1 });
  }

  fork(input: ForkTaskInput): Promise<TaskView> {
    this.calls.push({ method: "fork", input });
    return this.#answer({ ...VIEW, id: input.id ?? "fork-1" });
  }

  remove(taskId: string): Promise<TaskView> {
    this.calls.push({ method: "remove", taskId });
    return this.#answer({ ...VIEW, id: taskId, status: "completed" });
  }

  signal(taskId: string, signal: Signal): Promise<TaskView> {
    this.calls.push({ method: "signal", taskId, signal });
    return this.#answer({ ...VIEW, id: taskId });
  }

  get(id: string): Promise<TaskDetailView> {
    this.calls.push({ method: "get", id });
    return this.#answer({ ...VIEW, id, logs: [], fetches: [] });
  }

  fetch(taskId: string, fetch: number | string): Promise<FetchDetailView> {
    this.calls.push({ method: "fetch", taskId, fetch });
    return this.#answer({
      index: 0,
      id: "f1",
      method: "GET",
      url: "https://api.test/x",
      status: 200,
      requestedAt: VIEW.createdAt,
      request: {},
      body: "ok",
    });
  }

  definitions(): Promise<DefinitionView[]> {
    return this.#answer([]);
  }

  source(id: string): Promise<TaskSourceView> {
    this.calls.push({ method: "source", id });
    return Promise.resolve({ id, code: "1", autoFetch: true, variables: {} });
  }

  list(query: ListTasksQuery): Promise<TaskListView> {
    this.calls.push({ method: "list", query });
    return this.#answer({ tasks: [VIEW], nextCursor: null });
  }

  health(): HealthView {
    return HEALTH;
  }
}

interface Setup {
  token?: string;
  maxBodyBytes?: number;
  shuttingDown?: boolean;
}

function setup(options: Setup = {}) {
  const service = new RecordingService();
  const lines: string[] = [];
  const config: Config = {
    ...loadConfig({ ALLOWED_HOSTS: "flowstate.test" }),
    token: options.token,
    maxBodyBytes: options.maxBodyBytes ?? MIB,
  };
  const logger = createLogger({ level: "debug", write: (line) => lines.push(line) });
  const app = createApp({
    service,
    config,
    logger,
    isShuttingDown: () => options.shuttingDown ?? false,
  });
  const logs = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { app, service, lines, logs };
}

function post(path: string, body: unknown, headers: Record<string, string> = {}): Request {
  return postRaw(path, JSON.stringify(body), headers);
}

function postRaw(path: string, text: string, headers: Record<string, string> = {}): Request {
  return new Request(BASE + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: text,
  });
}

function get(path: string, headers: Record<string, string> = {}): Request {
  return new Request(BASE + path, { headers });
}

async function readJson(response: Response): Promise<Record<string, unknown>> {
  assertEquals(response.headers.get("content-type"), "application/json; charset=utf-8");
  return await response.json();
}

/** Asserts the constant shape of an error answer and returns its message. */
async function expectError(response: Response, status: number): Promise<string> {
  const body = await readJson(response);
  assertEquals(response.status, status, JSON.stringify(body));
  assertEquals(Object.keys(body).sort(), ["error", "success"]);
  assertEquals(body.success, false);
  assertEquals(typeof body.error, "string");
  const message = body.error as string;
  assert(message.length > 0 && !message.endsWith("."), message);
  return message;
}

/** A body stream of `total` bytes in `chunk`-sized pieces that counts what was pulled. */
function countingStream(total: number, chunk: number) {
  const counter = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (counter.pulled >= total) {
        controller.close();
        return;
      }
      const size = Math.min(chunk, total - counter.pulled);
      counter.pulled += size;
      controller.enqueue(new Uint8Array(size).fill(0x20));
    },
    cancel() {
      counter.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, counter };
}

// --- lifecycle routes --------------------------------------------------------------------

Deno.test("POST /cancel, /retry, /fork and DELETE /task pass their validated input to the service", async () => {
  const { app, service } = setup();
  assertEquals((await app(post("/cancel", { taskId: "t1" }))).status, 200);
  assertEquals(
    (await app(post("/cancel", { taskId: "t1", reason: "no longer needed" }))).status,
    200,
  );
  assertEquals((await app(post("/retry", { taskId: "t1" }))).status, 200);
  const fork = {
    taskId: "t1",
    id: "t1-b",
    atFetch: 2,
    responses: { "1": { success: true, status: 200, data: { ok: 1 }, body: '{"ok":1}' } },
  };
  assertEquals((await app(post("/fork", fork))).status, 200);
  const deleted = await app(new Request(`${BASE}/task?id=t1`, { method: "DELETE" }));
  assertEquals(deleted.status, 200);
  assertEquals((await readJson(deleted)).task, { ...VIEW, id: "t1", status: "completed" });
  assertEquals(service.calls, [
    { method: "cancel", taskId: "t1" },
    { method: "cancel", taskId: "t1", reason: "no longer needed" },
    { method: "retry", taskId: "t1" },
    {
      method: "fork",
      input: {
        taskId: "t1",
        id: "t1-b",
        atFetch: 2,
        responses: { 1: { success: true, status: 200, data: { ok: 1 }, body: '{"ok":1}' } },
      },
    },
    { method: "remove", taskId: "t1" },
  ]);
});

Deno.test("lifecycle routes refuse unknown fields naming them, and ill-typed input, with 400", async () => {
  const { app, service } = setup();
  const cases: [string, unknown, string][] = [
    ["/cancel", { taskId: "t1", why: "x" }, `Cannot cancel task: unknown field "why"`],
    ["/cancel", { taskId: "t1", reason: 5 }, `"reason" must be a string`],
    ["/cancel", {}, `Cannot cancel task undefined`],
    ["/retry", { taskId: "t1", atFetch: 1 }, `Cannot retry task: unknown field "atFetch"`],
    ["/retry", { taskId: "../x" }, `Cannot retry task "../x"`],
    ["/fork", { taskId: "t1", at: 1 }, `Cannot fork task: unknown field "at"`],
    ["/fork", { taskId: "t1", atFetch: -1 }, `"atFetch" must be an integer`],
    ["/fork", { taskId: "t1", atFetch: 1.5 }, `"atFetch" must be an integer`],
    ["/fork", { taskId: "t1", id: "a/b" }, `Cannot fork task with id "a/b"`],
    ["/fork", { taskId: "t1", responses: [] }, `"responses" must be an object`],
    ["/fork", { taskId: "t1", responses: { x: {} } }, `"responses" keys must be fetch indexes`],
    ["/fork", { taskId: "t1", responses: { "0": { status: 200 } } }, `"responses.0.success"`],
    [
      "/fork",
      { taskId: "t1", responses: { "0": { id: "f", success: true } } },
      `"responses.0" takes no "id"`,
    ],
  ];
  for (const [path, body, expected] of cases) {
    const message = await expectError(await app(post(path, body)), 400);
    assert(message.includes(expected), `${path} ${JSON.stringify(body)}: ${message}`);
  }
  for (const query of ["", "?id=../x", "?id=t1&force=1"]) {
    const response = await app(new Request(`${BASE}/task${query}`, { method: "DELETE" }));
    await expectError(response, 400);
  }
  assertEquals(service.calls, []);
});

// --- POST /task -------------------------------------------------------------------------

Deno.test("POST /task with code creates the task and answers 200 with it", async () => {
  const { app, service } = setup();
  const response = await app(post("/task", { code: "1 + 1" }));
  assertEquals(response.status, 200);
  assertEquals(await readJson(response), { success: true, task: VIEW });
  assertEquals(service.calls, [{ method: "create", input: { code: "1 + 1" } }]);
});

Deno.test("POST /task passes id, name, task, input and autoFetch and refuses unknown fields", async () => {
  const { app, service } = setup();
  const body = {
    id: "order-42.v2_x",
    name: "Order 42",
    task: "sync_orders-2",
    input: { n: [1, null, "x"] },
    autoFetch: false,
  };
  const refused = await app(post("/task", { ...body, extra: "typo" }));
  assertEquals(refused.status, 400);
  await refused.body?.cancel();
  const response = await app(post("/task", body));
  assertEquals(response.status, 200);
  assertEquals(((await readJson(response)).task as TaskView).id, "order-42.v2_x");
  assertEquals(service.calls, [{
    method: "create",
    input: {
      id: "order-42.v2_x",
      name: "Order 42",
      task: "sync_orders-2",
      input: { n: [1, null, "x"] },
      autoFetch: false,
    },
  }]);
});

Deno.test("POST /task keeps an input of null and of falsy values", async () => {
  const { app, service } = setup();
  for (const input of [null, 0, "", false]) {
    assertEquals((await app(post("/task", { code: "input", input }))).status, 200);
  }
  assertEquals(
    service.calls.map((c) => c.method === "create" && c.input.input),
    [null, 0, "", false],
  );
});

Deno.test("POST /task refuses ill-formed bodies with 400 and never calls the service", async () => {
  const { app, service } = setup();
  const cases: [unknown, string][] = [
    [[], "must be a JSON object"],
    [null, "must be a JSON object"],
    ["just a string", "must be a JSON object"],
    [42, "must be a JSON object"],
    [{}, `exactly one of "code" and "task"`],
    [{ code: "1", task: "a" }, `exactly one of "code" and "task"`],
    [{ code: "" }, `"code" must be a non-empty string, got ""`],
    [{ code: 42 }, `"code" must be a non-empty string, got 42`],
    [{ code: null }, `"code" must be a non-empty string, got null`],
    [{ task: "../etc/passwd" }, `"task" must match`],
    [{ task: "a".repeat(65) }, `"task" must match`],
    [{ task: "" }, `"task" must match`],
    [{ task: 7 }, `"task" must match`],
    [{ code: "1", name: 5 }, `"name" must be a string of at most 200 characters, got 5`],
    [{ code: "1", name: "n".repeat(201) }, `"name" must be a string of at most 200`],
    [{ code: "1", autoFetch: "yes" }, `"autoFetch" must be a boolean, got "yes"`],
    [{ code: "1", id: 12 }, `Cannot create task with id 12: must match`],
  ];
  for (const [body, expected] of cases) {
    const message = await expectError(await app(post("/task", body)), 400);
    assert(message.includes(expected), `${JSON.stringify(body)}: "${message}"`);
  }
  assertEquals(service.calls, []);
});

Deno.test("task ids with traversal, separators, NUL or non-ASCII are refused", async () => {
  const { app, service } = setup();
  const bad = ["../x", "%2e%2e", "..", ".hidden", "a/b", "a\\b", "a\0b", "tâche", "😀", "", "-x"];
  for (const id of [...bad, "a".repeat(129)]) {
    const message = await expectError(await app(post("/task", { code: "1", id })), 400);
    assert(message.startsWith("Cannot create task with id "), message);
    assert(message.includes(TASK_ID_PATTERN.source), message);
  }
  assertEquals(service.calls, []);
  assertEquals((await app(post("/task", { code: "1", id: "a".repeat(128) }))).status, 200);
});

Deno.test("parseTaskId quotes the value and names the action", () => {
  assert(isTaskId("abc") && !isTaskId("../x") && !isTaskId(5));
  assertEquals(parseTaskId("a.b-c_d"), "a.b-c_d");
  let message = "";
  try {
    parseTaskId("../x");
  } catch (error) {
    message = (error as Error).message;
  }
  assertEquals(
    message,
    `Cannot parse task id "../x": must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`,
  );
});

// --- Body reading -----------------------------------------------------------------------

Deno.test("a body that is not JSON is a 400", async () => {
  const { app, service } = setup();
  const message = await expectError(await app(postRaw("/task", "{code: 1")), 400);
  assertMatch(message, /^Cannot parse request body as JSON: /);
  const empty = await expectError(await app(postRaw("/task", "")), 400);
  assertEquals(empty, "Cannot parse request body: it is empty");
  assertEquals(service.calls, []);
});

Deno.test("a body that is not valid UTF-8 is a 400", async () => {
  const { app, service } = setup();
  const bytes = new Uint8Array([
    0x7b,
    0x22,
    0x63,
    0x6f,
    0x64,
    0x65,
    0x22,
    0x3a,
    0x22,
    0xff,
    0x22,
    0x7d,
  ]);
  const request = new Request(BASE + "/task", { method: "POST", headers: JSON_TYPE, body: bytes });
  const message = await expectError(await app(request), 400);
  assertEquals(message, "Cannot decode request body: it is not valid UTF-8");
  assertEquals(service.calls, []);
});

Deno.test("a body up to the limit is accepted and one byte more is a 413", async () => {
  const limit = 64;
  const { app, service } = setup({ maxBodyBytes: limit });
  const exact = JSON.stringify({ code: "x".repeat(limit - 11) });
  assertEquals(new TextEncoder().encode(exact).length, limit);
  assertEquals((await app(postRaw("/task", exact))).status, 200);
  const over = JSON.stringify({ code: "x".repeat(limit - 10) });
  const message = await expectError(await app(postRaw("/task", over)), 413);
  assertEquals(message, `Request body is larger than ${limit} bytes`);
  assertEquals(service.calls.length, 1);
});

Deno.test("a 10 MiB streamed body is refused with 413 after reading little more than the limit", async () => {
  const { app, service } = setup({ maxBodyBytes: MIB });
  const chunk = 64 * KIB;
  const { stream, counter } = countingStream(10 * MIB, chunk);
  const request = new Request(BASE + "/task", { method: "POST", headers: JSON_TYPE, body: stream });
  await expectError(await app(request), 413);
  assert(counter.pulled <= MIB + 2 * chunk, `pulled ${counter.pulled} bytes`);
  assert(counter.cancelled, "the body stream is cancelled");
  assertEquals(service.calls, []);
});

Deno.test("a declared Content-Length over the limit is a 413 without reading the body", async () => {
  const { app } = setup({ maxBodyBytes: 1000 });
  const { stream, counter } = countingStream(5000, 100);
  const request = new Request(BASE + "/call", {
    method: "POST",
    headers: { ...JSON_TYPE, "content-length": "5000" },
    body: stream,
  });
  await expectError(await app(request), 413);
  assertEquals(counter.pulled, 0);
});

Deno.test("a Content-Length under the limit is not trusted", async () => {
  const { app } = setup({ maxBodyBytes: 1000 });
  const { stream, counter } = countingStream(50_000, 100);
  const request = new Request(BASE + "/call", {
    method: "POST",
    headers: { ...JSON_TYPE, "content-length": "10" },
    body: stream,
  });
  await expectError(await app(request), 413);
  assert(counter.pulled <= 1200, `pulled ${counter.pulled} bytes`);
});

// --- POST /call -------------------------------------------------------------------------

Deno.test("POST /call delivers the validated response and answers with the task", async () => {
  const { app, service } = setup();
  const fetchResponse: FetchResponse = {
    id: "f1",
    success: true,
    status: 200,
    statusText: "OK",
    data: { ok: [1, 2] },
    headers: { "content-type": "application/json" },
    url: "https://api.test/x",
    timestamp: 1_700_000_000_000,
  };
  const response = await app(post("/call", { taskId: "t9", fetchResponse }));
  assertEquals(response.status, 200);
  const body = await readJson(response);
  assertEquals(body.success, true);
  assertEquals((body.task as TaskView).id, "t9");
  assertEquals(service.calls, [{ method: "deliver", taskId: "t9", response: fetchResponse }]);
});

Deno.test("POST /call passes the exact body as text or base64 beside data", async () => {
  const { app, service } = setup();
  const text = { id: "f1", success: true, status: 200, data: { n: 1.5 }, body: '{"n":1.50}' };
  const binary = { id: "f2", success: true, status: 200, bodyBase64: "//5B" };
  assertEquals((await app(post("/call", { taskId: "t1", fetchResponse: text }))).status, 200);
  assertEquals((await app(post("/call", { taskId: "t1", fetchResponse: binary }))).status, 200);
  assertEquals(service.calls, [
    { method: "deliver", taskId: "t1", response: text },
    { method: "deliver", taskId: "t1", response: binary },
  ]);
});

Deno.test("POST /call passes a failed fetch with its error and drops unknown fields", async () => {
  const { app, service } = setup();
  const fetchResponse = { id: "f1", success: false, error: "Connection refused", junk: true };
  assertEquals((await app(post("/call", { taskId: "t1", fetchResponse }))).status, 200);
  assertEquals(service.calls, [{
    method: "deliver",
    taskId: "t1",
    response: { id: "f1", success: false, error: "Connection refused" },
  }]);
});

Deno.test("POST /call refuses ill-typed deliveries with 400", async () => {
  const { app, service } = setup();
  const ok = { id: "f1", success: true };
  const cases: [unknown, string][] = [
    [[], "must be a JSON object"],
    [{ fetchResponse: ok }, "Cannot deliver fetch response to task undefined: must match"],
    [{ taskId: "../x", fetchResponse: ok }, `task "../x": must match`],
    [{ taskId: "t1" }, `"fetchResponse" must be an object, got undefined`],
    [{ taskId: "t1", fetchResponse: [] }, `"fetchResponse" must be an object`],
    [{ taskId: "t1", fetchResponse: { success: true } }, `"fetchResponse.id" must be a non-empty`],
    [{ taskId: "t1", fetchResponse: { id: "", success: true } }, `"fetchResponse.id"`],
    [{ taskId: "t1", fetchResponse: { id: "f1" } }, `"fetchResponse.success" must be a boolean`],
    [{ taskId: "t1", fetchResponse: { ...ok, success: "true" } }, `"fetchResponse.success"`],
    [{ taskId: "t1", fetchResponse: { ...ok, status: 200.5 } }, `"fetchResponse.status" must be`],
    [{ taskId: "t1", fetchResponse: { ...ok, status: -1 } }, `"fetchResponse.status"`],
    [{ taskId: "t1", fetchResponse: { ...ok, status: 1000 } }, `"fetchResponse.status"`],
    [{ taskId: "t1", fetchResponse: { ...ok, status: "200" } }, `"fetchResponse.status"`],
    [{ taskId: "t1", fetchResponse: { ...ok, statusText: 1 } }, `"fetchResponse.statusText"`],
    [
      { taskId: "t1", fetchResponse: { ...ok, error: {} } },
      `"fetchResponse.error" must be a string`,
    ],
    [{ taskId: "t1", fetchResponse: { ...ok, url: null } }, `"fetchResponse.url"`],
    [{ taskId: "t1", fetchResponse: { ...ok, headers: [] } }, `"fetchResponse.headers" must be`],
    [{ taskId: "t1", fetchResponse: { ...ok, headers: { a: 1 } } }, `"fetchResponse.headers"`],
    [{ taskId: "t1", fetchResponse: { ...ok, timestamp: "now" } }, `"fetchResponse.timestamp"`],
    [{ taskId: "t1", fetchResponse: { ...ok, body: 1 } }, `"fetchResponse.body" must be a string`],
    [
      { taskId: "t1", fetchResponse: { ...ok, bodyBase64: "%%" } },
      `"fetchResponse.bodyBase64" must be a base64 string`,
    ],
    [
      { taskId: "t1", fetchResponse: { ...ok, body: "a", bodyBase64: "YQ==" } },
      `give at most one of "fetchResponse.body" and "fetchResponse.bodyBase64"`,
    ],
  ];
  for (const [body, expected] of cases) {
    const message = await expectError(await app(post("/call", body)), 400);
    assert(message.includes(expected), `${JSON.stringify(body)}: "${message}"`);
  }
  assertEquals(service.calls, []);
  for (const status of [0, 999]) {
    const response = await app(post("/call", { taskId: "t1", fetchResponse: { ...ok, status } }));
    assertEquals(response.status, 200);
  }
});

// --- GET /status ------------------------------------------------------------------------

Deno.test("GET /status?id= answers with the task in detail", async () => {
  const { app, service } = setup();
  const response = await app(get("/status?id=t7"));
  assertEquals(response.status, 200);
  assertEquals(await readJson(response), {
    success: true,
    task: { ...VIEW, id: "t7", logs: [], fetches: [] },
  });
  assertEquals(service.calls, [{ method: "get", id: "t7" }]);
});

Deno.test("GET /status lists tasks with status, name, order, cursor and limit", async () => {
  const { app, service } = setup();
  assertEquals(await readJson(await app(get("/status"))), {
    success: true,
    tasks: [VIEW],
    nextCursor: null,
  });
  assertEquals((await app(get("/status?status=paused&limit=10000"))).status, 200);
  const page = "/status?status=completed,error&name=job%201&order=newest&cursor=17.a-1&limit=5";
  assertEquals((await app(get(page))).status, 200);
  assertEquals(service.calls, [
    { method: "list", query: {} },
    { method: "list", query: { status: ["paused"], limit: 10000 } },
    {
      method: "list",
      query: {
        status: ["completed", "error"],
        name: "job 1",
        order: "newest",
        cursor: "17.a-1",
        limit: 5,
      },
    },
  ]);
});

Deno.test("GET /status refuses bad ids, statuses and limits with 400", async () => {
  const { app, service } = setup();
  const cases: [string, string][] = [
    ["/status?id=..%2Fx", `Cannot get status of task "../x": must match`],
    ["/status?id=%2e%2e", `Cannot get status of task "..": must match`],
    ["/status?id=a%00b", `"a\\u0000b"`],
    ["/status?id=", `Cannot get status of task "": must match`],
    [
      "/status?status=done",
      `"status" must be one of running, paused, completed, error, cancelled (or several, comma-separated), got "done"`,
    ],
    ["/status?limit=0", `"limit" must be an integer from 1 to 10000, got "0"`],
    ["/status?limit=10001", `"limit" must be an integer from 1 to 10000`],
    ["/status?limit=-5", `"limit"`],
    ["/status?limit=1.5", `"limit"`],
    ["/status?limit=abc", `"limit"`],
    ["/status?limit=", `"limit"`],
    ["/status?status=paused,done", `got "done"`],
    ["/status?order=up", `"order" must be oldest or newest, got "up"`],
    ["/status?cursor=abc", `"cursor" must be the nextCursor of a listing, got "abc"`],
    ["/status?cursor=12.%2E%2E", `"cursor"`],
    ["/status?name=", `"name" must be 1 to 200 characters`],
  ];
  for (const [path, expected] of cases) {
    const message = await expectError(await app(get(path)), 400);
    assert(message.includes(expected), `${path}: "${message}"`);
  }
  assertEquals(service.calls, []);
});

// --- GET /health ------------------------------------------------------------------------

Deno.test("GET /health answers 200 with the service's health", async () => {
  const { app } = setup();
  const response = await app(get("/health"));
  assertEquals(response.status, 200);
  assertEquals(await readJson(response), { success: true, ...HEALTH });
});

Deno.test("GET /health answers 503 with status shutting_down while shutting down", async () => {
  const { app } = setup({ shuttingDown: true });
  const response = await app(get("/health"));
  assertEquals(response.status, 503);
  assertEquals(await readJson(response), { success: true, ...HEALTH, status: "shutting_down" });
});

// --- Routing ----------------------------------------------------------------------------

Deno.test("unknown paths and near misses are 404", async () => {
  const { app } = setup();
  for (
    const path of [
      "/ui/",
      "/ui/nope.js",
      "/task/",
      "/TASK",
      "//task",
      "/task%2F",
      "/tasks",
      "/status/",
      "/health.json",
      "/call/x",
    ]
  ) {
    const message = await expectError(await app(post(path, { code: "1" })), 404);
    assert(message.startsWith("Cannot route POST "), message);
  }
  await expectError(await app(get("/nope")), 404);
});

Deno.test("a wrong method is a 405 that lists the allowed ones", async () => {
  const { app, service } = setup();
  const cases: [string, string, string][] = [
    ["GET", "/task", "POST, DELETE"],
    ["PUT", "/call", "POST"],
    ["POST", "/status", "GET, HEAD"],
    ["DELETE", "/health", "GET, HEAD"],
    ["OPTIONS", "/status", "GET, HEAD"],
  ];
  for (const [method, path, allow] of cases) {
    const response = await app(new Request(BASE + path, { method }));
    assertEquals(response.headers.get("allow"), allow, `${method} ${path}`);
    const message = await expectError(response, 405);
    assertEquals(message, `Method ${method} is not allowed on ${path}; allowed: ${allow}`);
  }
  assertEquals(service.calls, []);
});

Deno.test("HEAD is served like GET without a body, and is a 405 where GET is", async () => {
  const { app } = setup();
  const status = await app(new Request(BASE + "/status", { method: "HEAD" }));
  assertEquals(status.status, 200);
  assertEquals(status.headers.get("content-type"), "application/json; charset=utf-8");
  assertEquals(status.body, null);
  const health = await app(new Request(BASE + "/health", { method: "HEAD" }));
  assertEquals([health.status, health.body], [200, null]);
  const task = await app(new Request(BASE + "/task", { method: "HEAD" }));
  assertEquals([task.status, task.headers.get("allow"), task.body], [405, "POST, DELETE", null]);
  const missing = await app(new Request(BASE + "/status?id=..", { method: "HEAD" }));
  assertEquals([missing.status, missing.body], [400, null]);
});

// --- Auth -------------------------------------------------------------------------------

Deno.test("with a token, every route but /health needs the bearer token", async () => {
  const token = "s3cret-Token_1";
  const { app, service } = setup({ token });
  const requests = [
    () => post("/task", { code: "1" }),
    () => post("/call", { taskId: "t1", fetchResponse: { id: "f1", success: true } }),
    () => get("/status"),
    () => get("/status?id=t1"),
  ];
  for (const make of requests) {
    const missing = await app(make());
    assertEquals(missing.headers.get("www-authenticate"), 'Bearer realm="flowstate"');
    assertEquals(await expectError(missing, 401), "Missing or invalid bearer token");
  }
  const wrong = [
    `Bearer ${token}x`,
    `Bearer ${token.slice(0, -1)}`,
    "Bearer ",
    `Basic ${btoa(`user:${token}`)}`,
    token,
    `Bearer ${token} extra`,
  ];
  for (const authorization of wrong) {
    await expectError(await app(get("/status", { authorization })), 401);
  }
  assertEquals(service.calls, []);
  for (const make of requests) {
    const request = make();
    request.headers.set("authorization", `Bearer ${token}`);
    assertEquals((await app(request)).status, 200);
  }
  assertEquals((await app(get("/status", { authorization: `bearer ${token}` }))).status, 200);
  assertEquals((await app(get("/health"))).status, 200);
  assertEquals(service.calls.length, 5);
});

Deno.test("auth is checked before the body is read", async () => {
  const { app } = setup({ token: "t0ken" });
  const { stream, counter } = countingStream(10 * MIB, 64 * KIB);
  const request = new Request(BASE + "/task", { method: "POST", headers: JSON_TYPE, body: stream });
  await expectError(await app(request), 401);
  assertEquals(counter.pulled, 0);
});

Deno.test("without a token no authorization is needed", async () => {
  const { app } = setup();
  assertEquals((await app(get("/status"))).status, 200);
  assertEquals((await app(get("/status", { authorization: "Bearer anything" }))).status, 200);
});

// --- Service errors and logging ---------------------------------------------------------

Deno.test("an HttpError from the service keeps its status, message and headers", async () => {
  const { app, service } = setup();
  service.failWith = new ConflictError(`Cannot create task "t1": it already exists`);
  assertEquals(
    await expectError(await app(post("/task", { code: "1", id: "t1" })), 409),
    `Cannot create task "t1": it already exists`,
  );
  service.failWith = new NotFoundError(`Cannot find task "t2"`);
  assertEquals(await expectError(await app(get("/status?id=t2")), 404), `Cannot find task "t2"`);
  service.failWith = new UnavailableError("Server is shutting down");
  const unavailable = await app(
    post("/call", { taskId: "t1", fetchResponse: { id: "f", success: true } }),
  );
  assertEquals(unavailable.headers.get("retry-after"), "1");
  assertEquals(await expectError(unavailable, 503), "Server is shutting down");
});

Deno.test("any other error is logged with its stack and answered 500 with a generic message", async () => {
  const { app, service, logs } = setup();
  service.failWith = new Error("disk exploded at sector 7");
  const message = await expectError(await app(post("/task", { code: "1" })), 500);
  assertEquals(message, "Internal server error");
  const failure = logs().find((line) => line.msg === "request failed");
  if (!failure) throw new Error("the failure should be logged");
  assertEquals(failure.level, "error");
  const error = failure.error as Record<string, string>;
  assertEquals(error.message, "disk exploded at sector 7");
  assert(error.stack?.includes("disk exploded"), "with the stack");

  service.failWith = "a thrown string";
  assertEquals(await expectError(await app(get("/status")), 500), "Internal server error");
});

Deno.test("each request logs one line with method, path, status and duration, never body or token", async () => {
  const token = "very-secret-token";
  const { app, lines, logs } = setup({ token });
  await app(post("/task", { code: "secret code body" }, { authorization: `Bearer ${token}` }));
  await app(get("/status?id=t1"));
  await app(get("/health"));
  const requests = logs().filter((line) => line.msg === "request");
  assertEquals(requests.length, 3);
  assertEquals(
    requests.map(({ method, path, status }) => ({ method, path, status })),
    [
      { method: "POST", path: "/task", status: 200 },
      { method: "GET", path: "/status", status: 401 },
      { method: "GET", path: "/health", status: 200 },
    ],
  );
  for (const line of requests) {
    assert(typeof line.durationMs === "number" && line.durationMs >= 0);
  }
  const all = lines.join("\n");
  assert(!all.includes(token), "the token is never logged");
  assert(!all.includes("secret code body"), "the body is never logged");
});

Deno.test("every answer carries an X-Request-Id, the one its request line logs", async () => {
  const { app, logs } = setup();
  const first = await app(get("/health"));
  const second = await app(get("/nowhere"));
  const ids = [first, second].map((res) => res.headers.get("x-request-id"));
  for (const id of ids) assert(id && /^[0-9a-f-]{36}$/.test(id), `a UUID, got ${id}`);
  assert(ids[0] !== ids[1], "one id per request");
  const logged = logs().filter((line) => line.msg === "request").map((line) => line.requestId);
  assertEquals(logged, ids);
  await second.body?.cancel();
  await first.body?.cancel();
});

Deno.test("a caller's own X-Request-Id is kept when it is a plain token, replaced otherwise", async () => {
  const { app } = setup();
  const kept = await app(get("/health", { "x-request-id": "edge-7f3a:1" }));
  assertEquals(kept.headers.get("x-request-id"), "edge-7f3a:1");
  const replaced = await app(get("/health", { "x-request-id": "has spaces\tand tabs" }));
  assert(replaced.headers.get("x-request-id") !== "has spaces\tand tabs");
  await kept.body?.cancel();
  await replaced.body?.cancel();
});
