/**
 * `GET /events`: the task transitions as a Server-Sent Events stream.
 *
 * Each event is `id: <boot>-<seq>`, `event: <type>` and `data: <transition JSON>`. A client
 * that reconnects with `Last-Event-ID` (header, or the `lastEventId` query parameter) first
 * gets the kept events after that id, then the live ones; `?id=` and `?status=` (each a
 * comma-separated list) filter both. A comment line every {@link HEARTBEAT_MS} keeps idle
 * connections open through proxies; a client that falls {@link MAX_QUEUED_EVENTS} events
 * behind is disconnected (it reconnects with its last id and misses nothing kept).
 *
 * @module
 */
import { BadRequestError } from "../errors.ts";
import {
  isTaskStatus,
  type TaskEventHub,
  TaskStatus,
  type TaskTransition,
} from "../service/mod.ts";
import { quote } from "./json_io.ts";
import type { AppDeps, Routes } from "./route.ts";
import { parseTaskId } from "./task_routes.ts";
import { errorAnswer } from "./openapi.ts";

/** Interval of the keep-alive comment, ms. */
export const HEARTBEAT_MS = 15_000;
/** Events queued for one slow client before it is disconnected. */
export const MAX_QUEUED_EVENTS = 10_000;
/** Reconnection delay suggested to clients, ms. */
const RETRY_MS = 1000;

/** Filters of `GET /events`. */
export interface EventFilter {
  ids?: ReadonlySet<string>;
  statuses?: ReadonlySet<string>;
}

/** The events route. */
export function eventRoutes(deps: AppDeps): Routes {
  return {
    "/events": {
      auth: true,
      docs: {
        GET: {
          summary: "Task transitions as Server-Sent Events; Last-Event-ID resumes",
          query: {
            id: {
              description: "Comma-separated task ids.",
              schema: { type: "string" },
              example: "walk",
            },
            status: {
              description: "Comma-separated statuses after the transition.",
              schema: { type: "string" },
              example: "completed,error",
            },
            lastEventId: {
              description: "Resume after this event (as the Last-Event-ID header).",
              schema: { type: "string" },
              example: "x-0",
            },
          },
          responses: {
            "200": {
              description: "The stream",
              schema: { type: "string" },
              mediaType: "text/event-stream",
            },
            "400": errorAnswer("Invalid filter"),
          },
        },
      },
      methods: {
        GET: (req, url) => {
          const filter = parseEventFilter(url);
          const lastId = req.headers.get("last-event-id") ?? url.searchParams.get("lastEventId");
          return Promise.resolve(eventStream(deps.service.events, filter, lastId, req.signal));
        },
      },
    },
  };
}

/** Validates the query of `GET /events`. */
export function parseEventFilter(url: URL): EventFilter {
  const filter: EventFilter = {};
  const ids = listParam(url, "id");
  if (ids) filter.ids = new Set(ids.map((id) => parseTaskId(id, "stream events of task")));
  const statuses = listParam(url, "status");
  if (statuses) {
    for (const status of statuses) {
      if (!isTaskStatus(status)) {
        throw new BadRequestError(
          `Cannot stream events: "status" must be a comma-separated list of ${
            Object.values(TaskStatus).join(", ")
          }, got ${quote(status)}`,
        );
      }
    }
    filter.statuses = new Set(statuses);
  }
  return filter;
}

/** Whether `event` passes `filter`. */
export function matchesFilter(event: TaskTransition, filter: EventFilter): boolean {
  return (!filter.ids || filter.ids.has(event.taskId)) &&
    (!filter.statuses || filter.statuses.has(event.status));
}

/** One event in the SSE wire format. */
export function formatEvent(event: TaskTransition): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

function listParam(url: URL, name: string): string[] | undefined {
  const values = url.searchParams.getAll(name).flatMap((value) => value.split(","));
  return values.length === 0 ? undefined : values;
}

/** The response streaming `hub`'s events after `lastId`, then live, until `signal` aborts. */
function eventStream(
  hub: TaskEventHub,
  filter: EventFilter,
  lastId: string | null,
  signal: AbortSignal,
): Response {
  const encoder = new TextEncoder();
  const cleanup: Array<() => void> = [];
  const stop = () => {
    for (const undo of cleanup.splice(0)) undo();
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let open = true;
      const end = () => {
        if (!open) return;
        open = false;
        stop();
        try {
          controller.close();
        } catch {
          // already closed by the reader
        }
      };
      const send = (text: string) => {
        if (!open) return;
        if ((controller.desiredSize ?? 0) <= 0) return end();
        controller.enqueue(encoder.encode(text));
      };
      send(`retry: ${RETRY_MS}\n: connected\n\n`);
      // Replay and subscription happen in the same turn: nothing is missed or repeated.
      for (const event of hub.since(lastId)) {
        if (matchesFilter(event, filter)) send(formatEvent(event));
      }
      cleanup.push(hub.subscribe((event) => {
        if (matchesFilter(event, filter)) send(formatEvent(event));
      }));
      cleanup.push(hub.onClose(end));
      const heartbeat = setInterval(() => send(": keep-alive\n\n"), HEARTBEAT_MS);
      cleanup.push(() => clearInterval(heartbeat));
      const onAbort = () => end();
      signal.addEventListener("abort", onAbort, { once: true });
      cleanup.push(() => signal.removeEventListener("abort", onAbort));
    },
    cancel() {
      stop();
    },
  }, new CountQueuingStrategy({ highWaterMark: MAX_QUEUED_EVENTS }));
  return new Response(body, {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "x-accel-buffering": "no",
    },
  });
}
