/**
 * A pool of engine workers. A task's segments go to the worker that holds its live VM
 * when that worker is free; when it is busy (say, with a task spinning until its time
 * limit) and another worker is idle, the segment runs there as a cold resume (journal
 * replay), so one busy worker never stalls the others' tasks. A worker that dies is
 * replaced and its jobs fail with kind `"internal"`.
 *
 * @module
 */
import type { EngineOptions, ExecutionErrorJson, FetchResponse, VMState } from "../engine/mod.ts";
import type {
  JobMessage,
  ReportMessage,
  SegmentFailure,
  SegmentJob,
  SegmentReport,
  SegmentSuccess,
} from "./segment_protocol.ts";

/** A finished segment: the worker's success or failure report. */
export type SegmentOutcome = SegmentSuccess | SegmentFailure;

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Number of workers. */
  size: number;
  /** Live VMs kept per worker. */
  liveVms: number;
}

interface Slot {
  worker: Worker;
  busy: boolean;
  queue: { job: SegmentJob; settle: (report: SegmentReport) => void }[];
  inflight: Map<number, (report: SegmentReport) => void>;
}

const WORKER_URL = new URL("./executor_worker.ts", import.meta.url);

/** Runs segments on Deno Workers, keeping each task's live VM in one of them. */
export class WorkerPool {
  readonly #options: WorkerPoolOptions;
  readonly #slots: Slot[] = [];
  /** Which worker holds a task's live VM. */
  readonly #home = new Map<string, Slot>();
  #seq = 0;
  #closed = false;

  constructor(options: WorkerPoolOptions) {
    this.#options = { size: Math.max(1, options.size), liveVms: Math.max(1, options.liveVms) };
    for (let i = 0; i < this.#options.size; i++) this.#slots.push(this.#spawn());
  }

  /** Live VMs held by the workers, and segments waiting for a worker. */
  stats(): { liveVms: number; queued: number } {
    let queued = 0;
    for (const slot of this.#slots) queued += slot.queue.length;
    return { liveVms: this.#home.size, queued };
  }

  /** Runs new code for `taskId` in a fresh VM. */
  execute(taskId: string, code: string, options: EngineOptions): Promise<SegmentOutcome> {
    return this.#run(this.#pick(), { op: "execute", taskId, code, options }, taskId);
  }

  /**
   * Delivers `response` to a task at `journalLength` entries: on the worker holding its
   * live VM when possible, otherwise by replaying the state that `loadState` gives.
   */
  async resume(
    taskId: string,
    journalLength: number,
    response: FetchResponse,
    loadState: () => Promise<VMState>,
    options: EngineOptions,
  ): Promise<SegmentOutcome> {
    const home = this.#home.get(taskId);
    const idle = this.#slots.find((slot) => !slot.busy && slot.queue.length === 0);
    if (home && (!home.busy || !idle || idle === home)) {
      const report = await this.#send(home, { op: "deliver", taskId, journalLength, response });
      if (report.ok === true || report.ok === false) return this.#settled(taskId, home, report);
    } else if (home) {
      this.#home.delete(taskId);
      void this.#send(home, { op: "drop", taskId });
    }
    const state = await loadState();
    return this.#run(this.#pick(), { op: "resume", taskId, state, response, options }, taskId);
  }

  /** Replays `state` in a fresh VM and reports where it stands (crash recovery). */
  restore(taskId: string, state: VMState, options: EngineOptions): Promise<SegmentOutcome> {
    return this.#run(this.#pick(), { op: "resume", taskId, state, options }, taskId);
  }

  /** Forgets a task's live VM (e.g. when it ended elsewhere). */
  drop(taskId: string): void {
    const home = this.#home.get(taskId);
    if (!home) return;
    this.#home.delete(taskId);
    void this.#send(home, { op: "drop", taskId });
  }

  /** Stops every worker; jobs still running fail with kind `"internal"`. */
  close(): void {
    this.#closed = true;
    for (const slot of this.#slots) this.#kill(slot, "The engine pool was closed");
  }

  async #run(slot: Slot, job: SegmentJob, taskId: string): Promise<SegmentOutcome> {
    const report = await this.#send(slot, job);
    if (report.ok !== true && report.ok !== false) {
      return failure({
        kind: "internal",
        name: "Error",
        message: "The engine worker lost the job",
      });
    }
    return this.#settled(taskId, slot, report);
  }

  #settled(taskId: string, slot: Slot, report: SegmentOutcome): SegmentOutcome {
    if (report.ok && report.type === "paused") this.#home.set(taskId, slot);
    else this.#home.delete(taskId);
    return report;
  }

  /** The idle worker with the fewest queued jobs, or else the least loaded one. */
  #pick(): Slot {
    let best = this.#slots[0]!;
    for (const slot of this.#slots) {
      const load = (slot.busy ? 1 : 0) + slot.queue.length;
      const bestLoad = (best.busy ? 1 : 0) + best.queue.length;
      if (load < bestLoad) best = slot;
    }
    return best;
  }

  #send(slot: Slot, job: SegmentJob): Promise<SegmentReport> {
    if (this.#closed) {
      return Promise.resolve(
        failure({ kind: "internal", name: "Error", message: "The engine pool is closed" }),
      );
    }
    return new Promise((settle) => {
      slot.queue.push({ job, settle });
      this.#pump(slot);
    });
  }

