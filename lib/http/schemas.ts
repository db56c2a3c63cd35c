/**
 * The shapes of the API as JSON Schema: what each request body and query takes, and what
 * the answers hold. Validation and `GET /openapi.json` both read these objects: the fields
 * a body accepts are exactly the ones documented ({@link checkFields} refuses any other),
 * and the document is generated from the route table, so neither can drift from the other.
 *
 * @module
 */
import { BadRequestError } from "../errors.ts";
import { isObject, quote } from "./json_io.ts";

/** A JSON Schema (2020-12, the dialect of OpenAPI 3.1). */
export type JsonSchema = Record<string, unknown>;

/** One field of a JSON object body. */
export interface FieldSpec {
  schema: JsonSchema;
  required?: boolean;
}

/** A JSON object body: its fields, and the action its errors name. */
export interface BodySpec {
  /** Component name in the OpenAPI document. */
  name: string;
  /** `Cannot <action>: ...` in error messages. */
  action: string;
  description: string;
  fields: Record<string, FieldSpec>;
  /** A valid body. */
  example: Record<string, unknown>;
}

/** One query parameter. */
export interface QuerySpec {
  description: string;
  schema: JsonSchema;
  /** A valid value, sent by the test that walks the document. */
  example: string;
}

/**
 * Refuses a body that is not an object or has fields `spec` does not list, naming them
 * (a typo like `inputs` is an error, not silently ignored).
 */
export function checkFields(body: unknown, spec: BodySpec): Record<string, unknown> {
  if (!isObject(body)) {
    throw new BadRequestError(
      `Cannot ${spec.action}: the body must be a JSON object, got ${quote(body)}`,
    );
  }
  const unknown = Object.keys(body).filter((key) => !Object.hasOwn(spec.fields, key));
  if (unknown.length > 0) {
    throw new BadRequestError(
      `Cannot ${spec.action}: unknown field${unknown.length > 1 ? "s" : ""} ${
        unknown.map((key) => quote(key)).join(", ")
      } (accepted: ${Object.keys(spec.fields).join(", ")})`,
    );
  }
  return body;
}

/** The JSON Schema of a body. */
export function bodySchema(spec: BodySpec): JsonSchema {
  const required = Object.entries(spec.fields).filter(([, f]) => f.required).map(([k]) => k);
  return {
    type: "object",
    description: spec.description,
    properties: Object.fromEntries(Object.entries(spec.fields).map(([k, f]) => [k, f.schema])),
    ...(required.length > 0 ? { required } : {}),
    additionalProperties: false,
    examples: [spec.example],
  };
}

/** Task ids. */
export const TASK_ID_SCHEMA: JsonSchema = {
  type: "string",
  pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
  examples: ["order-42"],
};

/** A wait in ms. */
export const WAIT_SCHEMA: JsonSchema = {
  type: "integer",
  minimum: 0,
  maximum: 300_000,
  description: "Answer once the task is finished, or after this many ms.",
};

/** Bounds of a task's retry policy. */
export const RETRY_LIMITS = {
  attempts: { min: 1, max: 20, default: 3 },
  backoffMs: { min: 0, max: 600_000, default: 500 },
  maxBackoffMs: { min: 0, max: 3_600_000, default: 30_000 },
} as const;

/** A task's retry policy for its fetches. */
export const RETRY_SCHEMA: JsonSchema = {
  type: "object",
  description: "How the server retries this task's failed fetches before the guest sees them.",
  additionalProperties: false,
  properties: {
    ...Object.fromEntries(
      Object.entries(RETRY_LIMITS).map(([key, limit]) => [key, {
        type: "integer",
        minimum: limit.min,
        maximum: limit.max,
        default: limit.default,
      }]),
    ),
    on: {
      type: "array",
      items: { enum: ["network", "5xx", "429"] },
      minItems: 1,
      uniqueItems: true,
      default: ["network", "5xx", "429"],
    },
  },
  examples: [{ attempts: 4, backoffMs: 200, maxBackoffMs: 5000, on: ["network", "5xx", "429"] }],
};

/** Body of `POST /task`. */
export const CREATE_TASK_BODY: BodySpec = {
  name: "CreateTask",
  action: "create task",
  description: 'Give exactly one of "code" and "task".',
  example: { code: "1 + 1", wait: 1000 },
  fields: {
    id: { schema: TASK_ID_SCHEMA },
    name: { schema: { type: "string", maxLength: 200 } },
    code: { schema: { type: "string", minLength: 1, examples: ["1 + 1"] } },
    task: { schema: { type: "string", pattern: "^[A-Za-z0-9_-]{1,64}$" } },
    input: { schema: { description: "Any JSON value, the global `input` of the code." } },
    autoFetch: { schema: { type: "boolean" } },
    wait: { schema: WAIT_SCHEMA },
    lang: { schema: { enum: ["js", "ts"], description: "Language of `code`." } },
    retry: { schema: RETRY_SCHEMA },
    callbackUrl: {
      schema: {
        type: "string",
        format: "uri",
        maxLength: 2048,
        description: "Absolute http(s) URL the finished task is POSTed to, signed.",
      },
    },
  },
};

