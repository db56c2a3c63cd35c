/**
 * The HTTP edge: a function from `Request` to `Response` that authenticates, routes,
 * validates and hands the work to the {@link TaskService}.
 *
 * Every body is JSON. Errors are `{ success: false, error }` with the status of the
 * {@link HttpError} thrown; anything else is logged and answered with a generic 500.
 *
 * @module
 */
import { jsonNestingExceeds, MAX_JSON_DEPTH } from "../json_depth.ts";
import { timingSafeEqual } from "node:crypto";
import type { Config } from "../config.ts";
import {
  BadRequestError,
  ensureError,
  HttpError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  UnauthorizedError,
} from "../errors.ts";
import type { Logger } from "../log.ts";
import {
  type CreateTaskInput,
  isTaskStatus,
  type ListTasksQuery,
  type TaskService,
  TaskStatus,
} from "../service/mod.ts";
import type { FetchResponse } from "../engine/mod.ts";

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

/** Longest rendering of an offending value in an error message. */
const MAX_QUOTE_LENGTH = 80;

const JSON_HEADERS = {
  "content-type": "application/json; charset=utf-8",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
};

/** What {@link createApp} needs. */
export interface AppDeps {
  service: TaskService;
  config: Config;
  logger: Logger;
  /** `true` once the server is draining; `/health` then answers 503. */
  isShuttingDown?: () => boolean;
}

/** The app: a function from request to response. */
export type App = (req: Request) => Promise<Response>;

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

