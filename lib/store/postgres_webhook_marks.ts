/**
 * {@link WebhookMarks} in the PostgreSQL database of a cluster, so that a replica starting
 * finds the deliveries its peers settled and does not send them again.
 *
 * @module
 */
import type { WebhookMark, WebhookMarks } from "./webhook_marks.ts";
import type { PostgresTaskStore } from "./postgres_task_store.ts";

/** The marks of settled webhook deliveries, one row per task. */
export class PostgresWebhookMarks implements WebhookMarks {
  readonly #store: PostgresTaskStore;

  constructor(store: PostgresTaskStore) {
    this.#store = store;
  }

  /** Every mark, by task id. */
  loadAll(): Promise<Map<string, WebhookMark>> {
    return this.#store.run("read the webhook marks", async (sql) => {
      const rows = await sql<{ task_id: string; mark: string }[]>`
        SELECT task_id, mark FROM flowstate_webhook_marks`;
      return new Map(rows.map((row) => [row.task_id, JSON.parse(row.mark)]));
    });
  }

  /** Records the mark of `taskId`. */
  put(taskId: string, mark: WebhookMark): Promise<void> {
    return this.#store.run("record a webhook mark", async (sql) => {
      const text = JSON.stringify(mark);
      await sql`
        INSERT INTO flowstate_webhook_marks (task_id, mark) VALUES (${taskId}, ${text})
        ON CONFLICT (task_id) DO UPDATE SET mark = excluded.mark`;
    });
  }

  /** Forgets the mark of `taskId`. */
  remove(taskId: string): Promise<void> {
    return this.#store.run("forget a webhook mark", async (sql) => {
      await sql`DELETE FROM flowstate_webhook_marks WHERE task_id = ${taskId}`;
    });
  }
}
