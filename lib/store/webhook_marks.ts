/**
 * What became of each task's webhook, one small JSON file per task in a directory of its
 * own (`<STATES_DIR>/webhooks/<task id>.json`), written atomically once the delivery is
 * settled. A finished task with a `callbackUrl` and no mark still owes its webhook: that
 * is how a pending delivery survives a restart without a queue of its own (the task's
 * record, durable before `POST /task` answered, holds the URL). A crash after a delivery
 * and before its mark sends it again: delivery is at-least-once.
 *
 * @module
 */
import { ensureDir, isTempFileName, readTextOrNull, writeFileAtomic } from "./atomic_file.ts";
import { TASK_ID_PATTERN } from "./file_task_store.ts";

/** A settled delivery. */
export interface WebhookMark {
  /** `delivered` (a 2xx answer) or `failed` (every attempt used). */
  status: "delivered" | "failed";
  /** The `updatedAt` of the finished task it was for: a task run on and finished again owes a new one. */
  finishedAt: string;
  /** Attempts made. */
  attempts: number;
  /** When it was settled (ISO 8601). */
  at: string;
  /** HTTP status of the last answer, when there was one. */
  httpStatus?: number;
  /** Why the last attempt failed (failed only). */
  error?: string;
}

/** The marks of settled webhook deliveries. */
export interface WebhookMarks {
  /** Every mark, by task id. */
  loadAll(): Promise<Map<string, WebhookMark>>;
  /** Records the mark of `taskId` (replacing any earlier one). */
  put(taskId: string, mark: WebhookMark): Promise<void>;
  /** Forgets the mark of `taskId` (a deleted task); none is fine. */
  remove(taskId: string): Promise<void>;
}

/** {@link WebhookMarks} as files in `dir`. */
export class FileWebhookMarks implements WebhookMarks {
  readonly #dir: string;
  readonly #fsync: boolean;

  constructor(dir: string, options: { fsync?: boolean } = {}) {
    this.#dir = dir;
    this.#fsync = options.fsync ?? true;
  }

  async loadAll(): Promise<Map<string, WebhookMark>> {
    const marks = new Map<string, WebhookMark>();
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(this.#dir));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return marks;
      throw error;
    }
    for (const entry of entries) {
      if (!entry.isFile || !entry.name.endsWith(".json") || isTempFileName(entry.name)) continue;
      const id = entry.name.slice(0, -".json".length);
      if (!TASK_ID_PATTERN.test(id)) continue;
      const text = await readTextOrNull(`${this.#dir}/${entry.name}`);
      try {
        const mark = JSON.parse(text ?? "null") as WebhookMark | null;
        if (
          mark && (mark.status === "delivered" || mark.status === "failed") &&
          typeof mark.finishedAt === "string"
        ) {
          marks.set(id, mark);
        }
      } catch {
        // A torn mark counts as none: the delivery is made again.
      }
    }
    return marks;
  }

  async put(taskId: string, mark: WebhookMark): Promise<void> {
    if (!TASK_ID_PATTERN.test(taskId)) throw new TypeError(`Invalid task id "${taskId}"`);
    await ensureDir(this.#dir);
    await writeFileAtomic(`${this.#dir}/${taskId}.json`, JSON.stringify(mark), {
      fsync: this.#fsync,
    });
  }

  async remove(taskId: string): Promise<void> {
    if (!TASK_ID_PATTERN.test(taskId)) throw new TypeError(`Invalid task id "${taskId}"`);
    try {
      await Deno.remove(`${this.#dir}/${taskId}.json`);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}
