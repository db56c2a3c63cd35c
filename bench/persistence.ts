/**
 * Scenario 5, persistence growth: the cost of `FileTaskStore.save` for pause #1, #100 and
 * #1,000 of one task, with the records and journal events the server writes (the record
 * with its engine metadata and pending request; the journal events of each segment: the
 * previous fetch's response and the next request).
 *
 * Several tasks advance in lockstep; pauses #100 to #104 and #1,000 to #1,004 of each are
 * measured. The baseline, pause #1, is measured on a brand-new task right before every
 * measurement of a later pause, so it is interleaved with them rather than all taken at
 * the start.
 *
 * @module
 */
import { FileTaskStore } from "../lib/store/file_task_store.ts";
import type { TaskEvent, TaskRecord } from "../lib/service/task_types.ts";
import type { FetchRequest, JournalEntry } from "../lib/engine/types.ts";
import { type BenchContext, tempDir } from "./context.ts";
import { formatBytes, type Row, type ScenarioResult } from "./report.ts";
import { summarize } from "./stats.ts";

const INDICES = [1, 100, 1000] as const;
/** Consecutive pauses measured from each index after the first. */
const WINDOW = 5;
const CODE = [
  "let sum = 0;",
  "for (let i = 0; i < 1000; i++) {",
  '  const response = await fetch("http://127.0.0.1:9/x?i=" + i);',
  "  sum += (await response.json()).n;",
  "}",
  "sum",
].join("\n");

/** One task being saved pause after pause. */
interface Subject {
  record: TaskRecord;
  /** Number of pauses saved so far. */
  pauses: number;
}

function request(taskId: string, index: number): FetchRequest {
  return {
    id: `fetch_${Date.now()}_${index}_${taskId.slice(-8)}`,
    url: `http://127.0.0.1:9/x?i=${index}`,
    options: { method: "GET", headers: { accept: "application/json" } },
    timestamp: Date.now(),
  };
}

async function newSubject(store: FileTaskStore, id: string): Promise<Subject> {
  const now = new Date().toISOString();
  const record: TaskRecord = {
    id,
    name: id,
    status: "running",
    pauseCount: 0,
    createdAt: now,
    updatedAt: now,
    code: CODE,
    autoFetch: true,
    pending: [],
    journalLength: 0,
    logCount: 0,
    eventsBytes: 0,
  };
  return { record: await store.save(record, []), pauses: 0 };
}

/** Saves the subject's next pause; returns the time `save` took, ms. */
async function savePause(store: FileTaskStore, subject: Subject): Promise<number> {
  const { record } = subject;
  const index = subject.pauses; // Index of the fetch this pause waits on.
  const events: TaskEvent[] = [];
  if (index === 0) {
    events.push({ type: "eval", step: 0, at: Date.now() } satisfies JournalEntry);
  } else {
    const previous = record.pending[0]!;
    events.push({
      type: "response",
      step: 0,
      at: Date.now(),
      response: {
        id: previous.id,
        success: true,
        status: 200,
        statusText: "OK",
        headers: { "content-type": "application/json", "content-length": "98" },
        data: { n: index - 1, ok: true, source: "upstream", tags: ["a", "b", "c"] },
        url: previous.url,
        timestamp: Date.now(),
      },
    });
  }
  const next = request(record.id, index);
  events.push({ type: "request", step: 0, index, request: next });
  const updated: TaskRecord = {
    ...record,
    status: "paused",
    pauseCount: record.pauseCount + 1,
    updatedAt: new Date().toISOString(),
    pending: [next],
    journalLength: record.journalLength + events.length,
    vm: {
      id: record.id,
      code: CODE,
      variables: { sum: ((index - 1) * index) / 2 },
      timestamp: Date.now(),
      version: 1,
      variant: "asyncify",
      seed: 123456789,
      globals: {},
      pending: [next.id],
      droppedLogs: 0,
    },
  };
  const start = performance.now();
  subject.record = await store.save(updated, events);
  const elapsed = performance.now() - start;
  subject.pauses++;
  return elapsed;
}

/** Runs scenario 5. */
export async function persistence(ctx: BenchContext): Promise<ScenarioResult> {
  const rows: Row[] = [];
  const metrics: Record<string, number> = {};
  const raw: Record<string, unknown> = {};
  const notes: string[] = [];
  const last = 1000 + WINDOW - 1;
  for (const fsync of [true, false]) {
    const taskCount = ctx.quick ? (fsync ? 2 : 3) : (fsync ? 8 : 16);
    const mode = fsync ? "fsync on" : "fsync off";
    const store = new FileTaskStore(await tempDir(ctx, `persist-${fsync ? "on" : "off"}`), {
      fsync,
    });
    await store.loadAll();
    const samples: Record<number, number[]> = { 1: [], 100: [], 1000: [] };
    const subjects: Subject[] = [];
    let fresh = 0;
    const baselineSample = async () => {
      const subject = await newSubject(store, `fresh-${fresh++}`);
      samples[1]!.push(await savePause(store, subject));
    };
    for (let t = 0; t < taskCount; t++) subjects.push(await newSubject(store, `task-${t}`));
    const bucket = (pause: number) =>
      pause === 1
        ? 1
        : INDICES.find((index) => index > 1 && pause >= index && pause < index + WINDOW);
    for (let pause = 1; pause <= last; pause++) {
      if (pause % 250 === 0) ctx.progress(`persistence (${mode}): pause ${pause}/${last}`);
      const index = bucket(pause);
      for (const subject of subjects) {
        if (index !== undefined && index !== 1) await baselineSample();
        const elapsed = await savePause(store, subject);
        if (index !== undefined) samples[index]!.push(elapsed);
      }
    }
    const base = summarize(samples[1]!);
    for (const index of INDICES) {
      const s = summarize(samples[index]!);
      metrics[`${fsync ? "on" : "off"}.pause${index}MedianMs`] = s.median;
      raw[`${fsync ? "on" : "off"}.pause${index}`] = s;
      if (index === 1) continue;
      rows.push({
        case: `${mode}: save of pause #${index}–${index + WINDOW - 1}`,
        unit: "ms",
        subject: s,
        baselineLabel: "pause #1",
        baseline: base,
      });
    }
    const { record } = subjects[0]!;
    notes.push(
      `${mode}: ${taskCount} tasks in lockstep; after pause #${last} the journal is ` +
        `${formatBytes(record.eventsBytes)} (${record.journalLength} events) and the record ` +
        `${formatBytes(JSON.stringify(record, null, 2).length)}.`,
    );
  }
  notes.unshift(
    "Each figure is one FileTaskStore.save (append the segment's journal events, then " +
      "commit it, then replace the readable record without a flush); pause #1 creates the journal.",
  );
  return { id: 5, key: "persistence", title: "Persistence growth", rows, notes, metrics, raw };
}
