/**
 * The task routes of the original contract: `POST /task`, `POST /call`, `GET /status`,
 * `GET /health`, and the validation of their inputs.
 *
 * @module
 */
import { BadRequestError } from "../errors.ts";
import { type FetchAttempt, type FetchResponse, isBase64 } from "../engine/mod.ts";
import { RETRY_CONDITIONS, type RetryPolicy } from "../outbound/mod.ts";
import {
  type CreateTaskInput,
  decodeCursor,
  DEFAULT_LIST_LIMIT,
  isTaskStatus,
  type ListTasksQuery,
  type TaskLang,
  TaskStatus,
} from "../service/mod.ts";
import { has, isObject, json, quote, readJsonBody, readTextBody } from "./json_io.ts";
import { JSON_BODY_TYPES } from "./request_guard.ts";
import { createAuthCheck } from "./auth.ts";
import type { AppDeps, Routes } from "./route.ts";
import { parseWaitMs, untilFinished } from "./wait.ts";
import {
  checkFields,
  CREATE_TASK_BODY,
  DELIVERY_BODY,
  type QuerySpec,
  ref,
  RETRY_LIMITS,
  success,
  TASK_ID_SCHEMA,
  WAIT_SCHEMA,
} from "./schemas.ts";
import { errorAnswer } from "./openapi.ts";

/** Query parameters `POST /task` reads beside a script body. */
const SCRIPT_QUERY_DOCS: Record<string, QuerySpec> = {
  id: {
    description: "Task id (script bodies only).",
    schema: TASK_ID_SCHEMA,
    example: "from-file",
  },
  name: {
    description: "Display name (script bodies only).",
    schema: { type: "string" },
    example: "job",
  },
  autoFetch: {
    description: "Per-task AUTO_FETCH (script bodies only).",
    schema: { enum: ["true", "false"] },
    example: "true",
  },
  wait: { description: "Wait in ms (script bodies only).", schema: WAIT_SCHEMA, example: "0" },
  input: {
    description: "JSON input (script bodies only).",
    schema: { type: "string" },
    example: "{}",
  },
  retry: {
    description: "JSON retry policy (script bodies only).",
    schema: { type: "string" },
    example: '{"attempts":2}',
  },
  callbackUrl: {
    description: "Webhook URL (script bodies only).",
    schema: { type: "string", format: "uri" },
    example: "https://hooks.example.com/flowstate",
  },
};

const TASK_ANSWER = { description: "The task", schema: success("task", ref("TaskView")) };

/** Ids of tasks: what `POST /task` accepts as `id` and what `/call` and `/status` take. */
export const TASK_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Names of task definitions (`tasks/<name>.js`). */
export const TASK_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** Longest accepted task display name, in UTF-16 code units. */
export const MAX_TASK_NAME_LENGTH = 200;

/** Largest `limit` of `GET /status`. */
export const MAX_LIST_LIMIT = 10_000;

/** Highest accepted HTTP status in a delivered fetch response. */
const MAX_STATUS = 999;

/**
 * Validates a task id; throws a {@link BadRequestError} naming `action` otherwise.
 *
 * @example parseTaskId("../x") // throws: Cannot parse task id "../x": must match ...
 */
export function parseTaskId(value: unknown, action = "parse task id"): string {
  if (typeof value !== "string" || !TASK_ID_PATTERN.test(value)) {
    throw new BadRequestError(
      `Cannot ${action} ${quote(value)}: must match ${TASK_ID_PATTERN.source}`,
    );
  }
  return value;
}

/** Whether `value` is a valid task id. */
export function isTaskId(value: unknown): value is string {
  return typeof value === "string" && TASK_ID_PATTERN.test(value);
}

