/**
 * Engine worker: runs task segments off the HTTP thread and keeps the live VMs of the
 * tasks it ran (least recently used beyond the cache size are disposed and replayed on
 * their next resume). Jobs arrive one at a time.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { ExecutionError, type ExecutionResult, FetchVM } from "../engine/mod.ts";
import type {
  JobMessage,
  ReportMessage,
  SegmentJob,
  SegmentReport,
  VMStateMeta,
} from "./segment_protocol.ts";

/** Default number of live VMs a worker keeps. */
const DEFAULT_LIVE_VMS = 256;

const live = new Map<string, FetchVM>();
let liveLimit = DEFAULT_LIVE_VMS;

self.onmessage = async (event: MessageEvent<JobMessage | { liveVms: number }>) => {
  const data = event.data;
  if ("liveVms" in data) {
    liveLimit = Math.max(1, data.liveVms);
    return;
  }
  const report = await handle(data.job);
  self.postMessage({ seq: data.seq, report } satisfies ReportMessage);
};

async function handle(job: SegmentJob): Promise<SegmentReport> {
  if (job.op === "drop") {
    forget(job.taskId);
    return { ok: "dropped" };
  }
  let vm: FetchVM;
  let fromLength: number;
  let run: () => Promise<ExecutionResult>;
  if (job.op === "deliver") {
    const existing = live.get(job.taskId);
    if (!existing || !existing.isLive || existing.journalLength !== job.journalLength) {
      forget(job.taskId);
      return { ok: "miss" };
    }
    vm = existing;
    fromLength = job.journalLength;
    run = () => vm.deliver(job.response);
  } else if (job.op === "execute") {
    forget(job.taskId);
    vm = new FetchVM(job.options);
    fromLength = 0;
    run = () => vm.execute(job.code);
  } else {
    forget(job.taskId);
    vm = new FetchVM(job.options);
    fromLength = job.state.journal.length;
    const { state, response } = job;
    run = () => response ? vm.resume(state, response) : vm.restore(state);
  }
  live.delete(job.taskId);
  try {
    const result = await run();
    const state = result.state!;
    const { journal, logs: _allLogs, ...meta } = state;
    const report: SegmentReport = {
      ok: true,
      type: result.type,
      pending: result.fetchRequests ?? [],
      newJournal: journal.slice(fromLength),
      logs: result.logs,
      vm: meta satisfies VMStateMeta,
    };
    if (result.result !== undefined) report.result = result.result;
    if (result.type === "paused") remember(job.taskId, vm);
    else vm.dispose();
    return report;
  } catch (error) {
    const { journal, logs: _allLogs, ...meta } = vm.snapshot();
    vm.dispose();
    const failure = error instanceof ExecutionError
      ? error
      : new ExecutionError("internal", "Error", String(error), { cause: error });
    return {
      ok: false,
      error: failure.toJSON(),
      logs: failure.logs,
      newJournal: journal.slice(fromLength),
      vm: meta satisfies VMStateMeta,
    };
  }
}

function remember(taskId: string, vm: FetchVM): void {
  live.set(taskId, vm);
  while (live.size > liveLimit) {
    const [oldest] = live.keys();
    forget(oldest!);
  }
}

function forget(taskId: string): void {
  const vm = live.get(taskId);
  if (!vm) return;
  live.delete(taskId);
  vm.dispose();
}
