/**
 * The server's view of a task: the JSON shapes of the HTTP API and the interface between
 * the HTTP edge and the task service.
 *
 * @module
 */
import type { FetchAttempt, FetchResponse, LogEntry, Signal } from "../engine/mod.ts";
import type { RetryPolicy } from "../outbound/mod.ts";
import type { ListOrder, TaskErrorView, TaskStatus } from "../store/mod.ts";
import type { TaskEventHub } from "./task_events.ts";
import type { DefinitionView } from "./definitions.ts";
import type { TaskLang } from "./typescript.ts";
import type { TimelineView } from "./timeline.ts";

export type { DefinitionView } from "./definitions.ts";
export type { TaskLang } from "./typescript.ts";
export type { SignalView, TimelineView, TimerView } from "./timeline.ts";

export { decodeCursor, isTaskStatus, TaskStatus } from "../store/mod.ts";
export type {
  ListOrder,
  ListQuery,
  PendingRequest,
  SkippedFile,
  TaskErrorView,
  TaskEvent,
  TaskRecord,
  TaskStore,
  TaskSummary,
} from "../store/mod.ts";

/**
 * A pending request as the API shows it; one an outside worker performs (`external`) is
 * shown in full, so the worker can send it and answer with `POST /call`.
 */
export interface FetchRequestView {
  id: string;
  url: string;
  method: string;
  /** Present (`true`) when the server leaves the request to an outside worker. */
  external?: true;
  /**
   * Present while its response arrives in parts: how many were delivered; the next one
   * carries `part` equal to it.
   */
  receivedParts?: number;
  /** External requests: the headers to send (lower-case names). */
  headers?: Record<string, string>;
  /** External requests: the body when it is UTF-8 text... */
  body?: string;
  /** ...or as base64 when it is not. */
  bodyBase64?: string;
  /**
   * External requests whose body is over 16 KiB, in lists and events: the body's size in
   * bytes, given instead of the body (`GET /status?id=` and the answers of the task's own
   * operations show the body itself).
   */
  bodyBytes?: number;
  /** External requests: the redirect mode, when not `follow`. */
  redirect?: string;
}

/** The task as every endpoint returns it. */
export interface TaskView {
  id: string;
  name: string;
  status: TaskStatus;
  pauseCount: number;
  fetchRequest?: FetchRequestView;
  fetchRequests?: FetchRequestView[];
  /** Paused tasks: when the earliest armed timer is due (ISO 8601). */
  wakeAt?: string;
  /** Paused tasks: names of the signals awaited, one per waiting call. */
  signalsAwaited?: string[];
  result?: unknown;
  /** Why the task stopped, for `error` and `cancelled` (kind `cancelled`, the reason). */
  error?: TaskErrorView;
  /** Where the finished task is POSTed, when the task was created with one. */
  callbackUrl?: string;
  /** Times `POST /retry` ran it again (absent before the first). */
  retries?: number;
  /** For a fork: the task it came from and the fetch from which it ran live. */
  forkedFrom?: { taskId: string; atFetch: number };
  createdAt: string;
  updatedAt: string;
}

/** One fetch made by a task, as `GET /status?id=` lists it. */
export interface FetchLogView {
  /** Position among the task's fetches, from 0: `GET /status?id=&fetch=<index>`. */
  index: number;
  id: string;
  method: string;
  url: string;
  /** HTTP status, or `null` while pending or when the request failed. */
  status: number | null;
  statusText?: string;
  error?: string;
  requestedAt: string;
  respondedAt?: string;
  /** Response headers (lower-case names). */
  headers?: Record<string, string>;
  /** Size of the response body, bytes. */
  size?: number;
  /** The start of the response body (of its base64 when `bodyEncoding` is `base64`). */
  bodyPreview?: string;
  bodyEncoding?: "base64";
  /** Every attempt the server made, when the task has a retry policy. */
  attempts?: FetchAttempt[];
  /** How many parts the response arrived in, when it came in parts (see `FETCH_BODY_PART_MS`). */
  parts?: number;
  /** Set while more parts of the response are to come. */
  receiving?: true;
  /** Set when the task aborted the fetch (its `signal`) before a response was delivered. */
  aborted?: true;
  /** When it aborted it (the task's clock). */
  abortedAt?: string;
}

/** One fetch in full, as `GET /status?id=&fetch=<n>` shows it. */
export interface FetchDetailView extends Omit<FetchLogView, "bodyPreview" | "bodyEncoding"> {
  /** What the guest sent besides method and URL. */
  request: { headers?: Record<string, string>; body?: string; bodyBase64?: string };
  /** The whole response body when it is UTF-8 text... */
  body?: string;
  /** ...or as base64 when it is not. */
  bodyBase64?: string;
  /**
   * External requests whose body is over 16 KiB, in lists and events: the body's size in
   * bytes, given instead of the body (`GET /status?id=` and the answers of the task's own
   * operations show the body itself).
   */
  bodyBytes?: number;
}

/** What became of a finished task's webhook. */
export interface WebhookState {
  /** `pending` until a 2xx answer (`delivered`) or the last attempt (`failed`). */
  status: "pending" | "delivered" | "failed";
  /** Attempts made so far (in this process, while `pending`). */
  attempts: number;
  /** When it was settled. */
  at?: string;
  /** HTTP status of the last answer. */
  httpStatus?: number;
  /** Why the last attempt failed. */
  error?: string;
}