/** The fields of a fetch response but its `id`. */
const FETCH_RESPONSE_FIELDS: JsonSchema = {
  success: { type: "boolean" },
  status: { type: "integer", minimum: 0, maximum: 999 },
  statusText: { type: "string" },
  headers: { type: "object", additionalProperties: { type: "string" } },
  data: { description: "The body as JSON data (parsed JSON, or text)." },
  body: { type: "string", description: "The exact body, when it is UTF-8 text." },
  bodyBase64: { type: "string", description: "The exact body bytes, as base64." },
  error: { type: "string" },
  url: { type: "string" },
  timestamp: { type: "number" },
  bodyPending: {
    type: "boolean",
    description:
      "The body is not complete: this part carries the status, headers and the bytes so far; the next parts follow with the same id and `part` 1, 2..., the last without `bodyPending`.",
  },
  part: {
    type: "integer",
    minimum: 0,
    description: "Index of this delivery among the parts of a response (0 may be left out).",
  },
  attempts: {
    type: "array",
    maxItems: 1000,
    description: "Every attempt made at the request, when it was retried.",
    items: {
      type: "object",
      required: ["at"],
      properties: {
        at: { type: "string" },
        status: { type: "integer" },
        error: { type: "string" },
        retryInMs: { type: "number" },
      },
    },
  },
};

/** Body of `POST /call`. */
export const DELIVERY_BODY: BodySpec = {
  name: "Delivery",
  action: "deliver fetch response",
  description: "A response for a fetch the task is paused on.",
  example: {
    taskId: "order-42",
    fetchResponse: { id: "fetch_1", success: true, status: 200, data: { ok: true } },
  },
  fields: {
    taskId: { schema: TASK_ID_SCHEMA, required: true },
    fetchResponse: {
      required: true,
      schema: {
        type: "object",
        required: ["id", "success"],
        properties: { id: { type: "string", minLength: 1 }, ...FETCH_RESPONSE_FIELDS },
      },
    },
  },
};

/** Body of `POST /cancel`. */
export const CANCEL_BODY: BodySpec = {
  name: "Cancel",
  action: "cancel task",
  description: "The task to end in `cancelled`, and why.",
  example: { taskId: "order-42", reason: "customer left" },
  fields: {
    taskId: { schema: TASK_ID_SCHEMA, required: true },
    reason: { schema: { type: "string", maxLength: 1000 } },
  },
};

/** Body of `POST /retry`. */
export const RETRY_BODY: BodySpec = {
  name: "Retry",
  action: "retry task",
  description: "A task in `error` or `cancelled` to run on from its journal.",
  example: { taskId: "order-42" },
  fields: { taskId: { schema: TASK_ID_SCHEMA, required: true } },
};

/** Body of `POST /fork`. */
export const FORK_BODY: BodySpec = {
  name: "Fork",
  action: "fork task",
  description: "A new task replaying the original's fetches below `atFetch` (default: all), " +
    "with the recorded responses `responses` replaces, then running live.",
  example: {
    taskId: "order-42",
    id: "order-42-fixed",
    atFetch: 2,
    responses: { "1": { success: true, status: 200, data: { ok: true } } },
  },
  fields: {
    taskId: { schema: TASK_ID_SCHEMA, required: true },
    id: { schema: TASK_ID_SCHEMA },
    atFetch: { schema: { type: "integer", minimum: 0 } },
    responses: {
      schema: {
        type: "object",
        description: "Fetch index to the response replayed in place of the recorded one.",
        propertyNames: { pattern: "^(0|[1-9][0-9]{0,8})$" },
        additionalProperties: {
          type: "object",
          required: ["success"],
          properties: FETCH_RESPONSE_FIELDS,
        },
      },
    },
  },
};

/** Body of `POST /signal`. */
export const SIGNAL_BODY: BodySpec = {
  name: "Signal",
  action: "send signal",
  description: "A signal for the task's `FlowState.waitForSignal(name)`.",
  example: { taskId: "order-42", name: "approval", data: { approved: true } },
  fields: {
    taskId: { schema: TASK_ID_SCHEMA, required: true },
    name: { schema: { type: "string", minLength: 1, maxLength: 200 }, required: true },
    data: { schema: { description: "Any JSON value, what the wait resolves with." } },
  },
};

const STRING_MAP = { type: "object", additionalProperties: { type: "string" } };

