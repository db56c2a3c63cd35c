/**
 * Retention and the task index through real server processes: the sweep of finished tasks
 * older than RETAIN_FINISHED, listings that survive restarts (graceful and SIGKILL), and a
 * SIGKILL in the middle of a sweep, after which every task is whole or gone.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { FileTaskStore } from "../lib/store/file_task_store.ts";
import type { TaskView } from "../lib/service/task_types.ts";
import { type ServerProcess, startServer, waitFor } from "../testing/server_process.ts";
import { logEvent, makeRecord } from "./task_store_contract.ts";

/** Runs `fn` with a new temporary states directory, removed afterwards. */
async function withStatesDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-retention-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Which of the task's two files are on disk. */
async function filesOf(dir: string, id: string): Promise<[boolean, boolean]> {
  return [await exists(join(dir, `${id}.json`)), await exists(join(dir, `${id}.journal.jsonl`))];
}

interface Page {
  tasks: TaskView[];
  nextCursor: string | null;
}

/** The ids of every page of `GET /status?<query>`, following `nextCursor`. */
async function pages(server: ServerProcess, query: string): Promise<string[][]> {
  const all: string[][] = [];
  let cursor: string | null = null;
  do {
    const path = `/status?${query}${cursor === null ? "" : `&cursor=${cursor}`}`;
    const answer = await server.request(path);
    assertEquals(answer.status, 200, answer.text);
    const page = answer.body as Page;
    all.push(page.tasks.map((task) => task.id));
    cursor = page.nextCursor;
  } while (cursor !== null);
  return all;
}

const PAUSING = `const r = await fetch("https://api.example.test/x"); (await r.json()).v`;

Deno.test("the retention sweep removes finished tasks older than RETAIN_FINISHED with their files, and keeps the others", async () => {
  await using server = await startServer({
    env: { RETAIN_FINISHED: "1500ms", AUTO_FETCH: "false" },
  });
  const dir = server.statesDir;
  const done = await server.createTask({ id: "done", code: "6 * 7" });
  const failed = await server.createTask({ id: "failed", code: "null.x" });
  const paused = await server.createTask({ id: "paused", code: PAUSING });
  assertEquals([done.status, failed.status, paused.status], ["completed", "error", "paused"]);
  for (const id of ["done", "failed", "paused"]) assertEquals(await filesOf(dir, id), [true, true]);

  await waitFor(async () => (await server.request("/status?id=done")).status === 404, {
    timeoutMs: 10_000,
    message: "the completed task to be removed",
  });
  await waitFor(async () => (await server.request("/status?id=failed")).status === 404, {
    timeoutMs: 10_000,
    message: "the failed task to be removed",
  });
  assertEquals(await filesOf(dir, "done"), [false, false]);
  assertEquals(await filesOf(dir, "failed"), [false, false]);
  assertEquals(await pages(server, "limit=10"), [["paused"]]);
  assertEquals((await server.task("paused")).status, "paused");
  assertEquals(await filesOf(dir, "paused"), [true, true]);
  const health = (await server.request("/health")).body as { tasks: Record<string, number> };
  assertEquals(health.tasks, { running: 0, paused: 1, completed: 0, error: 0, cancelled: 0 });
  // A removed task's id can be used again.
  assertEquals((await server.createTask({ id: "done", code: "1" })).result, 1);
});

Deno.test("a restart, graceful or SIGKILL, keeps every listing page of hundreds of tasks", async () => {
  await withStatesDir(async (dir) => {
    const env = { AUTO_FETCH: "false" };
    const queries = [
      "limit=40",
      "limit=75&order=newest",
      "status=paused&limit=30",
      "status=completed,error&order=newest&limit=50",
      "name=batch-2&limit=20",
    ];
    let expected: string[][][];
    const first = await startServer({ statesDir: dir, env });
    try {
      for (let i = 0; i < 240; i++) {
        const code = i % 3 === 0 ? PAUSING : i % 3 === 1 ? `${i}` : "null.x";
        await first.createTask({
          id: `t${String(i).padStart(3, "0")}`,
          name: `batch-${i % 4}`,
          code,
        });
      }
      expected = await Promise.all(queries.map((query) => pages(first, query)));
      assertEquals(expected[0]!.flat().length, 240);
      assertEquals(expected[2]!.flat().length, 80);
      assertEquals(expected[4]!.flat().length, 60);
      assertEquals((await first.stop()).code, 0);
    } finally {
      await first.close();
    }
    for (const stop of ["graceful", "SIGKILL"] as const) {
      const again = await startServer({ statesDir: dir, env });
      try {
        const actual = await Promise.all(queries.map((query) => pages(again, query)));
        assertEquals(actual, expected, `after a ${stop} restart`);
        if (stop === "graceful") assertEquals((await again.stop()).code, 0);
        else await again.kill();
      } finally {
        await again.close();
      }
    }
  });
});

Deno.test("a SIGKILL during a retention sweep leaves every task whole or gone, never half removed", async () => {
  await withStatesDir(async (dir) => {
    const count = 1500;
    const ids = Array.from({ length: count }, (_, i) => `old-${String(i).padStart(4, "0")}`);
    // Tasks finished long ago, written as the server writes them.
    const store = new FileTaskStore(dir, { fsync: false });
    await store.open();
    for (const [i, id] of ids.entries()) {
      await store.save(makeRecord(id, { status: "completed", result: i }), [logEvent(id)]);
    }
    await store.close();

    const sweeping = await startServer({ statesDir: dir, env: { RETAIN_FINISHED: "1d" } });
    let left: number;
    try {
      await waitFor(async () => {
        const health = (await sweeping.request("/health")).body as {
          tasks: Record<string, number>;
        };
        left = health.tasks.completed!;
        return left < count;
      }, { timeoutMs: 20_000, intervalMs: 5, message: "the sweep to start" });
      await sweeping.kill();
    } finally {
      await sweeping.close();
    }

    const after = await startServer({ statesDir: dir, env: { RETAIN_FINISHED: "forever" } });
    try {
      const listed = new Set((await pages(after, "limit=10000")).flat());
      assert(listed.size > 0 && listed.size < count, `killed mid-sweep: ${listed.size} left`);
      for (const id of ids) {
        const answer = await after.request(`/status?id=${id}`);
        if (listed.has(id)) {
          assertEquals(answer.status, 200, `${id}: ${answer.text}`);
          const task = (answer.body as { task: TaskView & { logs: { message: string }[] } }).task;
          assertEquals([task.status, task.logs.map((line) => line.message)], ["completed", [id]]);
          assertEquals(await filesOf(dir, id), [true, true], id);
        } else {
          assertEquals(answer.status, 404, `${id}: ${answer.text}`);
        }
      }
      // The removals the kill interrupted were completed before the server served.
      await waitFor(async () => {
        for (const id of ids) {
          if (!listed.has(id) && (await filesOf(dir, id)).some(Boolean)) return false;
        }
        return true;
      }, { timeoutMs: 10_000, message: "the files of removed tasks to be gone" });
      const health = (await after.request("/health")).body as { tasks: Record<string, number> };
      assertEquals(health.tasks.completed, listed.size);
    } finally {
      await after.close();
    }
  });
});
