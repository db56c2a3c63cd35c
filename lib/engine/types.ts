/**
 * Public types of the FetchFlow engine: what goes into it and what comes out.
 *
 * Everything here is plain JSON so that a paused {@link VMState} can be written to disk,
 * read back in another process and resumed there.
 *
 * @module
 */

/** Which quickjs-emscripten build runs the guest. */
export type Variant = "asyncify" | "sync";

/** A request the guest made with `fetch()`; the host performs it. */
export interface FetchRequest {
  /** Unique id of this request; the matching {@link FetchResponse} carries the same id. */
  id: string;
  /** Absolute or relative URL exactly as the guest gave it (after `toString()`). */
  url: string;
  /** Method, headers, body and redirect mode as the guest gave them. */
  options: FetchRequestOptions;
  /** When the guest asked (host clock, ms since the epoch). */
  timestamp: number;
  /**
   * Present while the response arrives in parts (see {@link FetchResponse.bodyPending}): how
   * many parts were delivered, the first with the status and headers. The next delivery
   * carries `part` equal to it. Set in the lists a paused execution reports, never in the
   * journal.
   */
  receivedParts?: number;
}

/** How a request treats a redirect (`init.redirect` of the Fetch standard). */
export type RedirectMode = "follow" | "manual" | "error";

/**
 * What a {@link FetchRequest} sends. The body is bytes: `body` holds them when they are valid
 * UTF-8 (the text itself), `bodyBase64` otherwise (base64 of the bytes); at most one is set.
 */
export interface FetchRequestOptions {
  /** Upper-case method. Default `GET`. */
  method?: string;
  /** Header names lower-cased, repeated values combined with `, `. */
  headers?: Record<string, string>;
  /** The body when it is valid UTF-8. */
  body?: string;
  /** The body as base64 when it is not valid UTF-8. */
  bodyBase64?: string;
  /**
   * `follow` (default): the host follows redirects; `manual`: a 3xx response is the answer,
   * `location` included; `error`: a redirect is a network failure.
   */
  redirect?: RedirectMode;
  /**
   * Who performs the request: `true` an outside worker (it is listed in full and waits for
   * `POST /call`), `false` the server; absent, the task's `autoFetch` decides. The guest sets
   * it with the `external` init option of `fetch()`.
   */
  external?: boolean;
}

/** The outcome of a {@link FetchRequest}, delivered to the guest on resume. */
export interface FetchResponse {
  /** Id of the request this answers. */
  id: string;
  /** `true` when the HTTP exchange happened and the status is 2xx. */
  success: boolean;
  /** HTTP status; absent when the request failed before a response arrived. */
  status?: number;
  /** HTTP status text. */
  statusText?: string;
  /**
   * The body as JSON data, the seed's form that outside workers send: parsed JSON when the
   * response was JSON, else the body text. `body` or `bodyBase64` carry the exact bytes.
   */
  data?: unknown;
  /** The exact body when it is valid UTF-8 (what the server sent, byte for byte). */
  body?: string;
  /** The exact body bytes as base64 when they are not valid UTF-8. */
  bodyBase64?: string;
  /** Why the request failed (network error, timeout, refused by policy...). */
  error?: string;
  /** Response headers (lower-case names). */
  headers?: Record<string, string>;
  /** Final URL after redirects, when known. */
  url?: string;
  /** When the response was received (ms since the epoch). */
  timestamp?: number;
  /**
   * The body is not complete: this delivery carries the status, headers and the body bytes
   * that came so far (`body` or `bodyBase64`, or none), and `fetch()` resolves with them; the
   * next parts follow as deliveries with the same id and `part` 1, 2..., the last one without
   * `bodyPending`. A later part with `success: false` and an `error` (no `status`) is a body
   * that failed: the guest's reads of it reject with a `TypeError`. In a later part, only the
   * body fields, `error` and `bodyPending` are read.
   */
  bodyPending?: boolean;
  /** Index of this delivery among a response's parts (0, the first, may be left out). */
  part?: number;
  /**
   * Every attempt the host made at the request when it retried it (the last one is this
   * response); absent when it made one without a retry policy. The guest sees the last.
   */
  attempts?: FetchAttempt[];
}

/** One attempt at a request, in a {@link FetchResponse}'s `attempts`. */
export interface FetchAttempt {
  /** When it started (ISO 8601). */
  at: string;
  /** HTTP status of its answer, when there was one. */
  status?: number;
  /** Why it failed without an answer. */
  error?: string;
  /** Delay before the next attempt, ms, when there was one. */
  retryInMs?: number;
}

/** Levels of the guest `console`. */
export type LogLevel = "log" | "info" | "warn" | "error" | "debug";

/** One line the guest wrote with `console.*`. */
export interface LogEntry {
  level: LogLevel;
  message: string;
  /** Host time the line was written (ms since the epoch). */
  time: number;
}

/** A timer the guest armed (`setTimeout`, an interval's next tick, a sleep, a signal timeout). */
export interface PendingTimer {
  /** Counted from 1 in the order the guest armed them. */
  id: number;
  /** When it is due: the guest clock when it was armed plus its delay (ms since the epoch). */
  dueAt: number;
}

/** A signal sent to a task (`POST /signal`). */
export interface Signal {
  name: string;
  /** JSON data the waiting `FlowState.waitForSignal()` resolves with. */
  data?: unknown;
}

