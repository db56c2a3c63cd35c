/**
 * End-to-end: a restarted server listens before it has read its paused tasks' records and
 * takes them up in the background; a task answered before it was taken up stays as that
 * answer left it.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import type { TaskRecord } from "../lib/service/task_types.ts";
import { entryLine } from "../lib/store/index_file.ts";
import { startServer, waitFor } from "../testing/server_process.ts";

/**
 * Copies of the paused template written straight to the states directory: enough that
 * taking them up lasts longer than the first request needs.
 */
const COPIES = 20_000;

const copyId = (i: number) => `c${String(i).padStart(7, "0")}`;

Deno.test("a restart serves before its paused tasks are taken up; a task answered first is not taken back", async () => {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-startup-" });
  const env = { AUTO_FETCH: "false", FSYNC: "false" };
  const server = await startServer({ statesDir: dir, env });
  try {
    const code = `const r = await fetch("https://api.example.test/v"); (await r.json()).value + 1`;
    const template = await server.createTask({ id: "t0000000", code });
    assertEquals(template.status, "paused");
    const fetchId = template.fetchRequest!.id;
    await server.stop();

    // Copies of the paused task under other ids of the same length and at the same time
    // (listed by id), as if made before.
    const record = await Deno.readTextFile(join(dir, "t0000000.json"));
    const journal = await Deno.readTextFile(join(dir, "t0000000.journal.jsonl"));
    const parsed = JSON.parse(record) as TaskRecord;
    let lines = "";
    for (let i = 0; i < COPIES; i++) {
      const id = copyId(i);
      await Deno.writeTextFile(join(dir, `${id}.json`), record.replaceAll("t0000000", id));
      await Deno.writeTextFile(
        join(dir, `${id}.journal.jsonl`),
        journal.replaceAll("t0000000", id),
      );
      lines += entryLine({
        id,
        status: "paused",
        createdMs: Date.parse(parsed.createdAt),
        updatedMs: Date.parse(parsed.updatedAt),
        pauseCount: parsed.pauseCount,
        name: null,
        callback: false,
      });
    }
    await Deno.writeTextFile(join(dir, "_index.tsv"), lines, { append: true });

    await server.restart();
    // The newest copy is taken up last: answer it at once.
    const last = copyId(COPIES - 1);
    const answered = await server.call(last, {
      id: fetchId,
      success: true,
      status: 200,
      data: { value: 41 },
    });
    assertEquals(answered.status, 200, answered.text);
    assertEquals((answered.body as { task: { status: string } }).task.status, "completed");

    // The log holds both starts: the second one's line.
    const takenUp = () =>
      server.logs().filter((line) => line.msg === "running and paused tasks taken up");
    await waitFor(() => takenUp().length === 2, { timeoutMs: 60_000 });
    // All but the answered copy, and the template; one more should the answer have come
    // after the last copy was taken up (a machine faster than the request).
    const taken = takenUp()[1]!.tasks as number;
    assert(taken === COPIES || taken === COPIES + 1, `${taken} taken up`);
    const done = await server.task(last);
    assertEquals(done.status, "completed");
    assertEquals(done.result, 42);
    const health = await server.request("/health");
    const tasks = (health.body as { tasks: Record<string, number> }).tasks;
    assertEquals(tasks, { running: 0, paused: COPIES, completed: 1, error: 0, cancelled: 0 });
    // Another copy, taken up in the background, is answered as usual.
    const other = await server.call(copyId(0), {
      id: fetchId,
      success: true,
      status: 200,
      data: { value: 1 },
    });
    assertEquals((other.body as { task: { result: unknown } }).task.result, 2);
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
