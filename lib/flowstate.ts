/**
 * Assembles a FlowState server from its configuration: store, engine pool, task service,
 * automatic fetch, and the HTTP app. `server.ts` only binds the result to a socket.
 *
 * @module
 */
import manifest from "../deno.json" with { type: "json" };
import { type App, createApp } from "./http/mod.ts";
import { type Config, engineOptions } from "./config.ts";
import {
  attemptFetch,
  ByteBudget,
  createEgressPolicy,
  type DeliveryOutcome,
  FetchDispatcher,
  fetchWithRetry,
  performFetch,
  PinnedClientPool,
} from "./outbound/mod.ts";
import { FlowTaskService, ServiceMetrics, WebhookSender, WorkerPool } from "./service/mod.ts";
import { LeaseKeeper } from "./service/lease_keeper.ts";
import {
  type DirectoryLock,
  FileTaskStore,
  FileWebhookMarks,
  lockDirectory,
  PostgresTaskStore,
  PostgresWebhookMarks,
} from "./store/mod.ts";
import { forwardToOwner } from "./http/owner_forward.ts";
import { HttpError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { FetchResponse } from "./engine/mod.ts";

/** Version reported by `/health` and the OpenAPI document: `deno.json`'s `version`. */
export const VERSION: string = manifest.version;

/** Most outbound requests in flight at once. */
const OUTBOUND_CONCURRENCY = 256;
const MIB = 1024 * 1024;
/** Most bytes of a webhook receiver's answer read (the answer's body is not used). */
const WEBHOOK_ANSWER_MAX_BYTES = 64 * 1024;
/** Time allowed to one self-POST, ms (a segment may run up to its time limit first). */
const SELF_POST_TIMEOUT_MS = 60_000;
/** The header every task fetch carries, so the edge refuses a task calling this server. */
const SELF_MARK_HEADER = "flowstate-loop";

/** A running FlowState instance, not yet bound to a socket. */
export interface FlowState {
  app: App;
  service: FlowTaskService;
  /**
   * Tells the instance the port clients reach it at (and any other port it listens on):
   * the self-call guard refuses them, and the default call endpoint uses the first.
   */
  listening(port: number, ...others: number[]): void;
  /**
   * Takes the states directory's lock (rejects with a `DirectoryLockedError` when another
   * server holds it), then loads and recovers the tasks on disk.
   */
  start(): Promise<{ loaded: number; skipped: number }>;
  /** Graceful stop: refuse new work, finish running segments, stop fetching, stop workers. */
  close(): Promise<void>;
}

/** Builds a FlowState instance for `config`. */
export function createFlowState(config: Config, logger: Logger): FlowState {
  let shuttingDown = false;
  let lock: DirectoryLock | undefined;
  const pool = new WorkerPool({
    size: config.workers,
    variant: config.engineVariant,
    liveVms: config.liveVms,
    liveVmBytes: config.liveVmMb * 1024 * 1024,
    timeLimitMs: config.timeLimitMs,
    graceMs: config.timeLimitGraceMs,
    onOverrun: (taskId) => service.noteOverrun(taskId),
  });
  const database = config.databaseUrl === undefined ? undefined : new PostgresTaskStore({
    url: config.databaseUrl,
    owner: config.replicaId,
    leaseMs: config.leaseMs,
    encryptionKey: config.journalEncryptionKey,
  });
  const store = database ?? new FileTaskStore(config.statesDir, {
    fsync: config.fsync,
    integrityKey: config.journalKey,
    encryptionKey: config.journalEncryptionKey,
  });
  let port = config.port;
  let otherPorts: number[] = [];
  const callEndpoint = () => config.callEndpoint ?? `http://localhost:${port}/call`;
  const selfMark = { header: SELF_MARK_HEADER, value: crypto.randomUUID() };
  const policy = createEgressPolicy({
    allow: config.fetchAllow,
    denyPrivate: config.fetchDenyPrivate,
    selfOrigins: () => [
      new URL(callEndpoint()),
      ...[port, ...otherPorts].map((p) => new URL(`http://localhost:${p}`)),
    ],
  });
  const clients = new PinnedClientPool();
  const dispatcher: FetchDispatcher = new FetchDispatcher({
    perform: (request, signal, retry, hold, part) => {
      const options = {
        timeoutMs: config.fetchTimeoutMs,
        maxBytes: config.fetchMaxBytes,
        policy,
        selfMark,
        hold,
        clients,
        parts: config.fetchBodyPartMs > 0
          ? { afterMs: config.fetchBodyPartMs, deliver: part }
          : undefined,
      };
      return retry
        ? fetchWithRetry(
          retry,
          (signal) => attemptFetch(request, { ...options, signal }),
          signal,
        )
        : performFetch(request, { ...options, signal });
    },
    bytes: new ByteBudget(config.fetchInflightMb * MIB, config.fetchTaskInflightMb * MIB),
    prepare: (taskId, request) => service.requestWithBody(taskId, request),
    post: (taskId, response) => selfPost(taskId, response),
    deliverDirect: (taskId, response) => deliverDirect(taskId, response),
    isPending: (taskId, requestId) => service.isPending(taskId, requestId),
    logger,
    postAttempts: config.selfPostRetries,
    concurrency: OUTBOUND_CONCURRENCY,
  });
  const metrics = new ServiceMetrics();
  const service: FlowTaskService = new FlowTaskService({
    metrics,
    store,
    pool,
    engine: engineOptions(config),
    tasksDir: config.tasksDir,
    autoFetch: config.autoFetch,
    onPending: (taskId, requests, retry) => dispatcher.dispatch(taskId, requests, retry),
    logger,
    version: VERSION,
    cpuBudgetMs: config.taskCpuBudgetMs,
    maxLogBytes: config.maxLogBytes,
    guestLogRate: config.guestLogRate,
    webhookState: (taskId, finishedAt) => webhooks.state(taskId, finishedAt),
    retainFinishedMs: config.retainFinishedMs,
    // In a cluster the records held are the latest only while the leases are in force.
    leasesInForce: database && (() => keeper?.leasesInForce() ?? false),
  });

  const webhooks = new WebhookSender({
    secret: config.webhookSecret,
    attempts: config.webhookAttempts,
    backoffMs: config.webhookBackoffMs,
    perform: (request, signal) =>
      performFetch(request, {
        timeoutMs: config.fetchTimeoutMs,
        maxBytes: WEBHOOK_ANSWER_MAX_BYTES,
        policy,
        signal,
        selfMark,
        clients,
      }),
    marks: database
      ? new PostgresWebhookMarks(database)
      : new FileWebhookMarks(`${config.statesDir}/webhooks`, { fsync: config.fsync }),
    events: service.events,
    finishedTasks: () => service.finishedTasks(),
    logger,
  });

  async function selfPost(taskId: string, fetchResponse: FetchResponse): Promise<DeliveryOutcome> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (config.token) headers.authorization = `Bearer ${config.token}`;
    const response = await fetch(callEndpoint(), {
      method: "POST",
      headers,
      body: JSON.stringify({ taskId, fetchResponse }),
      signal: AbortSignal.timeout(SELF_POST_TIMEOUT_MS),
    });
    await response.body?.cancel();
    if (response.ok) return "delivered";
    if (response.status === 404 || response.status === 409) return "gone";
    // Too large for MAX_BODY_BYTES, or refused as malformed: hand it over in-process.
    if (response.status === 413 || response.status === 400) {
      return deliverDirect(taskId, fetchResponse);
    }
    return "retry";
  }

  async function deliverDirect(taskId: string, response: FetchResponse): Promise<DeliveryOutcome> {
    try {
      await service.deliver(taskId, response);
      return "delivered";
    } catch (error) {
      if (error instanceof HttpError && (error.status === 404 || error.status === 409)) {
        return "gone";
      }
      return "retry";
    }
  }

  metrics.observe({
    tasks: () => service.health().tasks,
    liveVms: () => pool.stats().liveVms,
    liveVmBytes: () => pool.stats().liveVmBytes,
    segmentQueue: () => pool.stats().queued,
    outboundInFlight: () => dispatcher.size,
    eventListeners: () => service.events.listenerCount,
  });
  // In a cluster: the leases of this replica's tasks, and their requests sent on to the
  // replica holding them.
  const keeper = database && new LeaseKeeper({
    leases: database.leases,
    service,
    leaseMs: config.leaseMs,
    address: () => config.replicaUrl ?? `http://localhost:${port}`,
    refresh: () => database.refreshCounts(),
    logger,
  });
  const local = createApp({
    service,
    config,
    logger,
    metrics,
    selfMark,
    isShuttingDown: () => shuttingDown,
  });
  const app = database
    ? forwardToOwner(local, {
      ownerAddress: (taskId) => database.leases.ownerAddress(taskId),
      holds: (taskId) => service.holds(taskId),
      maxBodyBytes: config.maxBodyBytes,
      logger,
    })
    : local;
  return {
    app,
    service,
    listening(listenPort, ...others) {
      port = listenPort;
      otherPorts = others;
    },
    async start() {
      if (!database) lock = await lockDirectory(config.statesDir);
      await webhooks.open();
      const loaded = await service.start();
      await keeper?.start();
      webhooks.resume();
      return loaded;
    },
    async close() {
      shuttingDown = true;
      // No task is taken over any more; the leases held last until released below.
      await keeper?.stop();
      // Requests already sent get the shutdown grace to finish and be delivered, so a
      // routine restart does not send them twice.
      await dispatcher.drain(config.shutdownGraceMs);
      // Running segments get the grace to finish and be saved; those still running then
      // (stuck, or simply long) are cut short and run again after the restart.
      await service.close(config.timeLimitGraceMs);
      await pool.close();
      await service.drained();
      await webhooks.close();
      // Ends the event streams, so the server's own shutdown is not held by them.
      service.events.close();
      await dispatcher.close();
      clients.close();
      // The other replicas take this one's tasks over at once.
      await keeper?.release();
      await store.close();
      lock?.release();
    },
  };
}
