/**
 * The task service: creates tasks, runs their segments on the engine pool, persists every
 * transition, answers `/call`, cancels, retries, forks and removes tasks, and recovers every
 * task after a restart.
 *
 * Durability: a task's record is saved before any reply or outbound request depends on it.
 * A new task is saved as `running` before its code runs, so a crash mid-segment re-runs it
 * from its journal at the next start; a paused task keeps its pending requests in its
 * record, so a crash while they are in flight sends them again, and its armed timers, so a
 * restarted server wakes it at their due times (at once when they have passed).
 *
 * Time: one {@link WakeSchedule} holds the next wake-up of every paused task with a timer;
 * when it comes, the task's due timers fire in a segment of their own (input `timers`).
 *
 * Each lifecycle operation is one save (or, for a removal, one store `remove()`), so a
 * crash leaves it done or not done: a cancel saves `cancelled`; a retry saves the task
 * `running` with the journal cut back to before the failed step (a `rewind` event), which
 * recovery runs on after a crash; a fork saves the new task `running` with its journal
 * copied in its first save, the original untouched.
 *
 * @module
 */
import type { SegmentOutcome, WorkerPool } from "./executor.ts";
import { isFinishedStatus, TaskEventHub, type TransitionType } from "./task_events.ts";
import { GuestLogCopier } from "./guest_log.ts";
import { journalOf } from "./journal_events.ts";
import { timelineOf } from "./timeline.ts";
import { WakeSchedule } from "./wake_schedule.ts";
import { fetchDetails, fetchSummary } from "./fetch_log.ts";
import { type DefinitionView, listDefinitions, readDefinition } from "./definitions.ts";
import { toJavaScript } from "./typescript.ts";
import type { ServiceMetrics } from "./metrics.ts";
import {
  BadRequestError,
  ConflictError,
  HttpError,
  LeaseLostError,
  NotFoundError,
  UnavailableError,
} from "../errors.ts";
import type { Logger } from "../log.ts";
import type { RetryPolicy } from "../outbound/mod.ts";
import {
  type CreateTaskInput,
  type FetchDetailView,
  type FetchRequestView,
  type ForkTaskInput,
  type HealthView,
  type ListQuery,
  type ListTasksQuery,
  type PendingRequest,
  type SkippedFile,
  type TaskDetailView,
  type TaskEvent,
  type TaskListView,
  type TaskRecord,
  type TaskService,
  type TaskSourceView,
  TaskStatus,
  type TaskStore,
  type TaskView,
  type WebhookState,
} from "./task_types.ts";
import type {
  EngineOptions,
  FetchRequest,
  FetchResponse,
  JournalEntry,
  LogEntry,
  ResumeInput,
  Signal,
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
   * Called after every commit of a task, with the pending requests the server performs
   * (not the external ones; empty once there are none): start those not in flight, cancel
   * the others.
   */
  onPending(taskId: string, requests: readonly FetchRequest[], retry?: RetryPolicy): void;
  logger: Logger;
  version: string;
  /** Where transitions are published; a new hub when omitted. */
  events?: TaskEventHub;
  /** Where segments, fetches and saves are counted and timed; none when omitted. */
  metrics?: ServiceMetrics;
  /** CPU time a task's segments may use in all, ms (`TASK_CPU_BUDGET_MS`); no limit when omitted. */
  cpuBudgetMs?: number;
  /** Bytes of console output a task keeps in all (`MAX_LOG_BYTES`); no limit when omitted. */
  maxLogBytes?: number;
  /** Guest console lines copied to the server log per second, server-wide; default 100. */
  guestLogRate?: number;
  /** What became of a finished task's webhook, shown by `get`. */
  webhookState?: (taskId: string, finishedAt: string) => WebhookState | undefined;
  /**
   * How long finished tasks are kept, ms, counted from their last update; a background
   * sweep removes older ones. Kept forever when omitted.
   */
  retainFinishedMs?: number;
  /**
   * In a cluster: whether this replica's task leases are surely in force (see
   * `LeaseKeeper.leasesInForce`). While they are not, another replica may have taken a task
   * over and saved it since, so the record held here is not trusted: requests read the task
   * from the store, and {@link FlowTaskService.holds} is false (a request then reaches the
   * task's owner). Always in force when omitted (one server owns all its tasks).
   */
  leasesInForce?: () => boolean;
}

/** Default of {@link TaskServiceDeps.guestLogRate}. */
const GUEST_LOG_RATE = 100;
/** What a console line costs against `maxLogBytes` besides its message: its JSON framing. */
const LOG_LINE_OVERHEAD_BYTES = 64;
const encoder = new TextEncoder();

/** Delay before retrying a task whose state could not be saved, ms (doubles, capped). */
const RECOVERY_RETRY_MS = 500;
const MAX_RECOVERY_RETRY_MS = 30_000;
/**
 * A paused task with no request in flight that will not wake within this many ms (or waits
 * only for a signal) gives up its live VM at once; it is replayed when it wakes.
 */
export const LIVE_SLEEP_MS = 5_000;

/**
 * Bytes of a task's journal `GET /status?id=` reads, from its end: its view's console lines
 * and fetches are those of this tail (`journal=full` reads the whole journal).
 */
export const STATUS_TAIL_BYTES = 1024 * 1024;

/** Tasks read at once by {@link FlowTaskService.finishedTasks}. */
const FINISHED_PAGE = 200;
/** Tasks listed when a query names no limit. */
export const DEFAULT_LIST_LIMIT = 100;
/** Bounds of the time between two retention sweeps, ms (a tenth of the retention). */
const MIN_SWEEP_MS = 200;
const MAX_SWEEP_MS = 60_000;
/** Longest wait for the first sweep after a start, ms. */
const FIRST_SWEEP_MS = 1_000;
/** Tasks a sweep removes before it lets other work run. */
const SWEEP_BATCH = 100;