/** The routes of the task contract. */
export function taskRoutes(deps: AppDeps): Routes {
  const { service, config } = deps;
  const checkAuth = createAuthCheck(config.token);
  const isShuttingDown = deps.isShuttingDown ?? (() => false);

  /** The body of `POST /task` as JSON, or built from a script body and the query string. */
  const readCreateBody = async (req: Request, url: URL): Promise<unknown> => {
    const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    const lang = Object.hasOwn(SCRIPT_TYPES, type) ? SCRIPT_TYPES[type] : undefined;
    if (lang === undefined) return await readJsonBody(req, config.maxBodyBytes);
    const body = scriptQuery(url);
    body.code = await readTextBody(req, config.maxBodyBytes);
    if (lang === "ts") body.lang = "ts";
    return body;
  };
  return {
    "/task": {
      auth: true,
      docs: {
        POST: {
          summary: "Create a task and run it to its first pause, completion or error",
          body: CREATE_TASK_BODY,
          otherBodies: Object.fromEntries(
            Object.keys(SCRIPT_TYPES).map((type) => [type, { type: "string" }]),
          ),
          query: SCRIPT_QUERY_DOCS,
          responses: {
            "200": TASK_ANSWER,
            "400": errorAnswer("Invalid body"),
            "409": errorAnswer("The id exists"),
            "413": errorAnswer("Body too large"),
            "415": errorAnswer("Unsupported Content-Type"),
          },
        },
      },
      bodyTypes: [...JSON_BODY_TYPES, ...Object.keys(SCRIPT_TYPES)],
      methods: {
        POST: async (req, url) => {
          const { wait, ...input } = parseCreateTask(await readCreateBody(req, url));
          if (input.callbackUrl !== undefined && config.webhookSecret === undefined) {
            throw new BadRequestError(
              `Cannot create task: "callbackUrl" needs WEBHOOK_SECRET set on the server (deliveries are signed with it)`,
            );
          }
          const task = await untilFinished(
            service.events,
            wait ?? 0,
            req.signal,
            () => service.create(input),
            async (id) => {
              const { logs: _logs, fetches: _fetches, ...view } = await service.get(id);
              return view;
            },
          );
          return json(200, { success: true, task });
        },
      },
    },
    "/call": {
      auth: true,
      docs: {
        POST: {
          summary: "Deliver the response of a fetch the task is paused on",
          body: DELIVERY_BODY,
          responses: {
            "200": TASK_ANSWER,
            "400": errorAnswer("Invalid body"),
            "404": errorAnswer("Unknown task"),
            "409": errorAnswer("Not pending"),
          },
        },
      },
      methods: {
        POST: async (req) => {
          const body = await readJsonBody(req, config.maxBodyBytes);
          const { taskId, fetchResponse } = parseDelivery(body);
          return json(200, { success: true, task: await service.deliver(taskId, fetchResponse) });
        },
      },
    },
    "/status": {
      auth: true,
      docs: {
        GET: {
          summary: "One task in detail (with id), one of its fetches (with fetch), or the list",
          query: {
            id: {
              description: "Task id: answer with its detail.",
              schema: TASK_ID_SCHEMA,
              example: "walk",
            },
            fetch: {
              description: "With id: one fetch in full, by index or fetch id.",
              schema: { type: "string" },
              example: "0",
            },
            journal: {
              description: "With id: `full` lists the console lines and fetches of the whole " +
                "journal, not only those of its last MiB.",
              schema: { enum: ["full"] },
              example: "full",
            },
            wait: {
              description: "With id: wait in ms for the task to finish.",
              schema: WAIT_SCHEMA,
              example: "0",
            },
            status: {
              description: "Without id: only tasks in this status (or these, comma-separated).",
              schema: { type: "string" },
              example: "completed",
            },
            name: {
              description: "Without id: only tasks with this exact name.",
              schema: { type: "string" },
              example: "job",
            },
            order: {
              description: "Without id: `oldest` (default) or `newest` first, by creation time.",
              schema: { enum: ["oldest", "newest"] },
              example: "newest",
            },
            cursor: {
              description: "Without id: the `nextCursor` of the previous page.",
              schema: { type: "string" },
              example: "1764669600000.hello",
            },
            limit: {
              description: `Without id: at most this many (default ${DEFAULT_LIST_LIMIT}).`,
              schema: { type: "integer", minimum: 1, maximum: MAX_LIST_LIMIT },
              example: "10",
            },
          },
          responses: {
            "200": {
              description: "`task` (with id), `fetch` (with fetch) or `tasks`",
              schema: {
                oneOf: [
                  success("task", ref("TaskDetail")),
                  success("fetch", ref("FetchLog")),
                  {
                    type: "object",
                    required: ["success", "tasks", "nextCursor"],
                    properties: {
                      success: { const: true },
                      tasks: { type: "array", items: ref("TaskView") },
                      nextCursor: { type: ["string", "null"] },
                    },
                  },
                ],
              },
            },
            "400": errorAnswer("Invalid query"),
            "404": errorAnswer("Unknown task or fetch"),
          },
        },
      },
      methods: {
        GET: async (req, url) => {
          const id = url.searchParams.get("id");
          if (id !== null) {
            const taskId = parseTaskId(id, "get status of task");
            const fetch = url.searchParams.get("fetch");
            if (fetch !== null) {
              const ref = /^(0|[1-9][0-9]{0,8})$/.test(fetch) ? Number(fetch) : fetch;
              return json(200, { success: true, fetch: await service.fetch(taskId, ref) });
            }
            const waitParam = url.searchParams.get("wait");
            const wait = waitParam === null ? 0 : parseWaitMs(waitParam, "wait for task");
            const journal = url.searchParams.get("journal");
            if (journal !== null && journal !== "full") {
              throw new BadRequestError(
                `Invalid journal ${JSON.stringify(journal)}: use "full", or leave it out`,
              );
            }
            const get = () => service.get(taskId, { full: journal === "full" });
            const task = await untilFinished(service.events, wait, req.signal, get, get);
            return json(200, { success: true, task });
          }
          const { tasks, nextCursor } = await service.list(parseListQuery(url));
          return json(200, { success: true, tasks, nextCursor });
        },
      },
    },
    "/source": {
      auth: true,
      docs: {
        GET: {
          summary: "A task's code, input, options and the variables view of its last pause",
          query: {
            id: { description: "Task id.", schema: TASK_ID_SCHEMA, example: "walk" },
          },
          responses: {
            "200": {
              description: "The source",
              schema: success("source", {
                type: "object",
                properties: {
                  id: { type: "string" },
                  code: { type: "string" },
                  task: { type: "string" },
                  input: {},
                  autoFetch: { type: "boolean" },
                  variables: { type: "object" },
                  cpuMs: { type: "number" },
                  errorStack: { type: "string" },
                },
              }),
            },
            "400": errorAnswer("Invalid id"),
            "404": errorAnswer("Unknown task"),
          },
        },
      },
      methods: {
        GET: async (_req, url) => {
          const taskId = parseTaskId(url.searchParams.get("id") ?? undefined, "get source of task");
          return json(200, { success: true, source: await service.source(taskId) });
        },
      },
    },
    "/health": {
      auth: false,
      docs: {
        GET: {
          summary:
            "Liveness; with the token (or none configured) also version and tasks by status; " +
            "503 while draining",
          responses: {
            "200": { description: "Serving", schema: { type: "object" } },
            "503": { description: "Shutting down", schema: { type: "object" } },
          },
        },
      },
      methods: {
        GET: async (req) => {
          // Without the token: liveness only; versions and counts help an attacker.
          const authorized = await checkAuth(req).then(() => true, () => false);
          const health = service.health();
          const view = authorized ? health : { status: health.status };
          if (isShuttingDown()) {
            return json(503, { success: true, ...view, status: "shutting_down" });
          }
          return json(200, { success: true, ...view });
        },
      },
    },
  };
}

