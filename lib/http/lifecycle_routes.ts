/**
 * The lifecycle routes: `POST /cancel`, `POST /retry`, `POST /fork` and `DELETE /task`, and
 * the validation of their inputs.
 *
 * @module
 */
import { BadRequestError } from "../errors.ts";
import type { ForkTaskInput } from "../service/mod.ts";
import { has, isObject, json, quote, readJsonBody } from "./json_io.ts";
import type { AppDeps, Routes } from "./route.ts";
import {
  CANCEL_BODY,
  checkFields,
  FORK_BODY,
  ref,
  RETRY_BODY,
  success,
  TASK_ID_SCHEMA,
} from "./schemas.ts";
import { errorAnswer } from "./openapi.ts";
import { parseFetchResponse, parseTaskId } from "./task_routes.ts";

const TASK_ANSWER = { description: "The task", schema: success("task", ref("TaskView")) };

/** Longest accepted cancel reason, in UTF-16 code units. */
export const MAX_REASON_LENGTH = 1000;

/** Largest fetch index `POST /fork` takes. */
const MAX_FETCH_INDEX = 999_999_999;

/** The routes of the task lifecycle. */
export function lifecycleRoutes(deps: AppDeps): Routes {
  const { service, config } = deps;
  const body = (req: Request) => readJsonBody(req, config.maxBodyBytes);
  return {
    "/cancel": {
      auth: true,
      docs: {
        POST: {
          summary: "End a running or paused task in `cancelled`: its fetches in flight are " +
            "aborted, later deliveries refused",
          body: CANCEL_BODY,
          responses: {
            "200": TASK_ANSWER,
            "400": errorAnswer("Invalid body"),
            "404": errorAnswer("Unknown task"),
            "409": errorAnswer("The task is finished"),
          },
        },
      },
      methods: {
        POST: async (req) => {
          const { taskId, reason } = parseCancel(await body(req));
          return json(200, { success: true, task: await service.cancel(taskId, reason) });
        },
      },
    },
    "/retry": {
      auth: true,
      docs: {
        POST: {
          summary: "Run a task in `error` or `cancelled` on from its journal, trying the " +
            "failed step again",
          body: RETRY_BODY,
          responses: {
            "200": TASK_ANSWER,
            "400": errorAnswer("Invalid body"),
            "404": errorAnswer("Unknown task"),
            "409": errorAnswer("The task is not in error or cancelled"),
          },
        },
      },
      methods: {
        POST: async (req) => {
          const fields = checkFields(await body(req), RETRY_BODY);
          const taskId = parseTaskId(fields.taskId, "retry task");
          return json(200, { success: true, task: await service.retry(taskId) });
        },
      },
    },
    "/fork": {
      auth: true,
      docs: {
        POST: {
          summary: "A new task with the same code and input that replays the original's " +
            "journal up to a fetch, with responses optionally replaced, then runs live",
          body: FORK_BODY,
          responses: {
            "200": TASK_ANSWER,
            "400": errorAnswer("Invalid body, or no such fetch"),
            "404": errorAnswer("Unknown task"),
            "409": errorAnswer("The fork's id exists"),
          },
        },
      },
      methods: {
        POST: async (req) => {
          const input = parseFork(await body(req));
          return json(200, { success: true, task: await service.fork(input) });
        },
      },
    },
    "/task": {
      auth: true,
      docs: {
        DELETE: {
          summary: "Remove a finished task and its files (cancel a running or paused one first)",
          query: {
            id: { description: "Task id.", schema: TASK_ID_SCHEMA, example: "walk" },
          },
          responses: {
            "200": { description: "The task as it was", schema: success("task", ref("TaskView")) },
            "400": errorAnswer("Invalid id"),
            "404": errorAnswer("Unknown task"),
            "409": errorAnswer("The task is running or paused"),
          },
        },
      },
      methods: {
        DELETE: async (_req, url) => {
          for (const key of url.searchParams.keys()) {
            if (key !== "id") {
              throw new BadRequestError(
                `Cannot delete task: unknown query parameter ${quote(key)} (accepted: id)`,
              );
            }
          }
          const taskId = parseTaskId(url.searchParams.get("id") ?? undefined, "delete task");
          return json(200, { success: true, task: await service.remove(taskId) });
        },
      },
    },
  };
}

/** Validates the body of `POST /cancel`. */
export function parseCancel(value: unknown): { taskId: string; reason?: string } {
  const fields = checkFields(value, CANCEL_BODY);
  const taskId = parseTaskId(fields.taskId, "cancel task");
  if (!has(fields, "reason")) return { taskId };
  const reason = fields.reason;
  if (typeof reason !== "string" || reason.length > MAX_REASON_LENGTH) {
    throw new BadRequestError(
      `Cannot cancel task: "reason" must be a string of at most ${MAX_REASON_LENGTH} characters, got ${
        quote(reason)
      }`,
    );
  }
  return { taskId, reason };
}

/** Validates the body of `POST /fork`. */
export function parseFork(value: unknown): ForkTaskInput {
  const fail = (why: string) => new BadRequestError(`Cannot fork task: ${why}`);
  const fields = checkFields(value, FORK_BODY);
  const input: ForkTaskInput = { taskId: parseTaskId(fields.taskId, "fork task") };
  if (has(fields, "id")) input.id = parseTaskId(fields.id, "fork task with id");
  if (has(fields, "atFetch")) {
    const at = fields.atFetch;
    if (typeof at !== "number" || !Number.isInteger(at) || at < 0 || at > MAX_FETCH_INDEX) {
      throw fail(`"atFetch" must be an integer from 0 to ${MAX_FETCH_INDEX}, got ${quote(at)}`);
    }
    input.atFetch = at;
  }
  if (has(fields, "responses")) {
    const responses = fields.responses;
    if (!isObject(responses)) {
      throw fail(
        `"responses" must be an object of fetch index to response, got ${quote(responses)}`,
      );
    }
    input.responses = {};
    for (const [key, response] of Object.entries(responses)) {
      if (!/^(0|[1-9][0-9]{0,8})$/.test(key)) {
        throw fail(`"responses" keys must be fetch indexes (0, 1, ...), got ${quote(key)}`);
      }
      if (isObject(response) && has(response, "id")) {
        throw fail(`"responses.${key}" takes no "id": it answers the recorded request`);
      }
      input.responses[Number(key)] = parseFetchResponse(response, `responses.${key}`, fail);
    }
  }
  return input;
}