/** The {@link TaskService} of the server. */
export class FlowTaskService implements TaskService {
  readonly #deps: TaskServiceDeps;
  /** Every transition this service commits, in order. */
  readonly events: TaskEventHub;
  /**
   * The latest saved record of every task running or paused (and of a task being
   * created); finished tasks are read from the store when asked for.
   */
  readonly #active = new Map<string, TaskRecord>();
  /** Tasks whose segment is running (status shown as `running`). */
  readonly #running = new Set<string>();
  /** Tail of each task's chain of serialized operations. */
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** Overrun marks being saved, by task: the segment's commit builds on the marked record. */
  readonly #marks = new Map<string, Promise<TaskRecord | undefined>>();
  readonly #guestLog: GuestLogCopier;
  /** Next wake-up of every paused task with an armed timer. */
  readonly #wakes = new WakeSchedule((id) => this.#wake(id));
  #sweeping: Promise<void> | undefined;
  /** Taking up the tasks running or paused at the start, when the store reads them apart. */
  #loading: Promise<void> | undefined;
  /** Tasks saved or removed while {@link #loading} runs: not taken up from it. */
  #changedWhileLoading: Set<string> | undefined;
  #closing = false;

  constructor(deps: TaskServiceDeps) {
    this.#deps = deps;
    this.#guestLog = new GuestLogCopier(deps.logger, deps.guestLogRate ?? GUEST_LOG_RATE);
    this.events = deps.events ?? new TaskEventHub({
      onListenerError: (error) =>
        deps.logger.error("task event listener failed", { error: String(error) }),
    });
  }

