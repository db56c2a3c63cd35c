/**
 * A pool of engine processes. A task's segments go to the process that holds its live VM
 * when that process is free; when it is busy (say, with a task spinning until its time
 * limit) and another process is idle, the segment runs there as a cold resume (journal
 * replay), so one busy process never stalls the others' tasks.
 *
 * The watchdog: QuickJS does not call its interrupt handler inside some built-ins (an
 * `indexOf` over a huge array-like runs for a minute), and a Deno Worker busy in
 * WebAssembly keeps running after `terminate()`. So each engine runs in a child process,
 * and a job that has not answered by its time limit plus a grace is ended with SIGKILL: it
 * fails with kind `"timeout"`, the process is replaced, the jobs queued behind it run on
 * the new one, and the tasks whose live VMs it held resume from their journals (cold) on
 * their next segment, unharmed. A process that dies otherwise is replaced the same way;
 * its job fails with kind `"internal"`.
 *
 * Live VMs are kept within a server-wide budget of bytes (their linear memory, which never
 * shrinks) and a count per process; beyond either, the least recently used are dropped.
 *
 * @module
 */
import { fromFileUrl } from "@std/path";
import type {
  EngineOptions,
  ExecutionErrorJson,
  ResumeInput,
  Variant,
  VMState,
} from "../engine/mod.ts";
import { encodeFrame, readFrames } from "./frames.ts";
import type {
  EngineMessage,
  JobMessage,
  ReportMessage,
  SegmentFailure,
  SegmentJob,
  SegmentReport,
  SegmentSuccess,
} from "./segment_protocol.ts";

/** A finished segment: the engine's success or failure report. */
export type SegmentOutcome = SegmentSuccess | SegmentFailure;

/** Options of {@link WorkerPool}. */
export interface WorkerPoolOptions {
  /** Number of engine processes. */
  size: number;
  /** The build each process prepares before taking jobs (others load on first use). */
  variant?: Variant;
  /** Live VMs kept per process. */
  liveVms: number;
  /** Bytes of live VMs kept in all processes together. Default: no limit. */
  liveVmBytes?: number;
  /** Time limit of one run segment, ms (the engine's `timeLimitMs`). */
  timeLimitMs: number;
  /** Time a segment may run past its limit before its process is killed, ms. */
  graceMs: number;
  /**
   * Called when a segment of `taskId` is still running at its time limit (the engine did
   * not stop it): it will be killed at the end of the grace unless it answers first.
   */
  onOverrun?(taskId: string): void;
}

interface Queued {
  job: SegmentJob;
  settle: (report: SegmentReport) => void;
}

interface Current extends Queued {
  seq: number;
  started: number;
  timers: ReturnType<typeof setTimeout>[];
}

interface Slot {
  process: Deno.ChildProcess;
  writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Set once the process has loaded and said so; jobs wait until then. */
  ready: boolean;
  /** Set once the process is being killed or has exited. */
  dead: boolean;
  queue: Queued[];
  current: Current | null;
  /** Live VMs this process holds. */
  liveCount: number;
}

interface Home {
  slot: Slot;
  bytes: number;
}

const ENTRY_PATH = fromFileUrl(new URL("./engine_process.ts", import.meta.url));
const ORPHAN_WATCH_PATH = fromFileUrl(new URL("./engine_orphan_watch.ts", import.meta.url));
const CONFIG_PATH = fromFileUrl(new URL("../../deno.json", import.meta.url));
const NODE_MODULES_PATH = fromFileUrl(new URL("../../node_modules", import.meta.url));

/**
 * How an engine process is started. It reads only the dependencies and its own watch
 * thread, has no network, environment or write access, and may signal processes (its
 * watch thread kills it when orphaned) but not start any: `--allow-run` names a file that
 * is not a program, because `Deno.kill` needs some run permission.
 */
const ENGINE_ARGS = [
  "run",
  "--quiet",
  "--no-prompt",
  // `gc()`, to return a freed VM's memory at once (see engine_process.ts).
  "--v8-flags=--expose-gc",
  `--config=${CONFIG_PATH}`,
  `--allow-read=${NODE_MODULES_PATH},${ORPHAN_WATCH_PATH}`,
  `--allow-run=${ORPHAN_WATCH_PATH}`,
  ENTRY_PATH,
];

/** Runs segments in engine processes, keeping each task's live VM in one of them. */
export class WorkerPool {
  readonly #options: Required<Omit<WorkerPoolOptions, "onOverrun">>;
  readonly #args: string[];
  readonly #onOverrun: (taskId: string) => void;
  readonly #slots: Slot[] = [];
  /** Which process holds a task's live VM, least recently used first. */
  readonly #home = new Map<string, Home>();
  #liveBytes = 0;
  /** Processes killed or exited whose pipes are still closing. */
  readonly #exiting = new Set<Promise<void>>();
  #seq = 0;
  #closed = false;