  #pump(slot: Slot): void {
    if (slot.busy) return;
    const next = slot.queue.shift();
    if (!next) return;
    slot.busy = true;
    const seq = ++this.#seq;
    slot.inflight.set(seq, (report) => {
      slot.busy = false;
      next.settle(report);
      this.#pump(slot);
    });
    try {
      slot.worker.postMessage({ seq, job: next.job } satisfies JobMessage);
    } catch (error) {
      // The job could not be copied to the worker (e.g. data nested too deeply): fail it
      // alone and keep the worker going.
      slot.inflight.delete(seq);
      slot.busy = false;
      next.settle(failure({
        kind: "limit",
        name: "LimitError",
        message: `The task's data cannot be handed to the engine: ${String(error)}`,
      }));
      this.#pump(slot);
    }
  }

  #spawn(): Slot {
    const worker = new Worker(WORKER_URL, { type: "module" });
    const slot: Slot = { worker, busy: false, queue: [], inflight: new Map() };
    worker.postMessage({ liveVms: this.#options.liveVms });
    worker.onmessage = (event: MessageEvent<ReportMessage>) => {
      const done = slot.inflight.get(event.data.seq);
      slot.inflight.delete(event.data.seq);
      done?.(event.data.report);
    };
    worker.onerror = (event) => {
      event.preventDefault();
      this.#replace(slot, `The engine worker crashed: ${event.message}`);
    };
    worker.onmessageerror = () =>
      this.#replace(slot, "The engine worker sent an unreadable report");
    return slot;
  }

  #replace(slot: Slot, reason: string): void {
    this.#kill(slot, reason);
    if (this.#closed) return;
    const index = this.#slots.indexOf(slot);
    if (index >= 0) {
      const fresh = this.#spawn();
      fresh.queue = slot.queue.splice(0);
      this.#slots[index] = fresh;
      this.#pump(fresh);
    }
  }

  #kill(slot: Slot, reason: string): void {
    slot.worker.terminate();
    for (const [taskId, home] of this.#home) if (home === slot) this.#home.delete(taskId);
    const lost = failure({ kind: "internal", name: "Error", message: reason });
    for (const done of slot.inflight.values()) done(lost);
    slot.inflight.clear();
    if (this.#closed) { for (const queued of slot.queue.splice(0)) queued.settle(lost); }
  }
}

function failure(error: ExecutionErrorJson): SegmentFailure {
  return { ok: false, error, logs: [] };
}