/**
 * One event of the replay journal, in the order it happened.
 *
 * - `eval`: an `execute()` call; step 0 runs `VMState.code`, later steps (a VM used as a
 *   REPL) carry their own `code`. `at` is the guest clock for that segment.
 * - `request`: the guest called `fetch()`; `index` counts requests from 0.
 * - `response`: a response was delivered; `at` is the guest clock for the segment it began.
 * - `timer`: timer `timer` fired; `at` is the guest clock its callback saw, `dueAt` when it was
 *   due (for the timeline; entries of older journals lack it).
 * - `signal`: a signal arrived (delivered to a waiter, or kept until one waits for it).
 * - `abort`: the guest aborted request `id` (its `fetch()` signal aborted) before a response
 *   was delivered; `at` is the guest clock then. The request is pending no more, and a
 *   response that arrives for it later is refused (`stale`). Like a request, it is an output
 *   of the run: a replay makes the same abort and checks it against this entry.
 */
export type JournalEntry =
  | { type: "eval"; step: number; at: number; code?: string }
  | { type: "request"; step: number; index: number; request: FetchRequest }
  | { type: "response"; step: number; response: FetchResponse; at: number }
  | { type: "timer"; step: number; timer: number; at: number; dueAt?: number }
  | { type: "signal"; step: number; signal: Signal; at: number }
  | { type: "abort"; step: number; id: string; at: number };

/**
 * What a paused execution is resumed with: a fetch response, the timers that are due by
 * now (`timers`), or a signal.
 */
export type ResumeInput =
  | { type: "response"; response: FetchResponse }
  | { type: "timers" }
  | { type: "signal"; signal: Signal };

/** A paused execution, complete enough to resume in a fresh VM in another process. */
export interface VMState {
  /** Id of the VM/execution (stable across resumes). */
  id: string;
  /** The code the execution started with (later REPL steps are in the journal). */
  code: string;
  /**
   * Best-effort JSON view of the guest's global variables, for humans only: data properties
   * only (no getters or `toJSON` run), refreshed at most every 200 ms of a live VM.
   */
  variables: Record<string, unknown>;
  /** When this state was produced (ms since the epoch). */
  timestamp: number;
  /** State format version. */
  version: 1;
  /** Build the state was produced with; replay uses the same one. */
  variant: Variant;
  /** Seed of the guest `Math.random()`. */
  seed: number;
  /**
   * Secret key (hex) of the guest's `crypto.getRandomValues` and `randomUUID`: a replay gives
   * the same bytes, and nobody without the state can predict them. Keep states private.
   * Absent in states written before it existed (their key is derived from `seed`).
   */
  entropy?: string;
  /** Extra globals defined before the code ran (e.g. `input`). */
  globals: Record<string, unknown>;
  /** Requests and responses in the order they happened. */
  journal: JournalEntry[];
  /** Ids of requests still waiting for a response. */
  pending: string[];
  /** Armed timers, earliest due first (absent in states of older versions: none). */
  timers?: PendingTimer[];
  /** Names of the signals the guest waits for, one per waiting call (absent: none). */
  signals?: string[];
  /** Console output so far (bounded, newest kept). */
  logs: LogEntry[];
  /** How many older log lines were dropped to respect the log limit. */
  droppedLogs: number;
}

/**
 * What a run segment ended with. An execution completes when its code has finished and
 * nothing is pending (no request, no timer but `AbortSignal.timeout`'s, no signal awaited);
 * until then it is paused.
 */
export interface ExecutionResult {
  type: "completed" | "paused";
  /** JSON value of the last expression statement (awaited); absent for `undefined`. */
  result?: unknown;
  /** The state to persist and resume from (present in both cases). */
  state?: VMState;
  /** First pending request (compatibility with FetchFlow). */
  fetchRequest?: FetchRequest;
  /** Every pending request. */
  fetchRequests?: FetchRequest[];
  /** Armed timers, earliest due first (paused only). */
  timers?: PendingTimer[];
  /** Names of the signals awaited (paused only). */
  signals?: string[];
  /** Console lines written during this segment only. */
  logs: LogEntry[];
}

/** Engine limits and settings; every field has a documented default. */
export interface EngineOptions {
  /** QuickJS build. Default `"asyncify"`. */
  variant?: Variant;
  /**
   * Make each VM by copying an image of a VM whose guest world is installed (one per build
   * and process) instead of evaluating the prelude again. Default `true`; `false` is the
   * long way, kept to compare and as the fallback the engine takes by itself when a build
   * has no usable image.
   */
  vmImages?: boolean;
  /** CPU time allowed per run segment, ms. Default 5,000. */
  timeLimitMs?: number;
  /** Hard cap on the VM's linear memory, bytes. Default 64 MiB. */
  memoryLimitBytes?: number;
  /** Guest stack size, bytes. Default 256 KiB. */
  maxStackBytes?: number;
  /** Largest accepted code, bytes (UTF-8). Default 1 MiB. */
  maxCodeBytes?: number;
  /** Most timers armed at once. Default 10,000. */
  maxTimers?: number;
  /** Most requests pending at once; later ones wait their turn. Default 100. */
  maxPendingFetches?: number;
  /** Most journal entries (requests plus responses). Default 20,000. */
  maxJournalEntries?: number;
  /** Largest journal, bytes of JSON. Default 64 MiB. */
  maxJournalBytes?: number;
  /** Most log lines kept in the state. Default 1,000. */
  maxLogEntries?: number;
  /** Largest result, bytes of JSON. Default 4 MiB. */
  maxResultBytes?: number;
  /** Extra globals defined before the code runs (JSON values). */
  globals?: Record<string, unknown>;
  /** Id of a new execution (`FlowState.taskId` in the guest). Default a random UUID. */
  id?: string;
}