  /**
   * Opens the store (which holds the records of running and paused tasks only); re-runs
   * tasks caught `running`, arms paused tasks' timers and hands their requests to
   * `onPending` again; starts the retention sweep. Resolves once the store's index is open:
   * with a store that reads its active tasks apart ({@link TaskStore.readActive}), they are
   * taken up in the background, as they are read (see {@link activeLoaded}); until then a
   * task not taken up yet is read from the store like a finished one. `loaded` counts every
   * task the store has.
   */
  async start(): Promise<{ loaded: number; skipped: number }> {
    const { store, logger } = this.#deps;
    const warn = (file: SkippedFile) =>
      logger.warn("state file skipped", { file: file.file, reason: file.reason });
    let skipped: SkippedFile[];
    if (store.openIndex && store.readActive) {
      ({ skipped } = await store.openIndex());
      this.#changedWhileLoading = new Set();
      const reads = store.readActive();
      this.#loading = (async () => {
        let taken = 0;
        for await (const read of reads) {
          if (this.#closing) return;
          if ("skipped" in read) warn(read.skipped);
          else if (this.#takeUp(read.record)) taken++;
        }
        logger.info("running and paused tasks taken up", { tasks: taken });
      })().catch((error) => {
        logger.error("cannot read the running and paused tasks", { error: String(error) });
      }).finally(() => this.#changedWhileLoading = undefined);
    } else {
      const opened = await store.open();
      skipped = opened.skipped;
      this.adopt(opened.active);
    }
    for (const file of skipped) warn(file);
    this.#scheduleSweep();
    const loaded = Object.values(store.counts()).reduce((sum, n) => sum + n, 0);
    return { loaded, skipped: skipped.length };
  }

  /**
   * Takes charge of the records of running and paused tasks, as found at a start or taken
   * over from another replica of a cluster: re-runs those caught `running` from their
   * journal, arms the timers of paused ones and hands their requests to `onPending` again
   * (sent again, with the same `Idempotency-Key`). Records of tasks already held are left.
   */
  adopt(records: readonly TaskRecord[]): void {
    for (const record of records) this.#takeUp(record);
  }

  /**
   * Forgets a task another replica of the cluster now owns: its record, its timers, its
   * live VM and its requests in flight. What the task does next is that replica's.
   */
  release(taskId: string): void {
    if (!this.#active.delete(taskId)) return;
    this.#wakes.set(taskId, undefined);
    this.#deps.pool.drop(taskId);
    this.#deps.onPending(taskId, []);
    this.#deps.logger.warn("task taken over by another replica", { taskId });
  }

  /**
   * Whether this service holds the running or paused task `taskId`, its record here the
   * latest (in a cluster: under a lease surely in force).
   */
  holds(taskId: string): boolean {
    return this.#active.has(taskId) && this.#leasesInForce();
  }

  /** The tasks this service holds or is working on (a cluster renews their leases). */
  heldTasks(): string[] {
    return [...new Set([...this.#active.keys(), ...this.#locks.keys()])];
  }

  /** Resolves once the records of the tasks running or paused at the start are taken up. */
  async activeLoaded(): Promise<void> {
    await this.#loading;
  }

  /**
   * Takes up a task found running or paused at the start: re-runs it, or fails it when it
   * overran, or arms its timers and sends its requests. A task an operation saved since the
   * start is left as that made it (its record here may be older): `false`.
   */
  #takeUp(record: TaskRecord): boolean {
    const id = record.id;
    if (this.#changedWhileLoading?.has(id) || this.#active.has(id)) return false;
    this.#active.set(id, record);
    if (record.overrunAt !== undefined) {
      void this.#serialize(id, () => this.#failOverrun(id));
    } else if (record.status === TaskStatus.Running) {
      void this.#serialize(id, () => this.#recover(id));
    } else if (record.status === TaskStatus.Paused) {
      this.#wakes.set(id, wakeAt(record));
      const requests = serverRequests(record);
      if (requests.length > 0) this.#deps.onPending(id, requests, record.retry);
    }
    return true;
  }

  /**
   * Stops taking work and waits for running segments to be saved, for at most `graceMs`
   * (then close the pool: segments still running end without a commit, and
   * {@link drained} resolves once they have).
   */
  async close(graceMs = Number.POSITIVE_INFINITY): Promise<void> {
    await this.#sweeping;
    this.#closing = true;
    await this.#loading;
    this.#wakes.close();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<void>((resolve) => {
      if (Number.isFinite(graceMs)) timer = setTimeout(resolve, graceMs);
    });
    try {
      await Promise.race([this.drained(), grace]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves once every operation on tasks has ended. */
  async drained(): Promise<void> {
    while (this.#locks.size > 0) await Promise.allSettled([...this.#locks.values()]);
  }

  /**
   * Marks, durably, that a segment of `taskId` is still running at its time limit (the
   * engine did not stop it; the server's watchdog ends it after the grace). Should the
   * server stop before the segment ends, the task is failed at the next start rather than
   * run again. The segment's commit clears the mark.
   */
  noteOverrun(taskId: string): void {
    const record = this.#active.get(taskId);
    if (!record || this.#marks.has(taskId)) return;
    const marked: TaskRecord = { ...record, overrunAt: new Date().toISOString() };
    this.#deps.logger.warn("segment past its time limit", { taskId });
    this.#marks.set(
      taskId,
      this.#deps.store.save(marked, []).then(
        (saved) => {
          if (this.#active.has(taskId)) this.#active.set(taskId, saved);
          return saved;
        },
        (error) => {
          this.#deps.logger.error("cannot mark a segment past its time limit", {
            taskId,
            error: String(error),
          });
          return undefined;
        },
      ),
    );
  }

  /**
   * Removes the finished tasks last updated more than `retainFinishedMs` ago, in batches,
   * each under its task's lock (so never during another operation on it). Resolves with
   * how many it removed.
   */
  async sweep(now = Date.now()): Promise<number> {
    const retain = this.#deps.retainFinishedMs;
    if (retain === undefined) return 0;
    const { store, logger } = this.#deps;
    const cutoff = now - retain;
    let removed = 0;
    while (!this.#closing) {
      const due = await store.finishedBefore(cutoff, SWEEP_BATCH);
      if (due.length === 0) break;
      const outcomes = await Promise.allSettled(
        due.map(({ id }) =>
          this.#serialize(id, async () => {
            const record = await store.readRecord(id);
            if (
              !record || !isFinishedStatus(record.status) || Date.parse(record.updatedAt) >= cutoff
            ) {
              return false;
            }
            if (!await store.remove(id)) return false;
            this.#active.delete(id);
            this.events.publish("deleted", toView(record));
            return true;
          })
        ),
      );
      for (const outcome of outcomes) {
        if (outcome.status === "fulfilled") removed += outcome.value ? 1 : 0;
        else logger.error("retention sweep failed", { error: String(outcome.reason) });
      }
      if (outcomes.some((outcome) => outcome.status === "rejected" || !outcome.value)) break;
    }
    if (removed > 0) logger.info("finished tasks removed", { removed, olderThanMs: retain });
    return removed;
  }

  async create(input: CreateTaskInput): Promise<TaskView> {
    this.#assertOpen();
    const { source, lang } = input.code !== undefined
      ? { source: input.code, lang: input.lang ?? "js" }
      : await readDefinition(this.#deps.tasksDir, input.task!);
    const code = toJavaScript(source, lang);
    const id = input.id ?? newTaskId();
    this.#assertNew(id, "create task");
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
    if (input.retry !== undefined) record.retry = input.retry;
    if (input.task !== undefined) {
      record.task = input.task;
      record.input = input.input ?? null;
    } else if (input.input !== undefined) {
      record.input = input.input;
    }
    this.#active.set(id, record);
    return await this.#serialize(id, async () => {
      let saved: TaskRecord;
      try {
        await this.#assertNotStored(id, "create task");
        saved = await this.#save(undefined, record, []);
      } catch (error) {
        this.#active.delete(id);
        throw error;
      }
      this.#deps.logger.info("task created", { taskId: id, name: saved.name });
      const outcome = await this.#withRunning(
        id,
        () => this.#deps.pool.execute(id, code, this.#engineOptions(saved)),
      );
      return await this.#answer(await this.#commit(saved, outcome));
    });
  }

  async deliver(taskId: string, response: FetchResponse): Promise<TaskView> {
    this.#assertOpen();
    if (!this.#active.has(taskId)) await this.#record(taskId);
    return await this.#serialize(taskId, async () => {
      const record = await this.#record(taskId);
      this.#assertPending(record, response.id);
      const request = record.pending.find((pending) => pending.id === response.id);
      // A response in parts is one fetch, counted at its first part.
      if ((response.part ?? 0) === 0) {
        this.#deps.metrics?.fetchDelivered(response, request?.timestamp);
      }
      const outcome = await this.#resume(record, { type: "response", response });
      if (!outcome.ok && outcome.error.kind === "stale") {
        throw new ConflictError(outcome.error.message);
      }
      return await this.#answer(await this.#commit(record, outcome));
    });
  }