/** Script media types `POST /task` takes as the code itself, and their language. */
export const SCRIPT_TYPES: Readonly<Record<string, TaskLang>> = {
  "application/javascript": "js",
  "text/javascript": "js",
  "application/typescript": "ts",
  "text/typescript": "ts",
};

/** Query parameters of `POST /task` with a script body. */
const SCRIPT_QUERY = [
  "id",
  "name",
  "task",
  "autoFetch",
  "wait",
  "input",
  "callbackUrl",
  "retry",
] as const;

/**
 * The fields `POST /task` with a script body takes from the query string, as a JSON body
 * would carry them (`autoFetch` and `wait` converted, `input` parsed as JSON).
 */
export function scriptQuery(url: URL): Record<string, unknown> {
  const fail = (why: string) => new BadRequestError(`Cannot create task: ${why}`);
  const body: Record<string, unknown> = {};
  for (const key of url.searchParams.keys()) {
    if (!(SCRIPT_QUERY as readonly string[]).includes(key)) {
      throw fail(
        `unknown query parameter ${quote(key)} (a script body takes ${SCRIPT_QUERY.join(", ")})`,
      );
    }
  }
  for (const key of ["id", "name", "callbackUrl"] as const) {
    const value = url.searchParams.get(key);
    if (value !== null) body[key] = value;
  }
  if (url.searchParams.has("task")) throw fail(`a script body is the code: give no "task"`);
  const autoFetch = url.searchParams.get("autoFetch");
  if (autoFetch !== null) {
    body.autoFetch = autoFetch === "true" ? true : autoFetch === "false" ? false : autoFetch;
  }
  const wait = url.searchParams.get("wait");
  if (wait !== null) body.wait = /^[0-9]{1,9}$/.test(wait) ? Number(wait) : wait;
  for (const key of ["input", "retry"] as const) {
    const value = url.searchParams.get(key);
    if (value === null) continue;
    try {
      body[key] = JSON.parse(value);
    } catch {
      throw fail(`"${key}" must be JSON, got ${quote(value)}`);
    }
  }
  return body;
}

