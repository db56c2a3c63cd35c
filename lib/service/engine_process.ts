/**
 * Engine process: runs task segments for the server in a process of its own, so the server
 * can always stop a segment (QuickJS does not interrupt some built-ins, and a Deno Worker
 * busy in WebAssembly does not stop when terminated; a process does, with SIGKILL). Jobs
 * arrive one at a time as frames on stdin; each report goes back as a frame on stdout. It
 * keeps the live VMs of the tasks it ran until the server drops them. It ends when stdin
 * closes, and kills itself when the server is gone (see `engine_orphan_watch.ts`).
 *
 * @module
 */
import { ExecutionError, type ExecutionResult, FetchVM, type Variant } from "../engine/mod.ts";
import { encodeFrame, readFrames } from "./frames.ts";
import type {
  JobMessage,
  ReadyMessage,
  ReportMessage,
  SegmentJob,
  SegmentReport,
  VMStateMeta,
} from "./segment_protocol.ts";

/** Module of the thread that ends this process once the server is gone. */
const ORPHAN_WATCH_URL = new URL("./engine_orphan_watch.ts", import.meta.url);

const live = new Map<string, FetchVM>();
/** Freed VM memory after which the process collects garbage (see {@link release}). */
const COLLECT_AFTER_BYTES = 32 * 1024 * 1024;
let freedBytes = 0;
let collecting = false;

async function handle(job: SegmentJob): Promise<SegmentReport> {
  if (job.op === "drop") {
    forget(job.taskId);
    return { ok: "dropped" };
  }
  let vm: FetchVM;
  let fromLength: number;
  let run: () => Promise<ExecutionResult>;
  let replayMs = 0;
  if (job.op === "deliver") {
    const existing = live.get(job.taskId);
    if (!existing || !existing.isLive || existing.journalLength !== job.journalLength) {
      forget(job.taskId);
      return { ok: "miss" };
    }
    vm = existing;
    fromLength = job.journalLength;
    run = () => vm.apply(job.input);
  } else if (job.op === "execute") {
    forget(job.taskId);
    vm = new FetchVM(job.options);
    fromLength = 0;
    run = () => vm.execute(job.code);
  } else {
    forget(job.taskId);
    vm = new FetchVM(job.options);
    fromLength = job.state.journal.length;
    const { state, input } = job;
    run = async () => {
      const started = performance.now();
      const restored = await vm.restore(state);
      replayMs = performance.now() - started;
      return input ? await vm.apply(input) : restored;
    };
  }
  live.delete(job.taskId);
  const started = performance.now();
  const cpuMs = () => Math.max(0, performance.now() - started - replayMs);
  try {
    const result = await run();
    const state = result.state!;
    const { journal, logs: _allLogs, ...meta } = state;
    const paused = result.type === "paused";
    const report: SegmentReport = {
      ok: true,
      type: result.type,
      pending: result.fetchRequests ?? [],
      newJournal: journal.slice(fromLength),
      logs: result.logs,
      vm: meta satisfies VMStateMeta,
      cpuMs: cpuMs(),
      vmBytes: paused ? vm.memoryBytes : 0,
    };
    if (result.result !== undefined) report.result = result.result;
    if (paused) live.set(job.taskId, vm);
    else release(vm);
    return report;
  } catch (error) {
    const { journal, logs: _allLogs, ...meta } = vm.snapshot();
    release(vm);
    const failure = error instanceof ExecutionError
      ? error
      : new ExecutionError("internal", "Error", String(error), { cause: error });
    return {
      ok: false,
      error: failure.toJSON(),
      logs: failure.logs,
      newJournal: journal.slice(fromLength),
      vm: meta satisfies VMStateMeta,
      cpuMs: cpuMs(),
    };
  }
}

/** A guest that takes the host paths of a typical segment: fetch, delivery, body, console. */
const WARM_UP_CODE = 'const r = await fetch("http://warm.up/"); console.log(await r.text())';

/**
 * Compiles the build and runs a first VM through a fetch before taking jobs, so a job's
 * time (which the server's watchdog bounds) does not include the process's one-off
 * start-up work (compiling the WebAssembly, warming the host code).
 */
async function warmUp(variant: Variant): Promise<void> {
  const vm = new FetchVM({ variant });
  try {
    const paused = await vm.execute(WARM_UP_CODE);
    const id = paused.fetchRequest?.id;
    if (id) {
      await vm.deliver({ id, success: true, status: 200, headers: {}, data: "ok", url: "" });
    }
  } catch {
    // A failure here shows again, and is reported, in the first job.
  } finally {
    vm.dispose();
  }
}

function forget(taskId: string): void {
  const vm = live.get(taskId);
  if (!vm) return;
  live.delete(taskId);
  release(vm);
}

/**
 * Disposes `vm`, and once VMs holding {@link COLLECT_AFTER_BYTES} in all have been freed,
 * runs the garbage collector (soon, after the report): a freed VM's memory goes back to
 * the system only when its WebAssembly instance is collected, which V8 otherwise delays.
 */
function release(vm: FetchVM): void {
  freedBytes += vm.memoryBytes;
  vm.dispose();
  if (freedBytes < COLLECT_AFTER_BYTES || collecting) return;
  collecting = true;
  setTimeout(() => {
    collecting = false;
    freedBytes = 0;
    (globalThis as { gc?: () => void }).gc?.();
  }, 0);
}

if (import.meta.main) {
  new Worker(ORPHAN_WATCH_URL, { type: "module" }).postMessage(Deno.ppid);
  await warmUp(Deno.args[0] === "sync" ? "sync" : "asyncify");
  const out = Deno.stdout.writable.getWriter();
  await out.write(encodeFrame({ ready: true } satisfies ReadyMessage));
  for await (const message of readFrames(Deno.stdin.readable)) {
    const { seq, job } = message as JobMessage;
    const report = await handle(job);
    let frame: Uint8Array;
    try {
      frame = encodeFrame({ seq, report } satisfies ReportMessage);
    } catch (error) {
      // The guest's data cannot be encoded (e.g. nested too deeply): fail the job alone.
      frame = encodeFrame(
        {
          seq,
          report: {
            ok: false,
            error: {
              kind: "limit",
              name: "LimitError",
              message: `The task's data cannot be handed to the server: ${String(error)}`,
            },
            logs: [],
            cpuMs: 0,
          },
        } satisfies ReportMessage,
      );
    }
    await out.write(frame);
  }
  Deno.exit(0);
}