  constructor(options: WorkerPoolOptions) {
    this.#options = {
      size: Math.max(1, options.size),
      liveVms: Math.max(1, options.liveVms),
      liveVmBytes: options.liveVmBytes ?? Number.POSITIVE_INFINITY,
      timeLimitMs: options.timeLimitMs,
      graceMs: options.graceMs,
      variant: options.variant ?? "asyncify",
    };
    this.#args = [...ENGINE_ARGS, this.#options.variant];
    this.#onOverrun = options.onOverrun ?? (() => {});
    for (let i = 0; i < this.#options.size; i++) this.#slots.push(this.#spawn());
  }

  /** Live VMs held by the processes, their bytes, and segments waiting for a process. */
  stats(): { liveVms: number; liveVmBytes: number; queued: number } {
    let queued = 0;
    for (const slot of this.#slots) queued += slot.queue.length;
    return { liveVms: this.#home.size, liveVmBytes: this.#liveBytes, queued };
  }

  /** Runs new code for `taskId` in a fresh VM. */
  execute(taskId: string, code: string, options: EngineOptions): Promise<SegmentOutcome> {
    return this.#run(this.#pick(), { op: "execute", taskId, code, options }, taskId);
  }

  /**
   * Gives `input` (a response, the due timers, a signal) to a task at `journalLength`
   * entries: on the process holding its live VM when possible, otherwise by replaying the
   * state that `loadState` gives.
   */
  async resume(
    taskId: string,
    journalLength: number,
    input: ResumeInput,
    loadState: () => Promise<VMState>,
    options: EngineOptions,
  ): Promise<SegmentOutcome> {
    const home = this.#home.get(taskId)?.slot;
    const idle = this.#slots.find((slot) => !slot.current && slot.queue.length === 0);
    if (home && (!home.current || !idle || idle === home)) {
      const report = await this.#send(home, { op: "deliver", taskId, journalLength, input });
      if (report.ok === true || report.ok === false) return this.#settled(taskId, home, report);
    } else if (home) {
      this.drop(taskId);
    }
    const state = await loadState();
    return this.#run(this.#pick(), { op: "resume", taskId, state, input, options }, taskId);
  }

  /** Replays `state` in a fresh VM and reports where it stands (crash recovery). */
  restore(taskId: string, state: VMState, options: EngineOptions): Promise<SegmentOutcome> {
    return this.#run(this.#pick(), { op: "resume", taskId, state, options }, taskId);
  }

  /** Forgets a task's live VM (e.g. when it ended elsewhere). */
  drop(taskId: string): void {
    const home = this.#forgetHome(taskId);
    if (home && !home.dead) void this.#send(home, { op: "drop", taskId });
  }

  /**
   * Stops every process; jobs still running or queued end `interrupted` (kind
   * `"internal"`): their outcome is unknown.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const slot of this.#slots) this.#kill(slot, interrupted());
    await Promise.all([...this.#exiting]);
  }

  async #run(slot: Slot, job: SegmentJob, taskId: string): Promise<SegmentOutcome> {
    const report = await this.#send(slot, job);
    if (report.ok !== true && report.ok !== false) {
      return internal("The engine process lost the job");
    }
    return this.#settled(taskId, slot, report);
  }

  #settled(taskId: string, slot: Slot, report: SegmentOutcome): SegmentOutcome {
    this.#forgetHome(taskId);
    if (report.ok && report.type === "paused" && !slot.dead) {
      this.#home.set(taskId, { slot, bytes: report.vmBytes });
      this.#liveBytes += report.vmBytes;
      slot.liveCount++;
      this.#evict(slot);
    }
    return report;
  }

  #forgetHome(taskId: string): Slot | undefined {
    const home = this.#home.get(taskId);
    if (!home) return undefined;
    this.#home.delete(taskId);
    this.#liveBytes -= home.bytes;
    home.slot.liveCount--;
    return home.slot;
  }

  /** Drops the least recently used live VMs beyond the byte budget and `slot`'s count. */
  #evict(slot: Slot): void {
    for (const [taskId, home] of this.#home) {
      const overBytes = this.#liveBytes > this.#options.liveVmBytes;
      const overCount = slot.liveCount > this.#options.liveVms;
      if (!overBytes && !overCount) return;
      if (overBytes || home.slot === slot) this.drop(taskId);
    }
  }

  /** The idle process with the fewest queued jobs, or else the least loaded one. */
  #pick(): Slot {
    let best = this.#slots[0]!;
    const load = (slot: Slot) => (slot.current ? 1 : 0) + slot.queue.length;
    for (const slot of this.#slots) if (load(slot) < load(best)) best = slot;
    return best;
  }

  #send(slot: Slot, job: SegmentJob): Promise<SegmentReport> {
    if (this.#closed) return Promise.resolve(interrupted());
    return new Promise((settle) => {
      slot.queue.push({ job, settle });
      this.#pump(slot);
    });
  }

  /**
   * Time `job` may take before the watchdog steps in, ms: one time limit (the job's own,
   * else the pool's) per segment it runs, replayed ones included.
   */
  #limitMs(job: SegmentJob): number {
    const options = "options" in job ? job.options as EngineOptions : undefined;
    const timeLimitMs = options?.timeLimitMs ?? this.#options.timeLimitMs;
    let segments = 1;
    if (job.op === "resume") {
      for (const entry of job.state.journal) {
        if (entry.type !== "request") segments++;
      }
    }
    return timeLimitMs * segments;
  }