/** Validates the body of `POST /task`; `wait` is the edge's, the rest the service's. */
export function parseCreateTask(value: unknown): CreateTaskInput & { wait?: number } {
  const fail = (why: string) => new BadRequestError(`Cannot create task: ${why}`);
  const body = checkFields(value, CREATE_TASK_BODY);
  const hasCode = has(body, "code");
  const hasTask = has(body, "task");
  if (hasCode === hasTask) {
    throw fail(`give exactly one of "code" and "task"`);
  }
  const input: CreateTaskInput & { wait?: number } = {};
  if (has(body, "wait")) input.wait = parseWaitMs(body.wait, "create task");
  if (hasCode) {
    if (typeof body.code !== "string" || body.code === "") {
      throw fail(`"code" must be a non-empty string, got ${quote(body.code)}`);
    }
    input.code = body.code;
  } else {
    if (typeof body.task !== "string" || !TASK_NAME_PATTERN.test(body.task)) {
      throw fail(`"task" must match ${TASK_NAME_PATTERN.source}, got ${quote(body.task)}`);
    }
    input.task = body.task;
  }
  if (has(body, "id")) input.id = parseTaskId(body.id, "create task with id");
  if (has(body, "name")) {
    if (typeof body.name !== "string" || body.name.length > MAX_TASK_NAME_LENGTH) {
      throw fail(
        `"name" must be a string of at most ${MAX_TASK_NAME_LENGTH} characters, got ${
          quote(body.name)
        }`,
      );
    }
    input.name = body.name;
  }
  if (has(body, "autoFetch")) {
    if (typeof body.autoFetch !== "boolean") {
      throw fail(`"autoFetch" must be a boolean, got ${quote(body.autoFetch)}`);
    }
    input.autoFetch = body.autoFetch;
  }
  if (has(body, "input")) input.input = body.input;
  if (has(body, "callbackUrl")) input.callbackUrl = parseCallbackUrl(body.callbackUrl);
  if (has(body, "retry")) input.retry = parseRetry(body.retry);
  if (has(body, "lang")) {
    if (body.lang !== "js" && body.lang !== "ts") {
      throw fail(`"lang" must be "js" or "ts", got ${quote(body.lang)}`);
    }
    if (!hasCode) throw fail(`"lang" goes with "code" (a definition's extension names its own)`);
    input.lang = body.lang;
  }
  return input;
}

/** A task's retry policy, defaults filled in. */
export function parseRetry(value: unknown): RetryPolicy {
  const fail = (why: string) => new BadRequestError(`Cannot create task: "retry${why}`);
  if (!isObject(value)) throw fail(`" must be an object, got ${quote(value)}`);
  const known = [...Object.keys(RETRY_LIMITS), "on"];
  const unknown = Object.keys(value).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw fail(`" has unknown field ${quote(unknown[0])} (accepted: ${known.join(", ")})`);
  }
  const number = (key: keyof typeof RETRY_LIMITS): number => {
    const limit = RETRY_LIMITS[key];
    const given = value[key] ?? limit.default;
    if (
      typeof given !== "number" || !Number.isInteger(given) || given < limit.min ||
      given > limit.max
    ) {
      throw fail(
        `.${key}" must be an integer from ${limit.min} to ${limit.max}, got ${quote(given)}`,
      );
    }
    return given;
  };
  const policy: RetryPolicy = {
    attempts: number("attempts"),
    backoffMs: number("backoffMs"),
    maxBackoffMs: number("maxBackoffMs"),
    on: [...RETRY_CONDITIONS],
  };
  if (policy.maxBackoffMs < policy.backoffMs) {
    throw fail(
      `.maxBackoffMs" must be at least backoffMs (${policy.backoffMs}), got ${policy.maxBackoffMs}`,
    );
  }
  if (has(value, "on")) {
    const on = value.on;
    if (
      !Array.isArray(on) || on.length === 0 ||
      !on.every((item) => RETRY_CONDITIONS.includes(item)) || new Set(on).size !== on.length
    ) {
      throw fail(
        `.on" must be a non-empty list of distinct ${
          RETRY_CONDITIONS.map((c) => `"${c}"`).join(", ")
        }, got ${quote(on)}`,
      );
    }
    policy.on = on;
  }
  return policy;
}