/** `GET /status?id=`: the view plus logs and the fetches made so far. */
export interface TaskDetailView extends TaskView, TimelineView {
  logs: LogEntry[];
  fetches: FetchLogView[];
  /**
   * Present when the view read only the journal's tail: the committed bytes before it,
   * whose console lines and fetches `logs` and `fetches` leave out (`journal=full` reads
   * them all).
   */
  journalSkipped?: { bytes: number };
  /** With a `callbackUrl`, once the task is finished. */
  webhook?: WebhookState;
}

/** `GET /source?id=`: what a task runs and what its globals held when it last paused. */
export interface TaskSourceView {
  id: string;
  /** The code as the engine runs it (a TypeScript task's with its types stripped). */
  code: string;
  /** The definition of `tasks/` the code came from, when it came from one. */
  task?: string;
  input?: unknown;
  autoFetch: boolean;
  /** Best-effort JSON of the guest's global variables at its last pause (for humans). */
  variables: Record<string, unknown>;
  /** CPU time the task's segments used so far, ms. */
  cpuMs?: number;
  /** The guest stack of the exception the task ended with (`at f (task.js:3)`), if any. */
  errorStack?: string;
}

/** Body of `POST /task` once validated. */
export interface CreateTaskInput {
  id?: string;
  name?: string;
  /** Inline code, or... */
  code?: string;
  /** ...the name of a definition in `tasks/<task>.js` or `tasks/<task>.ts`. */
  task?: string;
  /** Language of `code`: `ts` strips types first. Default `js`. */
  lang?: TaskLang;
  /** Exposed to the code as the global `input`. */
  input?: unknown;
  /** Per-task override of AUTO_FETCH. */
  autoFetch?: boolean;
  /** Where the finished task is POSTed (a signed webhook). */
  callbackUrl?: string;
  /** How the server retries this task's fetches. */
  retry?: RetryPolicy;
}

/** Body of `POST /fork` once validated. */
export interface ForkTaskInput {
  /** The task to fork. */
  taskId: string;
  /** Id of the fork; a new one when absent. */
  id?: string;
  /** Fetches replayed from the original's journal: those with index below (default: all). */
  atFetch?: number;
  /** Recorded responses replaced, by fetch index (each below `atFetch`). */
  responses?: Record<number, Omit<FetchResponse, "id">>;
}

/** Filters and position of `GET /status`. */
export interface ListTasksQuery {
  /** Only tasks in one of these statuses. */
  status?: TaskStatus[];
  /** Only tasks with this exact name. */
  name?: string;
  /** By creation time: `oldest` (default) or `newest` first. */
  order?: ListOrder;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
  /** Most tasks in the page (default {@link DEFAULT_LIST_LIMIT} in the service). */
  limit?: number;
}

/** A page of `GET /status`. */
export interface TaskListView {
  tasks: TaskView[];
  /** Pass as `cursor` for the next page; `null` on the last page. */
  nextCursor: string | null;
}

/** What `GET /health` reports. */
export interface HealthView {
  status: "ok" | "shutting_down";
  version: string;
  tasks: Record<TaskStatus, number>;
}

/** What the HTTP edge needs from the task service. */
export interface TaskService {
  /** Every transition of every task, as it is committed. */
  readonly events: TaskEventHub;
  /** Runs a new task to its first pause, completion or error. 400/409 on bad input. */
  create(input: CreateTaskInput): Promise<TaskView>;
  /** Delivers a response to a paused task and runs it on. 404 unknown task, 409 not pending. */
  deliver(taskId: string, response: FetchResponse): Promise<TaskView>;
  /** Ends a running or paused task in `cancelled`. 404 unknown, 409 finished. */
  cancel(taskId: string, reason?: string): Promise<TaskView>;
  /** Runs a task in `error` or `cancelled` on from its journal. 404 unknown, 409 otherwise. */
  retry(taskId: string): Promise<TaskView>;
  /** A new task replaying a prefix of another's journal, then running live. */
  fork(input: ForkTaskInput): Promise<TaskView>;
  /** Removes a finished task and its files; answers its last view. 404 unknown, 409 unfinished. */
  remove(taskId: string): Promise<TaskView>;
  /** Sends a signal to a task. 404 unknown task, 409 ended task. */
  signal(taskId: string, signal: Signal): Promise<TaskView>;
  /** One task in detail. 404 unknown. */
  get(id: string, options?: { full?: boolean }): Promise<TaskDetailView>;
  /** A task's code, input, options and variables. 404 unknown. */
  source(id: string): Promise<TaskSourceView>;
  /** One fetch of a task in full, by index or fetch id. 404 unknown task or fetch. */
  fetch(taskId: string, fetch: number | string): Promise<FetchDetailView>;
  /** The named definitions of the tasks directory. */
  definitions(): Promise<DefinitionView[]>;
  /** A page of tasks, oldest (or newest) first. 400 for an invalid cursor. */
  list(query: ListTasksQuery): Promise<TaskListView>;
  /** Version and counts by status. */
  health(): HealthView;
}
