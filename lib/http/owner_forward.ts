/**
 * Forwarding to a task's owner in a cluster: a request that changes a task (`POST /call`,
 * `/signal`, `/cancel`, `/retry`, `DELETE /task`, and `GET /status` with `wait`) reaching a
 * replica that does not hold the task is sent on to the replica that holds its lease, and
 * that replica's answer is the answer. When no live replica holds it (none ever did, it is
 * finished, or its replica died and the lease expired) the request is handled here, and
 * the store's lease check makes sure only one replica commits the task's next state.
 *
 * A forwarded request carries {@link FORWARDED_HEADER} and is never forwarded again, so two
 * replicas disagreeing for a moment cannot bounce a request between them. An owner that
 * cannot be reached answers 503 with `Retry-After`: the task's lease expires soon and a
 * retry is handled by whoever takes it over.
 *
 * @module
 */
import { concat } from "@std/bytes/concat";
import { UnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { App } from "./app.ts";
import { json } from "./json_io.ts";

/** The header marking a request one replica forwarded to another. */
export const FORWARDED_HEADER = "flowstate-forwarded";

/** Routes whose body names the task in `taskId`. */
const BODY_ROUTES = new Set(["/call", "/signal", "/cancel", "/retry"]);
/** Request headers not copied to the forwarded request. */
const HOP_HEADERS = ["host", "connection", "keep-alive", "content-length", "transfer-encoding"];

/** Answer headers not copied back (the body is read decoded, and whole). */
const ANSWER_HOP_HEADERS = [
  "connection",
  "keep-alive",
  "content-length",
  "content-encoding",
  "transfer-encoding",
];

/** What forwarding needs. */
export interface OwnerForwardDeps {
  /** The origin of the live replica holding the task's lease, `null` when none or this one. */
  ownerAddress(taskId: string): Promise<string | null>;
  /**
   * Whether this replica surely holds the task, its lease in force: then it is handled here
   * at once. A replica whose leases may have lapsed asks the database who holds it.
   */
  holds(taskId: string): boolean;
  /** Bodies larger than this are not read here (the route refuses them). */
  maxBodyBytes: number;
  logger: Logger;
}

/** `app`, with the requests for another replica's tasks forwarded to it. */
export function forwardToOwner(app: App, deps: OwnerForwardDeps): App {
  return async (given: Request): Promise<Response> => {
    if (given.headers.has(FORWARDED_HEADER)) return await app(given);
    const url = new URL(given.url);
    const target = await targetOf(given, url, deps.maxBodyBytes);
    if (!target) return await app(given);
    const req = target.request;
    if (target.taskId === undefined || deps.holds(target.taskId)) return await app(req);
    let address: string | null;
    try {
      address = await deps.ownerAddress(target.taskId);
    } catch {
      address = null; // The database is out: handling it here answers that.
    }
    if (address === null) return await app(req);
    const headers = new Headers(req.headers);
    for (const name of HOP_HEADERS) headers.delete(name);
    headers.set(FORWARDED_HEADER, "1");
    try {
      const response = await fetch(new URL(url.pathname + url.search, address), {
        method: req.method,
        headers,
        body: target.body,
        redirect: "manual",
      });
      // Read whole: the answers are small JSON.
      const answer = await response.arrayBuffer();
      const answerHeaders = new Headers(response.headers);
      for (const name of ANSWER_HOP_HEADERS) answerHeaders.delete(name);
      return new Response(answer, { status: response.status, headers: answerHeaders });
    } catch (error) {
      deps.logger.warn("cannot forward to a task's owner", {
        taskId: target.taskId,
        owner: address,
        error: String(error),
      });
      const refused = new UnavailableError(
        `Task "${target.taskId}" is held by a replica that does not answer; try again`,
      );
      return json(503, { success: false, error: refused.message }, refused.headers);
    }
  };
}

/**
 * For a request that changes a task: the task's id (`undefined` when the body names none)
 * and the request to handle, its body read (`undefined` for other requests).
 */
async function targetOf(
  req: Request,
  url: URL,
  maxBodyBytes: number,
): Promise<{ taskId?: string; request: Request; body?: Uint8Array<ArrayBuffer> } | undefined> {
  if (req.method === "DELETE" && url.pathname === "/task") {
    return { taskId: url.searchParams.get("id") ?? undefined, request: req };
  }
  if (req.method === "GET" && url.pathname === "/status" && url.searchParams.has("wait")) {
    return { taskId: url.searchParams.get("id") ?? undefined, request: req };
  }
  if (req.method !== "POST" || !BODY_ROUTES.has(url.pathname) || !req.body) return undefined;
  const declared = Number(req.headers.get("content-length") ?? 0);
  if (!(declared <= maxBodyBytes)) return undefined;
  const read = await readUpTo(req.body, maxBodyBytes);
  const init = { method: req.method, headers: req.headers };
  // Too large: handed on as it came, for the route to refuse (413).
  if (read.rest) return { request: new Request(req.url, { ...init, body: read.rest }) };
  const body = read.bytes;
  const request = new Request(req.url, { ...init, body });
  let taskId: unknown;
  try {
    taskId = (JSON.parse(new TextDecoder().decode(body)) as { taskId?: unknown })?.taskId;
  } catch {
    taskId = undefined;
  }
  return { taskId: typeof taskId === "string" ? taskId : undefined, request, body };
}

/**
 * The stream's bytes when it holds at most `max`; else `rest`, a stream of all of it (what
 * was read, then what was not).
 */
async function readUpTo(
  stream: ReadableStream<Uint8Array>,
  max: number,
): Promise<
  { bytes: Uint8Array<ArrayBuffer>; rest?: undefined } | { rest: ReadableStream<Uint8Array> }
> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size > max) {
      const rest = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const chunk = chunks.shift();
          if (chunk) return controller.enqueue(chunk);
          const next = await reader.read();
          if (next.done) controller.close();
          else controller.enqueue(next.value);
        },
        cancel: (reason) => reader.cancel(reason),
      });
      return { rest };
    }
  }
  return { bytes: concat(chunks) };
}