/** Longest accepted `callbackUrl`. */
export const MAX_CALLBACK_URL_LENGTH = 2048;

/** An absolute http or https URL without credentials. */
function parseCallbackUrl(value: unknown): string {
  const fail = () =>
    new BadRequestError(
      `Cannot create task: "callbackUrl" must be an absolute http or https URL of at most ${MAX_CALLBACK_URL_LENGTH} characters, got ${
        quote(value)
      }`,
    );
  if (typeof value !== "string" || value.length > MAX_CALLBACK_URL_LENGTH) throw fail();
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fail();
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password) {
    throw fail();
  }
  return url.href;
}

/** Validates the body of `POST /call`. */
export function parseDelivery(value: unknown): { taskId: string; fetchResponse: FetchResponse } {
  const fail = (why: string) => new BadRequestError(`Cannot deliver fetch response: ${why}`);
  const body = checkFields(value, DELIVERY_BODY);
  const taskId = parseTaskId(body.taskId, "deliver fetch response to task");
  const r = body.fetchResponse;
  if (isObject(r) && (typeof r.id !== "string" || r.id === "")) {
    throw fail(`"fetchResponse.id" must be a non-empty string, got ${quote(r.id)}`);
  }
  const fetchResponse = parseFetchResponse(r, "fetchResponse", fail);
  return { taskId, fetchResponse: { id: (r as { id: string }).id, ...fetchResponse } };
}

/**
 * Validates a fetch response as `/call` takes it, without its `id` (the caller checks or
 * sets it); `path` names it in errors (`"fetchResponse"`), `fail` makes the error.
 */
export function parseFetchResponse(
  r: unknown,
  path: string,
  fail: (why: string) => Error,
): Omit<FetchResponse, "id"> {
  if (!isObject(r)) throw fail(`"${path}" must be an object, got ${quote(r)}`);
  if (typeof r.success !== "boolean") {
    throw fail(`"${path}.success" must be a boolean, got ${quote(r.success)}`);
  }
  const out: Omit<FetchResponse, "id"> = { success: r.success };
  if (has(r, "status")) {
    const s = r.status;
    if (typeof s !== "number" || !Number.isInteger(s) || s < 0 || s > MAX_STATUS) {
      throw fail(`"${path}.status" must be an integer from 0 to ${MAX_STATUS}, got ${quote(s)}`);
    }
    out.status = s;
  }
  for (const key of ["statusText", "error", "url"] as const) {
    if (!has(r, key)) continue;
    const value = r[key];
    if (typeof value !== "string") {
      throw fail(`"${path}.${key}" must be a string, got ${quote(value)}`);
    }
    out[key] = value;
  }
  if (has(r, "headers")) {
    const headers = r.headers;
    if (!isObject(headers) || !Object.values(headers).every((v) => typeof v === "string")) {
      throw fail(`"${path}.headers" must be an object of strings, got ${quote(headers)}`);
    }
    out.headers = headers as Record<string, string>;
  }
  if (has(r, "timestamp")) {
    if (typeof r.timestamp !== "number" || !Number.isFinite(r.timestamp)) {
      throw fail(`"${path}.timestamp" must be a number, got ${quote(r.timestamp)}`);
    }
    out.timestamp = r.timestamp;
  }
  if (has(r, "data")) out.data = r.data;
  if (has(r, "bodyPending")) {
    if (typeof r.bodyPending !== "boolean") {
      throw fail(`"${path}.bodyPending" must be a boolean, got ${quote(r.bodyPending)}`);
    }
    if (r.bodyPending) out.bodyPending = true;
  }
  if (has(r, "part")) {
    const part = r.part;
    if (typeof part !== "number" || !Number.isSafeInteger(part) || part < 0) {
      throw fail(`"${path}.part" must be an integer from 0, got ${quote(part)}`);
    }
    out.part = part;
  }
  if (has(r, "attempts")) out.attempts = parseAttempts(r.attempts, `${path}.attempts`, fail);
  if (has(r, "body") && has(r, "bodyBase64")) {
    throw fail(`give at most one of "${path}.body" and "${path}.bodyBase64"`);
  }
  if (has(r, "body")) {
    if (typeof r.body !== "string") {
      throw fail(`"${path}.body" must be a string, got ${quote(r.body)}`);
    }
    out.body = r.body;
  }
  if (has(r, "bodyBase64")) {
    if (typeof r.bodyBase64 !== "string" || !isBase64(r.bodyBase64)) {
      throw fail(`"${path}.bodyBase64" must be a base64 string, got ${quote(r.bodyBase64)}`);
    }
    out.bodyBase64 = r.bodyBase64;
  }
  return out;
}

