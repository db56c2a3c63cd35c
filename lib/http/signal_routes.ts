/**
 * `POST /signal`: sends a signal to a task, the outside world's answer to its
 * `FlowState.waitForSignal(name)`.
 *
 * @module
 */
import { BadRequestError } from "../errors.ts";
import type { Signal } from "../engine/mod.ts";
import { has, json, quote, readJsonBody } from "./json_io.ts";
import { errorAnswer } from "./openapi.ts";
import type { AppDeps, Routes } from "./route.ts";
import { checkFields, ref, SIGNAL_BODY, success } from "./schemas.ts";
import { parseTaskId } from "./task_routes.ts";

/** Longest signal name, in UTF-16 code units. */
export const MAX_SIGNAL_NAME_LENGTH = 200;

/** The signal route. */
export function signalRoutes(deps: AppDeps): Routes {
  const { service, config } = deps;
  return {
    "/signal": {
      auth: true,
      docs: {
        POST: {
          summary: "Send a signal to a task (kept until the task waits for it)",
          body: SIGNAL_BODY,
          responses: {
            "200": { description: "The task", schema: success("task", ref("TaskView")) },
            "400": errorAnswer("Invalid body"),
            "404": errorAnswer("Unknown task"),
            "409": errorAnswer("The task has ended"),
          },
        },
      },
      methods: {
        POST: async (req) => {
          const { taskId, signal } = parseSignal(await readJsonBody(req, config.maxBodyBytes));
          return json(200, { success: true, task: await service.signal(taskId, signal) });
        },
      },
    },
  };
}

/** Validates the body of `POST /signal`. */
export function parseSignal(value: unknown): { taskId: string; signal: Signal } {
  const body = checkFields(value, SIGNAL_BODY);
  const taskId = parseTaskId(body.taskId, "send signal to task");
  const name = body.name;
  if (typeof name !== "string" || name === "" || name.length > MAX_SIGNAL_NAME_LENGTH) {
    throw new BadRequestError(
      `Cannot send signal: "name" must be a string of 1 to ${MAX_SIGNAL_NAME_LENGTH} characters, got ${
        quote(name)
      }`,
    );
  }
  const signal: Signal = { name };
  if (has(body, "data")) signal.data = body.data;
  return { taskId, signal };
}