/** Renders a value for an error message: JSON, shortened. */
function quote(value: unknown): string {
  let text: string;
  try {
    text = value === undefined ? "undefined" : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_QUOTE_LENGTH ? `${text.slice(0, MAX_QUOTE_LENGTH)}…` : text;
}

type Handler = (req: Request, url: URL) => Promise<Response>;

interface Route {
  /** Methods served; `HEAD` is served wherever `GET` is. */
  methods: Record<string, Handler>;
  /** Whether the bearer token is required. */
  auth: boolean;
}

/** Creates the app. */
export function createApp(deps: AppDeps): App {
  const { service, config, logger } = deps;
  const isShuttingDown = deps.isShuttingDown ?? (() => false);
  const checkAuth = createAuthCheck(config.token);

  const routes: Record<string, Route> = {
    "/task": {
      auth: true,
      methods: {
        POST: async (req) => {
          const input = parseCreateTask(await readJsonBody(req, config.maxBodyBytes));
          return json(200, { success: true, task: await service.create(input) });
        },
      },
    },
    "/call": {
      auth: true,
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
      methods: {
        GET: async (_req, url) => {
          const id = url.searchParams.get("id");
          if (id !== null) {
            const task = await service.get(parseTaskId(id, "get status of task"));
            return json(200, { success: true, task });
          }
          return json(200, { success: true, tasks: service.list(parseListQuery(url)) });
        },
      },
    },
    "/health": {
      auth: false,
      methods: {
        GET: () => {
          const health = service.health();
          if (isShuttingDown()) {
            return Promise.resolve(
              json(503, { success: true, ...health, status: "shutting_down" }),
            );
          }
          return Promise.resolve(json(200, { success: true, ...health }));
        },
      },
    },
  };

  const handle = async (req: Request, url: URL): Promise<Response> => {
    const route = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : undefined;
    if (!route) throw new NotFoundError(`Cannot route ${req.method} ${quote(url.pathname)}`);
    if (route.auth) await checkAuth(req);
    const method = req.method === "HEAD" && route.methods.GET ? "GET" : req.method;
    const handler = Object.hasOwn(route.methods, method) ? route.methods[method] : undefined;
    if (!handler) {
      const allow = Object.keys(route.methods).flatMap((m) => m === "GET" ? [m, "HEAD"] : [m]);
      throw new MethodNotAllowedError(req.method, url.pathname, allow);
    }
    const response = await handler(req, url);
    return req.method === "HEAD" ? new Response(null, response) : response;
  };

  return async (req: Request): Promise<Response> => {
    const started = performance.now();
    const url = new URL(req.url);
    let response: Response;
    try {
      response = await handle(req, url);
    } catch (thrown) {
      response = errorResponse(thrown, req, url, logger);
      if (req.method === "HEAD") response = new Response(null, response);
    }
    logger.info("request", {
      method: req.method,
      path: url.pathname,
      status: response.status,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    });
    return response;
  };
}

function errorResponse(thrown: unknown, req: Request, url: URL, logger: Logger): Response {
  if (thrown instanceof HttpError) {
    return json(thrown.status, { success: false, error: thrown.message }, thrown.headers);
  }
  const error = ensureError(thrown);
  logger.error("request failed", {
    method: req.method,
    path: url.pathname,
    error: { name: error.name, message: error.message, stack: error.stack },
  });
  return json(500, { success: false, error: "Internal server error" });
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

/** Builds the bearer check; with no token configured every request passes. */
function createAuthCheck(token: string | undefined): (req: Request) => Promise<void> {
  if (token === undefined) return () => Promise.resolve();
  const expected = sha256(token);
  return async (req) => {
    const header = req.headers.get("authorization") ?? "";
    const match = /^Bearer +(\S+) *$/i.exec(header);
    // Hash both sides so the comparison takes the same time whatever the lengths.
    const [want, got] = await Promise.all([expected, sha256(match?.[1] ?? "")]);
    if (!match || !timingSafeEqual(want, got)) throw new UnauthorizedError();
  };
}

async function sha256(text: string): Promise<Uint8Array> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return new Uint8Array(digest);
}

/**
 * Reads the body as JSON, enforcing `limit` while streaming: at most `limit` bytes plus one
 * chunk are ever held. Throws 413 when larger, 400 for invalid UTF-8 or JSON.
 */
export async function readJsonBody(req: Request, limit: number): Promise<unknown> {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^[0-9]+$/.test(declared) && Number(declared) > limit) {
    await req.body?.cancel().catch(() => {});
    throw new PayloadTooLargeError(limit);
  }
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > limit) {
          await reader.cancel().catch(() => {});
          throw new PayloadTooLargeError(limit);
        }
        chunks.push(value);
      }
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw new BadRequestError(`Cannot read request body: ${ensureError(error).message}`, {
        cause: error,
      });
    } finally {
      reader.releaseLock();
    }
  }
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new BadRequestError("Cannot decode request body: it is not valid UTF-8", {
      cause: error,
    });
  }
  if (text.trim() === "") throw new BadRequestError("Cannot parse request body: it is empty");
  if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) {
    throw new BadRequestError(
      `Cannot parse request body: JSON nested deeper than ${MAX_JSON_DEPTH} levels`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BadRequestError(
      `Cannot parse request body as JSON: ${ensureError(error).message}`,
      { cause: error },
    );
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function has(body: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(body, key);
}

/** Validates the body of `POST /task`. */
export function parseCreateTask(body: unknown): CreateTaskInput {
  const fail = (why: string) => new BadRequestError(`Cannot create task: ${why}`);
  if (!isObject(body)) throw fail(`the body must be a JSON object, got ${quote(body)}`);
  const hasCode = has(body, "code");
  const hasTask = has(body, "task");
  if (hasCode === hasTask) {
    throw fail(`give exactly one of "code" and "task"`);
  }
  const input: CreateTaskInput = {};
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
  return input;
}

/** Validates the body of `POST /call`. */
export function parseDelivery(body: unknown): { taskId: string; fetchResponse: FetchResponse } {
  const fail = (why: string) => new BadRequestError(`Cannot deliver fetch response: ${why}`);
  if (!isObject(body)) throw fail(`the body must be a JSON object, got ${quote(body)}`);
  const taskId = parseTaskId(body.taskId, "deliver fetch response to task");
  const r = body.fetchResponse;
  if (!isObject(r)) throw fail(`"fetchResponse" must be an object, got ${quote(r)}`);
  if (typeof r.id !== "string" || r.id === "") {
    throw fail(`"fetchResponse.id" must be a non-empty string, got ${quote(r.id)}`);
  }
  if (typeof r.success !== "boolean") {
    throw fail(`"fetchResponse.success" must be a boolean, got ${quote(r.success)}`);
  }
  const out: FetchResponse = { id: r.id, success: r.success };
  if (has(r, "status")) {
    const s = r.status;
    if (typeof s !== "number" || !Number.isInteger(s) || s < 0 || s > MAX_STATUS) {
      throw fail(
        `"fetchResponse.status" must be an integer from 0 to ${MAX_STATUS}, got ${quote(s)}`,
      );
    }
    out.status = s;
  }
  for (const key of ["statusText", "error", "url"] as const) {
    if (!has(r, key)) continue;
    const value = r[key];
    if (typeof value !== "string") {
      throw fail(`"fetchResponse.${key}" must be a string, got ${quote(value)}`);
    }
    out[key] = value;
  }
  if (has(r, "headers")) {
    const headers = r.headers;
    if (!isObject(headers) || !Object.values(headers).every((v) => typeof v === "string")) {
      throw fail(`"fetchResponse.headers" must be an object of strings, got ${quote(headers)}`);
    }
    out.headers = headers as Record<string, string>;
  }
  if (has(r, "timestamp")) {
    if (typeof r.timestamp !== "number" || !Number.isFinite(r.timestamp)) {
      throw fail(`"fetchResponse.timestamp" must be a number, got ${quote(r.timestamp)}`);
    }
    out.timestamp = r.timestamp;
  }
  if (has(r, "data")) out.data = r.data;
  return { taskId, fetchResponse: out };
}

/** Validates the query of `GET /status` (without `id`). */
export function parseListQuery(url: URL): ListTasksQuery {
  const query: ListTasksQuery = {};
  const status = url.searchParams.get("status");
  if (status !== null) {
    if (!isTaskStatus(status)) {
      throw new BadRequestError(
        `Cannot list tasks: "status" must be one of ${Object.values(TaskStatus).join(", ")}, got ${
          quote(status)
        }`,
      );
    }
    query.status = status;
  }
  const limit = url.searchParams.get("limit");
  if (limit !== null) {
    if (!/^[1-9][0-9]{0,5}$/.test(limit) || Number(limit) > MAX_LIST_LIMIT) {
      throw new BadRequestError(
        `Cannot list tasks: "limit" must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${
          quote(limit)
        }`,
      );
    }
    query.limit = Number(limit);
  }
  return query;
}