/** The task view every route answers with. */
export const TASK_VIEW_SCHEMA: JsonSchema = {
  type: "object",
  required: ["id", "name", "status", "pauseCount", "createdAt", "updatedAt"],
  properties: {
    id: { type: "string" },
    name: { type: "string" },
    status: { type: "string", description: "running, paused, completed, error, cancelled..." },
    pauseCount: { type: "integer" },
    fetchRequest: { $ref: "#/components/schemas/FetchRequest" },
    fetchRequests: { type: "array", items: { $ref: "#/components/schemas/FetchRequest" } },
    wakeAt: {
      type: "string",
      format: "date-time",
      description: "Paused: when the earliest armed timer is due.",
    },
    signalsAwaited: {
      type: "array",
      items: { type: "string" },
      description: "Paused: the signals awaited, one per waiting call.",
    },
    result: {},
    error: {
      type: "object",
      description: "Why it stopped (error, or cancelled with kind `cancelled`).",
      properties: {
        name: { type: "string" },
        message: { type: "string" },
        kind: { type: "string" },
        stack: {
          type: "string",
          description: "The guest stack, one frame a line, with line and column in task.js",
        },
      },
    },
    callbackUrl: { type: "string" },
    retries: { type: "integer", minimum: 1 },
    forkedFrom: {
      type: "object",
      properties: { taskId: { type: "string" }, atFetch: { type: "integer" } },
    },
    createdAt: { type: "string", format: "date-time" },
    updatedAt: { type: "string", format: "date-time" },
  },
};

/** One fetch of a task as the list of fetches shows it. */
export const FETCH_LOG_SCHEMA: JsonSchema = {
  type: "object",
  properties: {
    index: { type: "integer" },
    id: { type: "string" },
    method: { type: "string" },
    url: { type: "string" },
    status: { type: ["integer", "null"] },
    statusText: { type: "string" },
    error: { type: "string" },
    requestedAt: { type: "string", format: "date-time" },
    respondedAt: { type: "string", format: "date-time" },
    headers: STRING_MAP,
    attempts: { type: "array", items: { type: "object" } },
    size: { type: "integer" },
    bodyPreview: { type: "string" },
    bodyEncoding: { const: "base64" },
    parts: {
      type: "integer",
      description: "How many parts the response arrived in, when its body came in parts.",
    },
    receiving: { const: true, description: "More parts of the response are to come." },
    aborted: {
      const: true,
      description:
        "The task aborted the fetch (its signal) before its response, or its last part, was delivered.",
    },
    abortedAt: { type: "string", format: "date-time" },
  },
};

/** Components of the document, by name. */
export const COMPONENT_SCHEMAS: Record<string, JsonSchema> = {
  TaskView: TASK_VIEW_SCHEMA,
  FetchRequest: {
    type: "object",
    description: "A pending request; one left to an outside worker (`external`) is in full.",
    properties: {
      id: { type: "string" },
      url: { type: "string" },
      method: { type: "string" },
      external: { const: true },
      headers: STRING_MAP,
      body: { type: "string" },
      bodyBase64: { type: "string" },
      bodyBytes: {
        type: "integer",
        description: "In lists and events: the size of a body over 16 KiB, given instead of it.",
      },
      redirect: { enum: ["manual", "error", "follow"] },
      receivedParts: {
        type: "integer",
        description:
          "Present while the response arrives in parts: parts delivered so far; the next one carries `part` equal to it.",
      },
    },
  },
  TaskDetail: {
    allOf: [{ $ref: "#/components/schemas/TaskView" }, {
      type: "object",
      properties: {
        logs: { type: "array", items: { type: "object" } },
        fetches: { type: "array", items: { $ref: "#/components/schemas/FetchLog" } },
        timers: {
          type: "array",
          description: "Timers that fired (`firedAt`) and those still armed, in that order " +
            "(absent: none).",
          items: {
            type: "object",
            required: ["id"],
            properties: {
              id: { type: "integer" },
              dueAt: { type: "string", format: "date-time" },
              firedAt: { type: "string", format: "date-time" },
            },
          },
        },
        signals: {
          type: "array",
          description: "Signals received, in order (absent: none).",
          items: {
            type: "object",
            required: ["name", "receivedAt"],
            properties: {
              name: { type: "string" },
              receivedAt: { type: "string", format: "date-time" },
              data: {},
            },
          },
        },
        retriedAt: {
          type: "array",
          description: "When each POST /retry ran the task again (absent: never).",
          items: { type: "string", format: "date-time" },
        },
        journalSkipped: {
          type: "object",
          description: "The view read the journal's last MiB only: the committed bytes " +
            "before it, whose console lines and fetches are not listed (`journal=full`).",
          required: ["bytes"],
          properties: { bytes: { type: "integer" } },
        },
        webhook: {
          type: "object",
          description: "With a callbackUrl, once finished: what became of the webhook.",
          properties: {
            status: { enum: ["pending", "delivered", "failed"] },
            attempts: { type: "integer" },
            at: { type: "string", format: "date-time" },
            httpStatus: { type: "integer" },
            error: { type: "string" },
          },
        },
      },
    }],
  },
  FetchLog: FETCH_LOG_SCHEMA,
  Error: {
    type: "object",
    required: ["success", "error"],
    properties: { success: { const: false }, error: { type: "string" } },
    additionalProperties: false,
  },
};

/** `{ success: true, <key>: <schema> }`. */
export function success(key: string, schema: JsonSchema): JsonSchema {
  return {
    type: "object",
    required: ["success", key],
    properties: { success: { const: true }, [key]: schema },
  };
}

/** A `$ref` to a component. */
export function ref(name: string): JsonSchema {
  return { $ref: `#/components/schemas/${name}` };
}