  #pump(slot: Slot): void {
    if (slot.current || !slot.ready || slot.dead) return;
    const next = slot.queue.shift();
    if (!next) return;
    const seq = ++this.#seq;
    let frame: Uint8Array;
    try {
      frame = encodeFrame({ seq, job: next.job } satisfies JobMessage);
    } catch (error) {
      // The job cannot be encoded (e.g. data nested too deeply): fail it alone.
      next.settle({
        ok: false,
        error: {
          kind: "limit",
          name: "LimitError",
          message: `The task's data cannot be handed to the engine: ${String(error)}`,
        },
        logs: [],
        cpuMs: 0,
      });
      this.#pump(slot);
      return;
    }
    const current: Current = { ...next, seq, started: performance.now(), timers: [] };
    const limitMs = this.#limitMs(next.job);
    const taskId = next.job.taskId;
    if (next.job.op !== "drop") {
      current.timers.push(setTimeout(() => this.#onOverrun(taskId), limitMs));
    }
    current.timers.push(
      setTimeout(() => this.#stuck(slot, current), limitMs + this.#options.graceMs),
    );
    slot.current = current;
    slot.writer.write(frame).catch(() => {
      // The process is gone; its reader notices and replaces it.
    });
  }

  #onReport(slot: Slot, message: ReportMessage): void {
    const current = slot.current;
    if (!current || current.seq !== message.seq) return;
    for (const timer of current.timers) clearTimeout(timer);
    slot.current = null;
    current.settle(message.report);
    this.#pump(slot);
  }

  /** The watchdog: the current job of `slot` ran past its limit and grace. */
  #stuck(slot: Slot, current: Current): void {
    if (slot.current !== current) return;
    const elapsed = Math.round(performance.now() - current.started);
    this.#replace(slot, {
      ok: false,
      error: {
        kind: "timeout",
        name: "InternalError",
        message: `The script ran longer than its time limit in one run segment and was ` +
          `stopped by the server after ${elapsed} ms`,
      },
      logs: [],
      cpuMs: elapsed,
    });
  }

  #spawn(): Slot {
    let process: Deno.ChildProcess;
    try {
      process = new Deno.Command(Deno.execPath(), {
        args: this.#args,
        clearEnv: true,
        stdin: "piped",
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotCapable)) throw error;
      throw new Deno.errors.NotCapable(
        "Cannot start an engine process: the engines run as child processes, so the server " +
          `needs --allow-run (${error.message})`,
      );
    }
    const slot: Slot = {
      process,
      writer: process.stdin.getWriter(),
      ready: false,
      dead: false,
      queue: [],
      current: null,
      liveCount: 0,
    };
    const reading = (async () => {
      try {
        for await (const message of readFrames(process.stdout)) {
          if ("ready" in (message as EngineMessage)) {
            slot.ready = true;
            this.#pump(slot);
          } else {
            this.#onReport(slot, message as ReportMessage);
          }
        }
      } catch {
        // An unreadable report: the process is replaced below like a crashed one.
      }
    })();
    const done = (async () => {
      await reading;
      const status = await process.status;
      await slot.writer.close().catch(() => {});
      if (!slot.dead) {
        const how = status.signal ? `signal ${status.signal}` : `code ${status.code}`;
        this.#replace(slot, internal(`The engine process exited unexpectedly (${how})`));
      }
    })();
    this.#exiting.add(done);
    void done.finally(() => this.#exiting.delete(done));
    return slot;
  }

  /** Kills `slot`, settles its current job with `failure`, and moves its queue to a new one. */
  #replace(slot: Slot, failure: SegmentFailure): void {
    this.#kill(slot, failure);
    if (this.#closed) return;
    const index = this.#slots.indexOf(slot);
    if (index < 0) return;
    const fresh = this.#spawn();
    fresh.queue = slot.queue.splice(0);
    this.#slots[index] = fresh;
  }

  #kill(slot: Slot, failure: SegmentFailure): void {
    if (!slot.dead) {
      slot.dead = true;
      try {
        slot.process.kill("SIGKILL");
      } catch {
        // Already exited.
      }
    }
    for (const [taskId, home] of this.#home) if (home.slot === slot) this.#forgetHome(taskId);
    const current = slot.current;
    slot.current = null;
    if (current) {
      for (const timer of current.timers) clearTimeout(timer);
      current.settle(failure);
    }
    if (this.#closed) { for (const queued of slot.queue.splice(0)) queued.settle(failure); }
  }
}

function interrupted(): SegmentFailure {
  return { ...internal("The engine pool was closed"), interrupted: true };
}

function internal(message: string): SegmentFailure {
  const error: ExecutionErrorJson = { kind: "internal", name: "Error", message };
  return { ok: false, error, logs: [], cpuMs: 0 };
}
