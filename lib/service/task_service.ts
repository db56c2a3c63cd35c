/**
 * The task service: creates tasks, runs their segments on the engine pool, persists every
 * transition, answers `/call`, and recovers every task after a restart.
 *
 * Durability: a task's record is saved before any reply or outbound request depends on it.
 * A new task is saved as `running` before its code runs, so a crash mid-segment re-runs it
 * from its journal at the next start; a paused task keeps its pending requests in its
 * record, so a crash while they are in flight sends them again.
 *
 * @module
 */
import type { SegmentOutcome, WorkerPool } from "./executor.ts";
import { TaskEventHub } from "./task_events.ts";
import { fetchDetails, fetchSummary } from "./fetch_log.ts";
import { type DefinitionView, listDefinitions, readDefinition } from "./definitions.ts";
import { toJavaScript } from "./typescript.ts";
import type { ServiceMetrics } from "./metrics.ts";
import { ConflictError, HttpError, NotFoundError, UnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import {
  type CreateTaskInput,
  type FetchDetailView,
  type HealthView,
  type ListTasksQuery,
  type TaskDetailView,
  type TaskEvent,
  type TaskRecord,
  type TaskService,
  TaskStatus,
  type TaskStore,
  type TaskView,
} from "./task_types.ts";
import type {
  EngineOptions,
  FetchRequest,
  FetchResponse,
  JournalEntry,
  LogEntry,
  VMState,
} from "../engine/mod.ts";

/** What the service needs. */
export interface TaskServiceDeps {
  store: TaskStore;
  pool: Pick<WorkerPool, "execute" | "resume" | "restore" | "drop">;
  /** Engine limits for every task. */
  engine: EngineOptions;
  /** Directory of named task definitions (`<name>.js`). */
  tasksDir: string;
  /** Default of a task's `autoFetch`. */
  autoFetch: boolean;
  /**
   * Called after every commit of a task that fetches automatically, with the requests it
   * waits for (empty once it waits for none): start those not in flight, cancel the others.
   */
  onPending(taskId: string, requests: readonly FetchRequest[]): void;
  logger: Logger;
  version: string;
  /** Where transitions are published; a new hub when omitted. */
  events?: TaskEventHub;
  /** Where segments, fetches and saves are counted and timed; none when omitted. */
  metrics?: ServiceMetrics;
}

/** The server log level of each guest `console` method. */
const GUEST_LOG_LEVELS: Record<LogEntry["level"], "debug" | "info" | "warn" | "error"> = {
  debug: "debug",
  log: "info",
  info: "info",
  warn: "warn",
  error: "error",
};

/** Delay before retrying a task whose state could not be saved, ms (doubles, capped). */
const RECOVERY_RETRY_MS = 500;
const MAX_RECOVERY_RETRY_MS = 30_000;

/** The {@link TaskService} of the server. */
export class FlowTaskService implements TaskService {
  readonly #deps: TaskServiceDeps;
  /** Every transition this service commits, in order. */
  readonly events: TaskEventHub;
  /** Every task's latest saved record, in creation order. */
  readonly #tasks = new Map<string, TaskRecord>();
  /** Tasks whose segment is running (status shown as `running`). */
  readonly #running = new Set<string>();
  /** Tail of each task's chain of serialized operations. */
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #closing = false;

  constructor(deps: TaskServiceDeps) {
    this.#deps = deps;
    this.events = deps.events ?? new TaskEventHub({
      onListenerError: (error) =>
        deps.logger.error("task event listener failed", { error: String(error) }),
    });
  }

  /**
   * Loads every task from the store; re-runs tasks caught `running` and hands paused
   * tasks with automatic fetch to `onPending` again. Resolves once loaded (re-runs go on
   * in the background).
   */
  async start(): Promise<{ loaded: number; skipped: number }> {
    const { tasks, skipped } = await this.#deps.store.loadAll();
    for (const file of skipped) {
      this.#deps.logger.warn("state file skipped", { file: file.file, reason: file.reason });
    }
    tasks.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (const record of tasks) this.#tasks.set(record.id, record);
    for (const record of tasks) {
      if (record.status === TaskStatus.Running) {
        void this.#serialize(record.id, () => this.#recover(record.id));
      } else if (record.status === TaskStatus.Paused && record.autoFetch) {
        this.#deps.onPending(record.id, record.pending);
      }
    }
    return { loaded: tasks.length, skipped: skipped.length };
  }

  /** Stops taking work and waits for running segments to be saved. */
  async close(): Promise<void> {
    this.#closing = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    await Promise.allSettled([...this.#locks.values()]);
  }

  async create(input: CreateTaskInput): Promise<TaskView> {
    this.#assertOpen();
    const { source, lang } = input.code !== undefined
      ? { source: input.code, lang: input.lang ?? "js" }
      : await readDefinition(this.#deps.tasksDir, input.task!);
    const code = toJavaScript(source, lang);
    const id = input.id ?? newTaskId();
    if (this.#tasks.has(id)) {
      throw new ConflictError(`Cannot create task "${id}": it already exists`);
    }
    const now = new Date().toISOString();
    const record: TaskRecord = {
      id,
      name: input.name ?? input.task ?? id,
      status: TaskStatus.Running,
      pauseCount: 0,
      createdAt: now,
      updatedAt: now,
      code,
      autoFetch: input.autoFetch ?? this.#deps.autoFetch,
      pending: [],
      journalLength: 0,
      logCount: 0,
      eventsBytes: 0,
    };
    if (input.callbackUrl !== undefined) record.callbackUrl = input.callbackUrl;
    if (input.task !== undefined) {
      record.task = input.task;
      record.input = input.input ?? null;
    } else if (input.input !== undefined) {
      record.input = input.input;
    }
    this.#tasks.set(id, record);
    return await this.#serialize(id, async () => {
      let saved: TaskRecord;
      try {
        saved = await this.#save(undefined, record, []);
      } catch (error) {
        this.#tasks.delete(id);
        throw error;
      }
      this.#deps.logger.info("task created", { taskId: id, name: saved.name });
      const outcome = await this.#withRunning(
        id,
        () => this.#deps.pool.execute(id, code, this.#engineOptions(saved)),
      );
      return toView(await this.#commit(saved, outcome));
    });
  }

  async deliver(taskId: string, response: FetchResponse): Promise<TaskView> {
    this.#assertOpen();
    if (!this.#tasks.has(taskId)) throw new NotFoundError(`Task "${taskId}" not found`);
    return await this.#serialize(taskId, async () => {
      const record = this.#tasks.get(taskId)!;
      this.#assertPending(record, response.id);
      const request = record.pending.find((pending) => pending.id === response.id);
      this.#deps.metrics?.fetchDelivered(response, request?.timestamp);
      const outcome = await this.#withRunning(taskId, () =>
        this.#deps.pool.resume(
          taskId,
          record.journalLength,
          response,
          () => this.#loadState(record),
          this.#engineOptions(record),
        ));
      if (!outcome.ok && outcome.error.kind === "stale") {
        throw new ConflictError(outcome.error.message);
      }
      return toView(await this.#commit(record, outcome));
    });
  }

  async get(id: string): Promise<TaskDetailView> {
    const record = this.#record(id);
    const events = await this.#deps.store.readEvents(record);
    const logs: LogEntry[] = [];
    for (const event of events) {
      if (event.type === "log") {
        logs.push({ level: event.level, message: event.message, time: event.time });
      }
    }
    const keep = this.#deps.engine.maxLogEntries ?? logs.length;
    return {
      ...toView(this.#view(record)),
      logs: logs.slice(-keep),
      fetches: fetchDetails(events).map(fetchSummary),
    };
  }

  async fetch(taskId: string, fetch: number | string): Promise<FetchDetailView> {
    const record = this.#record(taskId);
    const details = fetchDetails(await this.#deps.store.readEvents(record));
    const found = details.find((detail) =>
      typeof fetch === "number" ? detail.index === fetch : detail.id === fetch
    );
    if (!found) {
      throw new NotFoundError(
        `Task "${taskId}" has no fetch ${JSON.stringify(fetch)} (it made ${details.length})`,
      );
    }
    return found;
  }

  definitions(): Promise<DefinitionView[]> {
    return listDefinitions(this.#deps.tasksDir);
  }

  list(query: ListTasksQuery): TaskView[] {
    const views: TaskView[] = [];
    for (const record of this.#tasks.values()) {
      const view = toView(this.#view(record));
      if (query.status && view.status !== query.status) continue;
      views.push(view);
      if (query.limit !== undefined && views.length >= query.limit) break;
    }
    return views;
  }

  health(): HealthView {
    const tasks: Record<TaskStatus, number> = { running: 0, paused: 0, completed: 0, error: 0 };
    for (const record of this.#tasks.values()) tasks[this.#view(record).status]++;
    return { status: this.#closing ? "shutting_down" : "ok", version: this.#deps.version, tasks };
  }

  /** Whether `taskId` is paused waiting for `requestId`. */
  isPending(taskId: string, requestId: string): boolean {
    const record = this.#tasks.get(taskId);
    return record?.status === TaskStatus.Paused &&
      record.pending.some((request) => request.id === requestId);
  }

  // --- internals ------------------------------------------------------------------------

  #record(id: string): TaskRecord {
    const record = this.#tasks.get(id);
    if (!record) throw new NotFoundError(`Task "${id}" not found`);
    return record;
  }

  /** The record as the API shows it: `running` while a segment runs. */
  #view(record: TaskRecord): TaskRecord {
    return this.#running.has(record.id) ? { ...record, status: TaskStatus.Running } : record;
  }

  /**
   * Commits `next` (the task's record after `previous`, or its first record) with `events`
   * appended to its journal, and publishes the transition. The only place the service
   * saves a record: every status, present or future, reaches `events` from here.
   */
  async #save(
    previous: TaskRecord | undefined,
    next: TaskRecord,
    events: readonly TaskEvent[],
  ): Promise<TaskRecord> {
    const started = performance.now();
    const saved = await this.#deps.store.save(next, events);
    this.#deps.metrics?.saveSeconds.observe((performance.now() - started) / 1000);
    this.#tasks.set(saved.id, saved);
    const type = previous === undefined
      ? "created"
      : saved.status === TaskStatus.Running
      ? "resumed"
      : saved.status;
    this.events.publish(type, toView(this.#view(saved)));
    return saved;
  }

  /** Runs a segment of `id`, shown as `running` meanwhile; publishes `resumed` when it was not. */
  async #withRunning(id: string, run: () => Promise<SegmentOutcome>): Promise<SegmentOutcome> {
    const record = this.#tasks.get(id);
    this.#running.add(id);
    if (record && record.status !== TaskStatus.Running) {
      this.events.publish("resumed", toView(this.#view(record)));
    }
    const started = performance.now();
    try {
      const outcome = await run();
      const metrics = this.#deps.metrics;
      if (metrics) {
        metrics.segmentSeconds.observe((performance.now() - started) / 1000);
        metrics.segments.inc({ outcome: outcome.ok ? outcome.type : "error" });
      }
      return outcome;
    } finally {
      this.#running.delete(id);
    }
  }

  /** Applies a segment's outcome, saves it, and starts its fetches. */
  async #commit(record: TaskRecord, outcome: SegmentOutcome): Promise<TaskRecord> {
    const { logger } = this.#deps;
    const next: TaskRecord = { ...record, updatedAt: new Date().toISOString() };
    const events: TaskEvent[] = [];
    if (outcome.ok) {
      events.push(...outcome.newJournal);
      next.journalLength += outcome.newJournal.length;
      next.vm = outcome.vm;
      next.pending = outcome.type === "paused" ? outcome.pending : [];
      if (outcome.type === "paused") {
        next.status = TaskStatus.Paused;
        next.pauseCount++;
      } else {
        next.status = TaskStatus.Completed;
        if (outcome.result !== undefined) next.result = outcome.result;
      }
    } else {
      next.status = TaskStatus.Error;
      next.pending = [];
      next.error = {
        name: outcome.error.name,
        message: outcome.error.message,
        kind: outcome.error.kind,
      };
    }
    for (const line of outcome.logs) {
      events.push({ type: "log", ...line });
      logger[GUEST_LOG_LEVELS[line.level]]("guest console", {
        taskId: record.id,
        console: line.level,
        message: line.message,
      });
    }
    next.logCount += outcome.logs.length;
    let saved: TaskRecord;
    try {
      saved = await this.#save(record, next, events);
    } catch (error) {
      // The outcome is lost, the previous record stands: run the segment again later.
      if (record.status === TaskStatus.Running) this.#recoverLater(record.id);
      throw error instanceof HttpError
        ? error
        : new UnavailableError(`Cannot save task "${record.id}"`, { cause: error });
    }
    if (saved.status !== TaskStatus.Paused) this.#deps.pool.drop(saved.id);
    logger.info(`task ${saved.status}`, {
      taskId: saved.id,
      pauseCount: saved.pauseCount,
      pending: saved.pending.length,
      error: saved.error,
    });
    if (saved.autoFetch) {
      this.#deps.onPending(saved.id, saved.status === TaskStatus.Paused ? saved.pending : []);
    }
    return saved;
  }

  /** Re-runs a task caught `running` from its saved state. */
  async #recover(id: string): Promise<void> {
    const record = this.#tasks.get(id);
    if (!record || record.status !== TaskStatus.Running || this.#closing) return;
    this.#deps.logger.info("task recovering", { taskId: id });
    try {
      const outcome = await this.#withRunning(
        id,
        async () =>
          record.vm
            ? this.#deps.pool.restore(
              id,
              await this.#loadState(record),
              this.#engineOptions(record),
            )
            : this.#deps.pool.execute(id, record.code, this.#engineOptions(record)),
      );
      await this.#commit(record, outcome);
    } catch (error) {
      this.#deps.logger.error("task recovery failed", { taskId: id, error: String(error) });
      this.#recoverLater(id);
    }
  }

  #recoverLater(id: string, delay = RECOVERY_RETRY_MS): void {
    if (this.#closing) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void this.#serialize(id, async () => {
        const before = this.#tasks.get(id);
        await this.#recover(id);
        const after = this.#tasks.get(id);
        if (after === before && after?.status === TaskStatus.Running) {
          this.#recoverLater(id, Math.min(delay * 2, MAX_RECOVERY_RETRY_MS));
        }
      });
    }, delay);
    this.#timers.add(timer);
  }

  async #loadState(record: TaskRecord): Promise<VMState> {
    if (!record.vm) throw new UnavailableError(`Task "${record.id}" has no saved engine state`);
    const events = await this.#deps.store.readEvents(record);
    const journal = events.filter((event): event is JournalEntry => event.type !== "log");
    return { ...record.vm, journal, logs: [] };
  }

  #engineOptions(record: TaskRecord): EngineOptions {
    const options: EngineOptions = { ...this.#deps.engine };
    if (record.input !== undefined) options.globals = { input: record.input };
    return options;
  }

  #assertPending(record: TaskRecord, responseId: string): void {
    if (record.status !== TaskStatus.Paused) {
      throw new ConflictError(
        `Cannot deliver fetch response "${responseId}": task "${record.id}" is ${record.status}`,
      );
    }
    if (!record.pending.some((request) => request.id === responseId)) {
      const pending = record.pending.map((request) => `"${request.id}"`).join(", ");
      throw new ConflictError(
        `Cannot deliver fetch response "${responseId}": task "${record.id}" is not waiting for it (pending: ${pending})`,
      );
    }
  }

  #assertOpen(): void {
    if (this.#closing) throw new UnavailableError("The server is shutting down");
  }

  /** Runs `fn` after every earlier operation on the same task has finished. */
  #serialize<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(id) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => {});
    this.#locks.set(id, tail);
    void tail.then(() => {
      if (this.#locks.get(id) === tail) this.#locks.delete(id);
    });
    return run;
  }
}

/** The API view of a record. */
function toView(record: TaskRecord): TaskView {
  const view: TaskView = {
    id: record.id,
    name: record.name,
    status: record.status,
    pauseCount: record.pauseCount,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
  if (record.status === TaskStatus.Paused && record.pending.length > 0) {
    const requests = record.pending.map((request) => ({
      id: request.id,
      url: request.url,
      method: request.options.method ?? "GET",
    }));
    view.fetchRequest = requests[0];
    view.fetchRequests = requests;
  }
  if (record.status === TaskStatus.Completed && record.result !== undefined) {
    view.result = record.result;
  }
  if (record.status === TaskStatus.Error && record.error) view.error = record.error;
  if (record.callbackUrl !== undefined) view.callbackUrl = record.callbackUrl;
  return view;
}

function newTaskId(): string {
  const random = crypto.getRandomValues(new Uint8Array(5));
  const hex = Array.from(random, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `task-${Date.now().toString(36)}-${hex}`;
}