/** Most attempts a delivered response may list. */
const MAX_ATTEMPTS_LISTED = 1000;

/** The `attempts` of a delivered response: what the server (or a worker) tried. */
function parseAttempts(
  value: unknown,
  path: string,
  failWith: (why: string) => Error,
): FetchAttempt[] {
  const fail = () =>
    failWith(
      `"${path}" must be a list of at most ${MAX_ATTEMPTS_LISTED} { at, status?, error?, retryInMs? }, got ${
        quote(value)
      }`,
    );
  if (!Array.isArray(value) || value.length > MAX_ATTEMPTS_LISTED) throw fail();
  return value.map((item): FetchAttempt => {
    if (!isObject(item) || typeof item.at !== "string") throw fail();
    const attempt: FetchAttempt = { at: item.at };
    if (has(item, "status")) {
      if (typeof item.status !== "number" || !Number.isInteger(item.status)) throw fail();
      attempt.status = item.status;
    }
    if (has(item, "error")) {
      if (typeof item.error !== "string") throw fail();
      attempt.error = item.error;
    }
    if (has(item, "retryInMs")) {
      if (typeof item.retryInMs !== "number" || !Number.isFinite(item.retryInMs)) throw fail();
      attempt.retryInMs = item.retryInMs;
    }
    return attempt;
  });
}

/** Validates the query of `GET /status` (without `id`). */
export function parseListQuery(url: URL): ListTasksQuery {
  const query: ListTasksQuery = {};
  const fail = (message: string) => new BadRequestError(`Cannot list tasks: ${message}`);
  const status = url.searchParams.get("status");
  if (status !== null) {
    const statuses = status.split(",");
    const wrong = statuses.find((value) => !isTaskStatus(value));
    if (wrong !== undefined) {
      throw fail(
        `"status" must be one of ${Object.values(TaskStatus).join(", ")} (or several, ` +
          `comma-separated), got ${quote(wrong)}`,
      );
    }
    query.status = statuses as TaskStatus[];
  }
  const name = url.searchParams.get("name");
  if (name !== null) {
    if (name.length === 0 || name.length > MAX_TASK_NAME_LENGTH) {
      throw fail(`"name" must be 1 to ${MAX_TASK_NAME_LENGTH} characters, got ${quote(name)}`);
    }
    query.name = name;
  }
  const order = url.searchParams.get("order");
  if (order !== null) {
    if (order !== "oldest" && order !== "newest") {
      throw fail(`"order" must be oldest or newest, got ${quote(order)}`);
    }
    query.order = order;
  }
  const cursor = url.searchParams.get("cursor");
  if (cursor !== null) {
    try {
      decodeCursor(cursor);
    } catch {
      throw fail(`"cursor" must be the nextCursor of a listing, got ${quote(cursor)}`);
    }
    query.cursor = cursor;
  }
  const limit = url.searchParams.get("limit");
  if (limit !== null) {
    if (!/^[1-9][0-9]{0,5}$/.test(limit) || Number(limit) > MAX_LIST_LIMIT) {
      throw fail(`"limit" must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${quote(limit)}`);
    }
    query.limit = Number(limit);
  }
  return query;
}
