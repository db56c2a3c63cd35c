/**
 * Messages between the server and its engine processes, sent as JSON frames (see
 * `frames.ts`) over the process's stdin and stdout: any message defined here crosses as it
 * is. An engine process keeps the live {@link FetchVM} of the tasks it ran, so a hot resume
 * sends only the response; a report carries only what is new (journal entries and log
 * lines of the segment), so the cost of a segment does not grow with the task's history.
 *
 * @module
 */
import type {
  EngineOptions,
  ExecutionErrorJson,
  FetchRequest,
  JournalEntry,
  LogEntry,
  ResumeInput,
  VMState,
} from "../engine/mod.ts";

/** A paused or completed execution's engine state without its journal and logs. */
export type VMStateMeta = Omit<VMState, "journal" | "logs">;

/** What the server asks a worker to do. */
export type SegmentJob =
  /** Run new code in a new VM. */
  | { op: "execute"; taskId: string; code: string; options: EngineOptions }
  /**
   * Give `input` (a response, the due timers, a signal) to the live VM if it is at
   * `journalLength`; otherwise answer `miss`.
   */
  | { op: "deliver"; taskId: string; journalLength: number; input: ResumeInput }
  /** Replay `state` in a new VM, then give it `input` (or just report, if absent). */
  | {
    op: "resume";
    taskId: string;
    state: VMState;
    input?: ResumeInput;
    options: EngineOptions;
  }
  /** Forget the live VM of a task. */
  | { op: "drop"; taskId: string };

/** A segment that ended in a pause or a completion. */
export interface SegmentSuccess {
  ok: true;
  type: "completed" | "paused";
  result?: unknown;
  /** Every pending request. */
  pending: FetchRequest[];
  /** Journal entries added by this job (after `journalLength` of the job). */
  newJournal: JournalEntry[];
  /** Console lines of this job. */
  logs: LogEntry[];
  vm: VMStateMeta;
  /** Time the job ran the guest, ms, replaying its journal excluded. */
  cpuMs: number;
  /** Bytes of the live VM the process keeps for the task (0 when it keeps none). */
  vmBytes: number;
}

/** A segment that failed. */
export interface SegmentFailure {
  ok: false;
  error: ExecutionErrorJson;
  logs: LogEntry[];
  /** Journal entries the segment added before it failed (the response it began with...). */
  newJournal?: JournalEntry[];
  /** The engine state at the failure, when the engine process still had it. */
  vm?: VMStateMeta;
  /** Time the job ran the guest, ms, replaying its journal excluded. */
  cpuMs: number;
  /**
   * Set when the segment did not end but was cut short by the server stopping: its outcome
   * is unknown, and the task's previous state stands (it runs again after the restart).
   */
  interrupted?: true;
}

/** The worker's answer to a job. */
export type SegmentReport = SegmentSuccess | SegmentFailure | { ok: "miss" } | { ok: "dropped" };

/** Envelope of a job, with the id its report is matched to. */
export interface JobMessage {
  seq: number;
  job: SegmentJob;
}

/** Envelope of a report. */
export interface ReportMessage {
  seq: number;
  report: SegmentReport;
}

/** Sent once by an engine process when it is ready for jobs. */
export interface ReadyMessage {
  ready: true;
}

/** What an engine process sends. */
export type EngineMessage = ReadyMessage | ReportMessage;