  async cancel(taskId: string, reason?: string): Promise<TaskView> {
    this.#assertOpen();
    await this.#record(taskId);
    return await this.#serialize(taskId, async () => {
      const record = await this.#record(taskId);
      if (isFinishedStatus(record.status)) {
        throw new ConflictError(`Cannot cancel task "${taskId}": it is ${record.status}`);
      }
      const next: TaskRecord = {
        ...record,
        status: TaskStatus.Cancelled,
        pending: [],
        updatedAt: new Date().toISOString(),
        error: { name: "CancelledError", message: reason ?? "Cancelled", kind: "cancelled" },
      };
      const saved = await this.#save(record, next, []);
      this.#deps.pool.drop(taskId);
      this.#deps.onPending(taskId, []);
      this.#deps.logger.info("task cancelled", { taskId, reason: next.error!.message });
      return toView(saved);
    });
  }

  async retry(taskId: string): Promise<TaskView> {
    this.#assertOpen();
    await this.#record(taskId);
    return await this.#serialize(taskId, async () => {
      const record = await this.#record(taskId);
      if (record.status !== TaskStatus.Error && record.status !== TaskStatus.Cancelled) {
        throw new ConflictError(
          `Cannot retry task "${taskId}": it is ${record.status} (only error and cancelled tasks are retried)`,
        );
      }
      const cut = Math.min(record.retryFrom ?? record.journalLength, record.journalLength);
      // A retry starts a fresh CPU budget.
      const { error: _error, retryFrom: _retryFrom, cpuMs: _cpuMs, ...rest } = record;
      const next: TaskRecord = {
        ...rest,
        status: TaskStatus.Running,
        pending: [],
        journalLength: cut,
        retries: (record.retries ?? 0) + 1,
        updatedAt: new Date().toISOString(),
      };
      const events: TaskEvent[] = cut < record.journalLength
        ? [{ type: "rewind", journalLength: cut, at: Date.now() }]
        : [];
      const saved = await this.#save(record, next, events, "retried");
      this.#deps.logger.info("task retried", { taskId, retries: saved.retries, journal: cut });
      const outcome = await this.#withRunning(taskId, () => this.#runJournal(saved));
      return await this.#answer(await this.#commit(saved, outcome));
    });
  }

  async fork(input: ForkTaskInput): Promise<TaskView> {
    this.#assertOpen();
    const original = await this.#record(input.taskId);
    const id = input.id ?? newTaskId();
    this.#assertNew(id, "fork task");
    const journal = await this.#forkJournal(original, input);
    const now = new Date().toISOString();
    const record: TaskRecord = {
      id,
      name: original.name,
      status: TaskStatus.Running,
      pauseCount: 0,
      createdAt: now,
      updatedAt: now,
      code: original.code,
      autoFetch: original.autoFetch,
      pending: [],
      journalLength: journal.entries.length,
      logCount: 0,
      eventsBytes: 0,
      forkedFrom: { taskId: original.id, atFetch: journal.atFetch },
    };
    if (original.task !== undefined) record.task = original.task;
    if (original.input !== undefined) record.input = original.input;
    if (original.vm && journal.entries.length > 0) {
      record.vm = { ...original.vm, id: crypto.randomUUID(), variables: {}, pending: [] };
    } else {
      // Nothing to replay (or no engine state to replay it with): the fork runs from the start.
      journal.entries = [];
      record.journalLength = 0;
    }
    this.#assertNew(id, "fork task");
    this.#active.set(id, record);
    return await this.#serialize(id, async () => {
      let saved: TaskRecord;
      try {
        await this.#assertNotStored(id, "fork task");
        saved = await this.#save(undefined, record, journal.entries, "forked");
      } catch (error) {
        this.#active.delete(id);
        throw error;
      }
      this.#deps.logger.info("task forked", {
        taskId: id,
        from: original.id,
        atFetch: journal.atFetch,
      });
      const outcome = await this.#withRunning(id, () => this.#runJournal(saved));
      return await this.#answer(await this.#commit(saved, outcome));
    });
  }

  async remove(taskId: string): Promise<TaskView> {
    this.#assertOpen();
    await this.#record(taskId);
    return await this.#serialize(taskId, async () => {
      const record = await this.#record(taskId);
      if (!isFinishedStatus(record.status)) {
        throw new ConflictError(
          `Cannot delete task "${taskId}": it is ${record.status}; cancel it first`,
        );
      }
      this.#changedWhileLoading?.add(taskId);
      try {
        await this.#deps.store.remove(taskId);
      } catch (error) {
        throw error instanceof HttpError
          ? error
          : new UnavailableError(`Cannot delete task "${taskId}"`, { cause: error });
      }
      this.#active.delete(taskId);
      this.#deps.pool.drop(taskId);
      const view = toView(record);
      this.events.publish("deleted", view);
      this.#deps.logger.info("task deleted", { taskId });
      return view;
    });
  }

  /**
   * Sends `signal` to a task: journaled once, it resolves the task's oldest
   * `FlowState.waitForSignal` of that name, or is kept until one waits for it. 404 unknown
   * task, 409 a task that has ended, 503 a task still recovering.
   */
  async signal(taskId: string, signal: Signal): Promise<TaskView> {
    this.#assertOpen();
    if (!this.#active.has(taskId)) await this.#record(taskId);
    return await this.#serialize(taskId, async () => {
      const record = await this.#record(taskId);
      if (record.status === TaskStatus.Running) {
        throw new UnavailableError(
          `Cannot signal task "${taskId}": it is recovering from a restart; try again`,
        );
      }
      if (record.status !== TaskStatus.Paused) {
        throw new ConflictError(
          `Cannot send signal "${signal.name}": task "${taskId}" is ${record.status}`,
        );
      }
      const outcome = await this.#resume(record, { type: "signal", signal });
      return await this.#answer(await this.#commit(record, outcome));
    });
  }

  /**
   * The task's detail: its view, and the console lines and fetches of its journal's last
   * {@link STATUS_TAIL_BYTES} (of all of it with `full`), so a view costs the same whatever
   * the journal's size; `journalSkipped` says what came before.
   */
  async get(id: string, options: { full?: boolean } = {}): Promise<TaskDetailView> {
    const record = await this.#record(id);
    const { store } = this.#deps;
    const { events, skippedBytes } = options.full
      ? { events: await store.readEvents(record), skippedBytes: 0 }
      : await store.readTail(record, STATUS_TAIL_BYTES);
    const logs: LogEntry[] = [];
    for (const event of events) {
      if (event.type === "log") {
        logs.push({ level: event.level, message: event.message, time: event.time });
      }
    }
    const keep = this.#deps.engine.maxLogEntries ?? logs.length;
    const detail: TaskDetailView = {
      ...await this.#answer(this.#view(record)),
      logs: logs.slice(-keep),
      // A tail's rewinds count entries it does not begin at: its fetches are keyed by id,
      // a fetch tried again after a rewind showing its latest attempt all the same.
      fetches: fetchDetails(
        skippedBytes === 0 ? events : events.filter((event) => event.type !== "rewind"),
      ).map(fetchSummary),
      ...timelineOf(events, record.vm?.timers),
    };
    if (skippedBytes > 0) detail.journalSkipped = { bytes: skippedBytes };
    const webhook = record.callbackUrl && isFinishedStatus(record.status)
      ? this.#deps.webhookState?.(id, record.updatedAt)
      : undefined;
    if (webhook) detail.webhook = webhook;
    return detail;
  }

  async source(id: string): Promise<TaskSourceView> {
    const record = await this.#record(id);
    return {
      id: record.id,
      code: record.code,
      ...(record.task === undefined ? {} : { task: record.task }),
      ...(record.input === undefined ? {} : { input: record.input }),
      autoFetch: record.autoFetch,
      variables: record.vm?.variables ?? {},
      ...(record.cpuMs === undefined ? {} : { cpuMs: record.cpuMs }),
      ...(record.error?.stack === undefined ? {} : { errorStack: record.error.stack }),
    };
  }

  async fetch(taskId: string, fetch: number | string): Promise<FetchDetailView> {
    const record = await this.#record(taskId);
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

  async list(query: ListTasksQuery): Promise<TaskListView> {
    return await this.#listViews({
      status: query.status,
      name: query.name,
      order: query.order,
      cursor: query.cursor,
      limit: query.limit ?? DEFAULT_LIST_LIMIT,
    });
  }

  /**
   * Every finished task with a callback URL (and those the store's index cannot tell
   * about), oldest first, read from the store a page at a time.
   */
  async *finishedTasks(): AsyncGenerator<TaskView> {
    const status = Object.values(TaskStatus).filter(isFinishedStatus);
    let cursor: string | undefined;
    do {
      const page = await this.#listViews({ status, cursor, limit: FINISHED_PAGE, callback: true });
      yield* page.tasks;
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined && !this.#closing);
  }

  /** A page of the store's listing, as views of the records. */
  async #listViews(query: ListQuery): Promise<TaskListView> {
    const page = await this.#deps.store.list(query);
    const trusted = this.#leasesInForce();
    const records = await Promise.all(page.tasks.map(async ({ id }) => {
      const active = trusted ? this.#active.get(id) : undefined;
      if (active) return active;
      try {
        return await this.#deps.store.readRecord(id);
      } catch {
        return null; // Unreadable: left out, as at a start.
      }
    }));
    const tasks: TaskView[] = [];
    for (const record of records) if (record) tasks.push(toView(this.#view(record)));
    return { tasks, nextCursor: page.nextCursor };
  }

  health(): HealthView {
    const tasks = this.#deps.store.counts();
    for (const id of this.#running) {
      const record = this.#active.get(id);
      if (record && record.status !== TaskStatus.Running) {
        tasks[record.status]--;
        tasks.running++;
      }
    }
    return { status: this.#closing ? "shutting_down" : "ok", version: this.#deps.version, tasks };
  }

  /** Whether `taskId` is paused waiting for `requestId`. */
  isPending(taskId: string, requestId: string): boolean {
    const record = this.#active.get(taskId);
    return record?.status === TaskStatus.Paused &&
      record.pending.some((request) => request.id === requestId);
  }

  // --- internals ------------------------------------------------------------------------

  /** Runs a segment of paused task `record` with `input`, shown as `running` meanwhile. */
  #resume(record: TaskRecord, input: ResumeInput): Promise<SegmentOutcome> {
    return this.#withRunning(record.id, () =>
      this.#deps.pool.resume(
        record.id,
        record.journalLength,
        input,
        () => this.#loadState(record),
        this.#engineOptions(record),
      ));
  }

  /** A task's wake-up time came: fire its due timers in a segment. */
  #wake(id: string): void {
    void this.#serialize(id, async () => {
      const record = this.#active.get(id);
      if (!record || record.status !== TaskStatus.Paused || this.#closing) return;
      const at = wakeAt(record);
      if (at === undefined) return;
      if (at > Date.now()) {
        this.#wakes.set(id, at);
        return;
      }
      try {
        await this.#commit(record, await this.#resume(record, { type: "timers" }));
      } catch (error) {
        this.#deps.logger.error("task wake-up failed", { taskId: id, error: String(error) });
        if (!this.#closing && this.#active.get(id) === record) {
          this.#wakes.set(id, Date.now() + RECOVERY_RETRY_MS);
        }
      }
    });
  }

  /**
   * The task's latest record: the one held when it is active and its lease in force, else
   * the store's. A held record the store's has moved past (another replica took the task
   * over and saved it) loses its live VM, which is of that older state.
   */
  async #record(id: string): Promise<TaskRecord> {
    const held = this.#active.get(id);
    if (held && this.#leasesInForce()) return held;
    const stored = await this.#deps.store.readRecord(id);
    // Held and not stored: a task being created, its first save under way.
    const record = stored ?? held;
    if (!record) throw new NotFoundError(`Task "${id}" not found`);
    if (held && record.eventsBytes !== held.eventsBytes) this.#deps.pool.drop(id);
    return record;
  }

  /** Whether the records held here are the latest (see {@link TaskServiceDeps.leasesInForce}). */
  #leasesInForce(): boolean {
    return this.#deps.leasesInForce?.() ?? true;
  }

  /**
   * Runs {@link sweep} every tenth of the retention, between 200 ms and a minute; the first
   * time within a second of the start.
   */
  #scheduleSweep(first = true): void {
    const retain = this.#deps.retainFinishedMs;
    if (retain === undefined || this.#closing) return;
    const period = Math.min(Math.max(retain / 10, MIN_SWEEP_MS), MAX_SWEEP_MS);
    const every = first ? Math.min(period, FIRST_SWEEP_MS) : period;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#sweeping = this.sweep().then(() => {}, (error) => {
        this.#deps.logger.error("retention sweep failed", { error: String(error) });
      }).finally(() => {
        this.#sweeping = undefined;
        this.#scheduleSweep(false);
      });
    }, every);
    Deno.unrefTimer(timer);
    this.#timers.add(timer);
  }

  /**
   * The view of `record` with the bodies of its external requests in full, read back from
   * the store when it left them in the journal (lists and events give their size only).
   */
  async #answer(record: TaskRecord): Promise<TaskView> {
    const view = toView(record);
    const shown = view.fetchRequests;
    if (!shown || !record.pending.some((request) => request.bodyRef)) return view;
    const requests = await Promise.all(
      record.pending.map((request, index) =>
        request.bodyRef && shown[index]?.external
          ? this.#deps.store.requestWithBody(record.id, request)
          : undefined
      ),
    );
    for (const [index, request] of requests.entries()) {
      if (!request) continue;
      const { bodyBytes: _bytes, ...rest } = shown[index]!;
      const { body, bodyBase64 } = request.options;
      shown[index] = {
        ...rest,
        ...(body === undefined ? {} : { body }),
        ...(bodyBase64 === undefined ? {} : { bodyBase64 }),
      };
    }
    view.fetchRequest = shown[0];
    return view;
  }

  /**
   * Pending request `request` of task `taskId` as it is sent: with its body, read back from
   * the store when the record left it in the journal.
   */
  requestWithBody(taskId: string, request: PendingRequest): Promise<FetchRequest> {
    return this.#deps.store.requestWithBody(taskId, request);
  }

  /** The record as the API shows it: `running` while a segment runs. */
  #view(record: TaskRecord): TaskRecord {
    return this.#running.has(record.id) ? { ...record, status: TaskStatus.Running } : record;
  }

  /**
   * Commits `next` (the task's record after `previous`, or its first record) with `events`
   * appended to its journal, and publishes the transition (as `type` when given). The only
   * place the service saves a transition: every status, present or future, reaches
   * `events` from here (the one other save, {@link noteOverrun}'s mark, changes no status).
   */
  async #save(
    previous: TaskRecord | undefined,
    next: TaskRecord,
    events: readonly TaskEvent[],
    type?: TransitionType,
  ): Promise<TaskRecord> {
    const started = performance.now();
    this.#changedWhileLoading?.add(next.id);
    let saved: TaskRecord;
    try {
      saved = await this.#deps.store.save(next, events);
    } catch (error) {
      if (error instanceof LeaseLostError) this.release(next.id);
      throw error;
    }
    this.#deps.metrics?.saveSeconds.observe((performance.now() - started) / 1000);
    if (isFinishedStatus(saved.status)) this.#active.delete(saved.id);
    else this.#active.set(saved.id, saved);
    this.#wakes.set(saved.id, saved.status === TaskStatus.Paused ? wakeAt(saved) : undefined);
    const transition = type ??
      (previous === undefined
        ? "created"
        : saved.status === TaskStatus.Running
        ? "resumed"
        : saved.status);
    this.events.publish(transition, toView(this.#view(saved)));
    return saved;
  }

  /** Runs a segment of `id`, shown as `running` meanwhile; publishes `resumed` when it was not. */
  async #withRunning(id: string, run: () => Promise<SegmentOutcome>): Promise<SegmentOutcome> {
    const record = this.#active.get(id);
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

  /**
   * Applies a segment's outcome, saves it, and starts its fetches. An outcome cut short by
   * the server stopping is not saved: the previous record stands.
   */
  async #commit(given: TaskRecord, segment: SegmentOutcome): Promise<TaskRecord> {
    const { logger } = this.#deps;
    const mark = this.#marks.get(given.id);
    this.#marks.delete(given.id);
    const record = (await mark) ?? given;
    if (!segment.ok && segment.interrupted) {
      throw new UnavailableError(
        `The server is stopping: the segment of task "${record.id}" was cut short and runs again after the restart`,
      );
    }
    const cpuMs = (record.cpuMs ?? 0) + segment.cpuMs;
    const outcome = this.#withinBudget(cpuMs, segment);
    const { overrunAt: _overrunAt, ...kept } = record;
    const next: TaskRecord = { ...kept, cpuMs, updatedAt: new Date().toISOString() };
    const events: TaskEvent[] = [];
    if (outcome.ok) {
      events.push(...outcome.newJournal);
      next.journalLength += outcome.newJournal.length;
      next.vm = outcome.vm;
      next.pending = outcome.type === "paused" ? withKnownBodies(outcome.pending, record) : [];
      if (outcome.type === "paused") {
        next.status = TaskStatus.Paused;
        next.pauseCount++;
      } else {
        next.status = TaskStatus.Completed;
        if (outcome.result !== undefined) next.result = outcome.result;
      }
    } else {
      // What the failed segment recorded (the response it began with, say) stays in the
      // journal; a retry cuts back to before it and tries that step again.
      if (outcome.newJournal && outcome.newJournal.length > 0) {
        events.push(...outcome.newJournal);
        next.journalLength += outcome.newJournal.length;
      }
      if (outcome.vm && !next.vm) next.vm = outcome.vm;
      next.retryFrom = record.journalLength;
      next.status = TaskStatus.Error;
      next.pending = [];
      next.error = {
        name: outcome.error.name,
        message: outcome.error.message,
        kind: outcome.error.kind,
      };
      if (outcome.error.stack) next.error.stack = outcome.error.stack;
    }
    this.#keepLogs(record, next, outcome.logs, events);
    let saved: TaskRecord;
    try {
      saved = await this.#save(record, next, events);
    } catch (error) {
      // The outcome is lost, the previous record stands: run the segment again later. The
      // live VM ran ahead of every record and goes: should the task come back here at the
      // same step from another replica (same journal length, other fetch ids), it would be
      // taken for that state.
      this.#deps.pool.drop(record.id);
      if (record.status === TaskStatus.Running) this.#recoverLater(record.id);
      throw error instanceof HttpError
        ? error
        : new UnavailableError(`Cannot save task "${record.id}"`, { cause: error });
    }
    if (saved.status !== TaskStatus.Paused || sleepsLong(saved)) this.#deps.pool.drop(saved.id);
    // A pause is the hot path's line (one per fetch): at debug; the other states at info.
    const level = saved.status === TaskStatus.Paused ? "debug" : "info";
    logger[level](`task ${saved.status}`, {
      taskId: saved.id,
      pauseCount: saved.pauseCount,
      pending: saved.pending.length,
      error: saved.error,
    });
    this.#deps.onPending(
      saved.id,
      saved.status === TaskStatus.Paused ? serverRequests(saved) : [],
      saved.retry,
    );
    return saved;
  }

  /**
   * Adds the segment's console lines to `events` within the task's `maxLogBytes` (the rest
   * are dropped and counted in `droppedLogLines`), and copies them to the server log.
   */
  #keepLogs(
    record: TaskRecord,
    next: TaskRecord,
    lines: readonly LogEntry[],
    events: TaskEvent[],
  ): void {
    const budget = this.#deps.maxLogBytes ?? Number.POSITIVE_INFINITY;
    let bytes = record.logBytes ?? 0;
    let dropped = 0;
    for (const line of lines) {
      const size = encoder.encode(line.message).length + LOG_LINE_OVERHEAD_BYTES;
      if (bytes + size > budget) {
        dropped++;
        continue;
      }
      bytes += size;
      events.push({ type: "log", ...line });
      next.logCount++;
      this.#guestLog.copy(record.id, line);
    }
    next.logBytes = bytes;
    if (dropped > 0) {
      if (!record.droppedLogLines) {
        this.#deps.logger.warn("task console output over its cap: further lines dropped", {
          taskId: record.id,
          maxLogBytes: budget,
        });
      }
      next.droppedLogLines = (record.droppedLogLines ?? 0) + dropped;
    }
  }

  /** A successful `outcome` turned into a `timeout` failure when `cpuMs` is over the budget. */
  #withinBudget(cpuMs: number, outcome: SegmentOutcome): SegmentOutcome {
    const budget = this.#deps.cpuBudgetMs ?? Number.POSITIVE_INFINITY;
    if (!outcome.ok || cpuMs <= budget) return outcome;
    return {
      ok: false,
      error: {
        kind: "timeout",
        name: "InternalError",
        message: `The task used ${Math.round(cpuMs)} ms of CPU time in its segments, more than ` +
          `its budget of ${budget} ms`,
      },
      logs: outcome.logs,
      newJournal: outcome.newJournal,
      vm: outcome.vm,
      cpuMs: outcome.cpuMs,
    };
  }

  /** Fails a task whose server stopped during a segment that ran past its time limit. */
  async #failOverrun(id: string): Promise<void> {
    const record = this.#active.get(id);
    if (!record?.overrunAt) return;
    const limit = this.#deps.engine.timeLimitMs;
    this.#deps.logger.warn("task failed: its segment overran when the server stopped", {
      taskId: id,
    });
    try {
      await this.#commit(record, {
        ok: false,
        error: {
          kind: "timeout",
          name: "InternalError",
          message: `The script ran longer than its time limit${
            limit === undefined ? "" : ` of ${limit} ms`
          } in one run segment, and the server stopped during it; it is not run again`,
        },
        logs: [],
        cpuMs: 0,
      });
    } catch (error) {
      this.#deps.logger.error("cannot fail an overrun task", { taskId: id, error: String(error) });
    }
  }

  /** Re-runs a task caught `running` from its saved state. */
  async #recover(id: string): Promise<void> {
    const record = this.#active.get(id);
    if (!record || record.status !== TaskStatus.Running || this.#closing) return;
    this.#deps.logger.info("task recovering", { taskId: id });
    try {
      const outcome = await this.#withRunning(id, () => this.#runJournal(record));
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
        const before = this.#active.get(id);
        await this.#recover(id);
        const after = this.#active.get(id);
        if (after === before && after?.status === TaskStatus.Running) {
          this.#recoverLater(id, Math.min(delay * 2, MAX_RECOVERY_RETRY_MS));
        }
      });
    }, delay);
    this.#timers.add(timer);
  }

  /**
   * Runs a task from its saved journal in a fresh VM: replays it and reports where it
   * stands, or runs the code from the start when there is no journal to replay.
   */
  async #runJournal(record: TaskRecord): Promise<SegmentOutcome> {
    const options = this.#engineOptions(record);
    if (!record.vm || record.journalLength === 0) {
      return await this.#deps.pool.execute(record.id, record.code, options);
    }
    return await this.#deps.pool.restore(record.id, await this.#loadState(record), options);
  }

  async #loadState(record: TaskRecord): Promise<VMState> {
    if (!record.vm) throw new UnavailableError(`Task "${record.id}" has no saved engine state`);
    const journal = journalOf(await this.#deps.store.readEvents(record));
    return { ...record.vm, journal, logs: [] };
  }

  /**
   * The journal of a fork of `original`: its journal up to the first response of a fetch
   * numbered `atFetch` or later, with the responses `input` replaces; requests left without
   * a response get new ids (the fork sends them itself, under its own Idempotency-Key).
   */
  async #forkJournal(
    original: TaskRecord,
    input: ForkTaskInput,
  ): Promise<{ entries: JournalEntry[]; atFetch: number }> {
    const fail = (why: string) => new BadRequestError(`Cannot fork task "${original.id}": ${why}`);
    const journal = journalOf(await this.#deps.store.readEvents(original));
    const indexOf = new Map<string, number>();
    for (const entry of journal) {
      if (entry.type === "request") indexOf.set(entry.request.id, entry.index);
    }
    const atFetch = input.atFetch ?? indexOf.size;
    if (atFetch > indexOf.size) {
      throw fail(`"atFetch" is ${atFetch} but the task made ${indexOf.size} fetches`);
    }
    let cut = journal.findIndex((entry) =>
      entry.type === "response" && (indexOf.get(entry.response.id) ?? 0) >= atFetch
    );
    if (cut === -1) cut = journal.length;
    const entries = journal.slice(0, cut);
    const answered = new Set<number>();
    for (const [at, entry] of entries.entries()) {
      if (entry.type !== "response") continue;
      const index = indexOf.get(entry.response.id)!;
      answered.add(index);
      const replacement = input.responses?.[index];
      if (replacement) {
        entries[at] = { ...entry, response: { ...replacement, id: entry.response.id } };
      }
    }
    for (const key of Object.keys(input.responses ?? {})) {
      if (!answered.has(Number(key))) {
        throw fail(
          `"responses" replaces fetch ${key}, which has no recorded response before fetch ${atFetch}`,
        );
      }
    }
    const now = Date.now();
    const renamed = new Map<string, string>();
    for (const [at, entry] of entries.entries()) {
      if (entry.type === "abort") {
        // An aborted request is never answered: its abort names it by its new id.
        entries[at] = { ...entry, id: renamed.get(entry.id) ?? entry.id };
      }
      if (entry.type !== "request" || answered.has(entry.index)) continue;
      const request = { ...entry.request, id: forkFetchId(entry.index), timestamp: now };
      renamed.set(entry.request.id, request.id);
      entries[at] = { ...entry, request };
    }
    return { entries, atFetch };
  }

  #engineOptions(record: TaskRecord): EngineOptions {
    const options: EngineOptions = { ...this.#deps.engine, id: record.id };
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

  /** Throws a `ConflictError` when an active task has the id (see {@link #assertNotStored}). */
  #assertNew(id: string, action: string): void {
    if (this.#active.has(id)) {
      throw new ConflictError(`Cannot ${action} "${id}": it already exists`);
    }
  }

  /** Throws a `ConflictError` when the store has a task with the id (a finished one). */
  async #assertNotStored(id: string, action: string): Promise<void> {
    if (await this.#deps.store.readRecord(id)) {
      throw new ConflictError(`Cannot ${action} "${id}": it already exists`);
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

/**
 * The pending requests of a segment's outcome, each taken from `previous` when it was
 * already pending there with its body left in the journal (so the body is not written
 * again; the store references the bodies of new ones).
 */
function withKnownBodies(
  requests: readonly FetchRequest[],
  previous: TaskRecord,
): PendingRequest[] {
  const known = new Map<string, PendingRequest>();
  for (const request of previous.pending) {
    if (request.bodyRef !== undefined) known.set(request.id, request);
  }
  if (known.size === 0) return [...requests];
  return requests.map((request) => {
    const kept = known.get(request.id);
    if (kept === undefined || kept.receivedParts === request.receivedParts) {
      return kept ?? request;
    }
    // The parts of its response delivered are counted anew at every pause.
    const { receivedParts: _parts, ...rest } = kept;
    return request.receivedParts === undefined
      ? rest
      : { ...rest, receivedParts: request.receivedParts };
  });
}

/** Whether the server performs `request` of `record` (else an outside worker does). */
function isExternal(record: TaskRecord, request: FetchRequest): boolean {
  return request.options.external ?? !record.autoFetch;
}

/** The pending requests of `record` the server performs. */
function serverRequests(record: TaskRecord): PendingRequest[] {
  return record.pending.filter((request) => !isExternal(record, request));
}

/** When a paused task's earliest timer is due (ms since the epoch), if it has one. */
function wakeAt(record: TaskRecord): number | undefined {
  return record.vm?.timers?.[0]?.dueAt;
}

/** Whether a paused task waits only for a far timer or a signal (no request in flight). */
function sleepsLong(record: TaskRecord): boolean {
  if (record.pending.length > 0) return false;
  const at = wakeAt(record);
  return at === undefined || at - Date.now() > LIVE_SLEEP_MS;
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
    const requests = record.pending.map((request) => {
      const shown: FetchRequestView = {
        id: request.id,
        url: request.url,
        method: request.options.method ?? "GET",
      };
      if (request.receivedParts !== undefined) shown.receivedParts = request.receivedParts;
      if (isExternal(record, request)) {
        const { headers, body, bodyBase64, redirect } = request.options;
        shown.external = true;
        shown.headers = headers ?? {};
        if (body !== undefined) shown.body = body;
        if (bodyBase64 !== undefined) shown.bodyBase64 = bodyBase64;
        if (request.bodyRef) shown.bodyBytes = request.bodyRef.bytes;
        if (redirect !== undefined) shown.redirect = redirect;
      }
      return shown;
    });
    view.fetchRequest = requests[0];
    view.fetchRequests = requests;
  }
  if (record.status === TaskStatus.Paused) {
    const at = wakeAt(record);
    if (at !== undefined) view.wakeAt = new Date(at).toISOString();
    const signals = record.vm?.signals ?? [];
    if (signals.length > 0) view.signalsAwaited = signals;
  }
  if (record.status === TaskStatus.Completed && record.result !== undefined) {
    view.result = record.result;
  }
  const stopped = record.status === TaskStatus.Error || record.status === TaskStatus.Cancelled;
  if (stopped && record.error) view.error = record.error;
  if (record.retries) view.retries = record.retries;
  if (record.forkedFrom) view.forkedFrom = record.forkedFrom;
  if (record.callbackUrl !== undefined) view.callbackUrl = record.callbackUrl;
  return view;
}

/** A new request id for fetch `index` of a fork, in the engine's form. */
function forkFetchId(index: number): string {
  const random = crypto.getRandomValues(new Uint8Array(4));
  const hex = Array.from(random, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `fetch_${Date.now()}_${index}_${hex}`;
}

function newTaskId(): string {
  const random = crypto.getRandomValues(new Uint8Array(5));
  const hex = Array.from(random, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `task-${Date.now().toString(36)}-${hex}`;
}
