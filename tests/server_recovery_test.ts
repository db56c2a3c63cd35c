/**
 * End-to-end recovery tests of the real server process: SIGKILL with a fetch in flight, in
 * the middle of a resumed segment and during a new task's first segment, corrupt files in
 * STATES_DIR, a CPU-bound task beside the rest of the server, and a graceful SIGTERM. A restarted server reuses the states
 * directory and the port (so its CALL_ENDPOINT is the same).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import type { TaskRecord, TaskView } from "../lib/service/task_types.ts";
import { freePort, startServer, waitFor } from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";

const lit = (value: unknown) => JSON.stringify(value);

/** The task record as saved in `dir`. */
async function readRecord(dir: string, id: string): Promise<TaskRecord> {
  return JSON.parse(await Deno.readTextFile(join(dir, `${id}.json`))) as TaskRecord;
}

/** Runs `fn` with a new temporary states directory, removed afterwards. */
async function withStatesDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-recovery-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Iterations of the busy loop: about 1.5 s of QuickJS time on a typical machine. */
const SPIN_ITERATIONS = 8_000_000;

/** What the spinning code computes, in plain JavaScript. */
function spinResult(value: number): number {
  let x = 0;
  for (let i = 0; i < SPIN_ITERATIONS; i++) x = (x + i * value) % 1_000_003;
  return x;
}

Deno.test("SIGKILL with a fetch in flight: after a restart the request is sent again with the same Idempotency-Key and the task completes as if uninterrupted", async () => {
  const upstream = startUpstream();
  try {
    await withStatesDir(async (dir) => {
      const port = freePort();
      const code = `const response = await fetch(${lit(upstream.url("/hold/in-flight"))});
const body = await response.json();
console.log("held value " + body.value);
({ value: body.value, doubled: body.value * 2, status: response.status })`;

      const first = await startServer({ statesDir: dir, port });
      let taskId: string;
      try {
        const task = await first.createTask({ id: "in-flight", code });
        taskId = task.id;
        assertEquals(task.status, "paused");
        await upstream.waitForRequests("/hold/in-flight", 1);
        const status = await first.kill();
        assertEquals(status.signal, "SIGKILL");
      } finally {
        await first.close();
      }
      const onDisk = await readRecord(dir, taskId);
      assertEquals(onDisk.status, "paused");
      assertEquals(onDisk.pending.length, 1);

      const second = await startServer({ statesDir: dir, port });
      try {
        const [sent, resent] = await upstream.waitForRequests("/hold/in-flight", 2);
        assertEquals(resent!.headers["idempotency-key"], sent!.headers["idempotency-key"]);
        assertEquals(resent!.headers["idempotency-key"], onDisk.pending[0]!.id);
        upstream.release("in-flight", 21);
        const done = await second.waitForTask(taskId);
        assertEquals(done.status, "completed");

        // The same code, uninterrupted (the hold is released now, so it answers at once).
        const reference = await second.createTask({ code });
        const expected = await second.waitForTask(reference.id);
        assertEquals(expected.result, { value: 21, doubled: 42, status: 200 });
        assertEquals(done.result, expected.result);
        assertEquals(done.pauseCount, expected.pauseCount);
        assertEquals(done.logs.map((l) => l.message), expected.logs.map((l) => l.message));
        assertEquals(done.fetches.length, 1);
        assertEquals(done.fetches[0]!.id, onDisk.pending[0]!.id);
        assertEquals(done.fetches[0]!.status, 200);
      } catch (error) {
        console.error(first.tail(), second.tail());
        throw error;
      } finally {
        await second.close();
      }
    });
  } finally {
    await upstream.close();
  }
});

Deno.test("SIGKILL in the middle of a run segment: after a restart the task completes correctly", async () => {
  const upstream = startUpstream();
  try {
    await withStatesDir(async (dir) => {
      const port = freePort();
      const env = { TIME_LIMIT_MS: "60000" };
      // The loop counts iterations; Date is frozen within a segment, so it cannot time it.
      const code = `const body = await (await fetch(${lit(upstream.url("/number/707"))})).json();
let x = 0;
for (let i = 0; i < ${SPIN_ITERATIONS}; i++) x = (x + i * body.value) % 1000003;
({ value: body.value, x })`;

      const first = await startServer({ statesDir: dir, port, env });
      let taskId: string;
      try {
        const task = await first.createTask({ id: "mid-segment", code });
        taskId = task.id;
        assertEquals(task.status, "paused");
        // The upstream has answered: the response is on its way to /call. Once the task
        // shows `running`, the spinning segment has started; kill it there.
        await waitFor(() => upstream.requestsTo("/number/707")[0]?.answered, {
          message: "the upstream to answer the fetch",
        });
        await waitFor(async () => (await first.task(taskId)).status === "running", {
          intervalMs: 5,
          message: "the resumed segment to run",
        });
        await first.kill();
      } catch (error) {
        console.error(first.tail());
        throw error;
      } finally {
        await first.close();
      }
      assert(
        !first.logs().some((line) => line.msg === "task completed"),
        "the server was killed before the segment ended",
      );
      const onDisk = await readRecord(dir, taskId);
      assertEquals(onDisk.status, "paused", "the segment's outcome was never saved");

      const second = await startServer({ statesDir: dir, port, env });
      try {
        const done = await second.waitForTask(taskId, ["completed", "error"], 30_000);
        assertEquals(done.status, "completed");
        assertEquals(done.result, { value: 707, x: spinResult(707) });
        assertEquals(done.pauseCount, 1);
        const requests = upstream.requestsTo("/number/707");
        assertEquals(requests.length, 2, "the fetch was performed again after the restart");
        assertEquals(
          requests[1]!.headers["idempotency-key"],
          requests[0]!.headers["idempotency-key"],
        );
      } catch (error) {
        console.error(second.tail());
        throw error;
      } finally {
        await second.close();
      }
    });
  } finally {
    await upstream.close();
  }
});

Deno.test("SIGKILL during a new task's first segment: after a restart the task runs again from its code and completes", async () => {
  const upstream = startUpstream();
  try {
    await withStatesDir(async (dir) => {
      const port = freePort();
      const env = { TIME_LIMIT_MS: "60000" };
      const code = `let x = 0;
for (let i = 0; i < ${SPIN_ITERATIONS}; i++) x = (x + i * 808) % 1000003;
const body = await (await fetch(${lit(upstream.url("/number/808"))})).json();
({ value: body.value, x })`;

      const first = await startServer({ statesDir: dir, port, env });
      try {
        const creating = first.request("/task", { body: { id: "first-segment", code } }).then(
          (res) => `answered ${res.status}`,
          () => "cut off",
        );
        // "task created" is logged once the task is saved as running, before its code runs.
        await first.waitForLog((line) =>
          line.msg === "task created" && line.taskId === "first-segment"
        );
        await waitFor(async () => (await first.task("first-segment")).status === "running", {
          message: "the first segment to run",
        });
        await first.kill();
        assertEquals(await creating, "cut off", "POST /task never answered");
      } catch (error) {
        console.error(first.tail());
        throw error;
      } finally {
        await first.close();
      }
      assertEquals((await readRecord(dir, "first-segment")).status, "running");
      assertEquals(upstream.requestsTo("/number/808").length, 0);

      const second = await startServer({ statesDir: dir, port, env });
      try {
        const done = await second.waitForTask("first-segment", ["completed", "error"], 30_000);
        assertEquals(done.status, "completed");
        assertEquals(done.result, { value: 808, x: spinResult(808) });
        assertEquals(done.pauseCount, 1);
        assertEquals(upstream.requestsTo("/number/808").length, 1);
        assert(second.logs().some((line) => line.msg === "task recovering"));
      } catch (error) {
        console.error(second.tail());
        throw error;
      } finally {
        await second.close();
      }
    });
  } finally {
    await upstream.close();
  }
});

Deno.test("corrupt files in STATES_DIR are skipped with a warning and the other tasks load and complete", async () => {
  await withStatesDir(async (dir) => {
    const port = freePort();
    const env = { AUTO_FETCH: "false" };
    const code = `const body = await (await fetch("https://api.example.test/v")).json();
body.value + 1`;
    const first = await startServer({ statesDir: dir, port, env });
    let paused: TaskView;
    try {
      paused = await first.createTask({ id: "survivor", code });
      assertEquals(paused.status, "paused");
      assertEquals((await first.stop()).code, 0);
    } finally {
      await first.close();
    }
    await Deno.writeTextFile(join(dir, "garbage.json"), "{ this is not JSON");
    // A valid record under the wrong name: its id says "survivor", its file name "x".
    await Deno.copyFile(join(dir, "survivor.json"), join(dir, "x.json"));
    // Files added behind the server's back are seen when the index is rebuilt from the
    // records, as it is when the index file is missing.
    await Deno.remove(join(dir, "_index.tsv"));

    const second = await startServer({ statesDir: dir, port, env });
    try {
      const skipped = new Set<string>();
      await waitFor(() => {
        for (const line of second.logs()) {
          if (line.level === "warn" && line.msg === "state file skipped") {
            skipped.add(String(line.file));
          }
        }
        return skipped.size >= 2;
      }, { message: () => `two "state file skipped" warnings, got ${[...skipped]}` });
      assertEquals([...skipped].sort(), ["garbage.json", "x.json"]);
      const listening = await second.waitForLog((line) => line.msg === "listening");
      assertEquals(listening.tasks, 1);
      assertEquals(listening.skipped, 2);

      const list = await second.request("/status");
      assertEquals((list.body as { tasks: TaskView[] }).tasks.map((task) => task.id), ["survivor"]);
      const delivered = await second.call("survivor", {
        id: paused.fetchRequest!.id,
        success: true,
        status: 200,
        data: { value: 41 },
      });
      assertEquals(delivered.status, 200, delivered.text);
      assertEquals((delivered.body as { task: TaskView }).task.result, 42);
      assertEquals((await second.task("survivor")).status, "completed");

      const fresh = await second.createTask({ code: "6 * 7" });
      assertEquals(fresh.result, 42);
    } catch (error) {
      console.error(second.tail());
      throw error;
    } finally {
      await second.close();
    }
  });
});

Deno.test("a CPU-bound task does not block GET /status nor another task, and ends in error with kind timeout", async () => {
  const upstream = startUpstream();
  const server = await startServer({ env: { TIME_LIMIT_MS: "3000", WORKERS: "2" } });
  try {
    const events: string[] = [];
    const spinning = server.request("/task", {
      body: { id: "spinner", code: "while (true) {}" },
    }).then((res) => {
      events.push("spinner answered");
      return res;
    });
    try {
      await waitFor(async () => (await server.request("/status?id=spinner")).status === 200, {
        intervalMs: 5,
        message: "the spinning task to exist",
      });
      for (let i = 0; i < 5; i++) {
        const res = await server.request(i % 2 === 0 ? "/status?id=spinner" : "/status");
        assertEquals(res.status, 200);
        if (i === 0) {
          assertEquals((res.body as { task: TaskView }).task.status, "running");
        }
        events.push(`status ${i}`);
      }
      const other = await server.createTask({
        code: `const body = await (await fetch(${lit(upstream.url("/number/5"))})).json();
body.value * 2`,
      });
      const done = await server.waitForTask(other.id);
      assertEquals(done.status, "completed");
      assertEquals(done.result, 10);
      events.push("other task completed");
    } finally {
      const res = await spinning;
      assertEquals(res.status, 200, res.text);
      const task = (res.body as { task: TaskView }).task;
      assertEquals(task.status, "error");
      assertEquals(task.error?.kind, "timeout");
    }
    assertEquals(events, [
      "status 0",
      "status 1",
      "status 2",
      "status 3",
      "status 4",
      "other task completed",
      "spinner answered",
    ]);
    const final = await server.task("spinner");
    assertEquals(final.status, "error");
    assertEquals(final.error?.kind, "timeout");
    assertMatch(final.error?.message ?? "", /\S/);
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    await server.close();
    await upstream.close();
  }
});

Deno.test("graceful SIGTERM: a request still running at SHUTDOWN_GRACE_MS stays pending on disk, the process exits 0, and it is sent again after a restart", async () => {
  const upstream = startUpstream();
  try {
    await withStatesDir(async (dir) => {
      const port = freePort();
      const code = `const body = await (await fetch(${lit(upstream.url("/hold/sigterm"))})).json();
"resumed with " + body.value`;
      const first = await startServer({
        statesDir: dir,
        port,
        env: { SHUTDOWN_GRACE_MS: "200" },
      });
      let taskId: string;
      try {
        const task = await first.createTask({ code });
        taskId = task.id;
        await upstream.waitForRequests("/hold/sigterm", 1);
        const status = await first.stop();
        assertEquals(status.code, 0);
        assertEquals(status.success, true);
        assert(first.logs().some((line) => line.msg === "stopped"), "it logged its stop");
      } catch (error) {
        console.error(first.tail());
        throw error;
      } finally {
        await first.close();
      }
      const recordText = await Deno.readTextFile(join(dir, `${taskId}.json`));
      assertMatch(recordText, /^\{\n {2}"/, "the record is pretty-printed JSON");
      const onDisk = JSON.parse(recordText) as TaskRecord;
      assertEquals(onDisk.status, "paused");
      assertEquals(onDisk.pending.length, 1);
      const journal = await Deno.readTextFile(join(dir, `${taskId}.journal.jsonl`));
      const events = journal.trim().split("\n").map((line) => JSON.parse(line));
      const requested = events.filter((event) => event.type === "request");
      assertEquals(requested.map((event) => event.request.id), [onDisk.pending[0]!.id]);

      const second = await startServer({ statesDir: dir, port });
      try {
        assertEquals((await second.task(taskId)).status, "paused");
        await upstream.waitForRequests("/hold/sigterm", 2);
        upstream.release("sigterm", "ok");
        const done = await second.waitForTask(taskId);
        assertEquals(done.status, "completed");
        assertEquals(done.result, "resumed with ok");
        assertEquals(done.pauseCount, 1);
      } catch (error) {
        console.error(second.tail());
        throw error;
      } finally {
        await second.close();
      }
    });
  } finally {
    await upstream.close();
  }
});

Deno.test("graceful SIGTERM: a request already sent finishes within the grace and is delivered, the next one waits for the restart, and none is sent twice", async () => {
  const upstream = startUpstream();
  try {
    await withStatesDir(async (dir) => {
      const port = freePort();
      const code = `const slow = await (await fetch(${lit(upstream.url("/delay/700"))})).json();
const next = await (await fetch(${lit(upstream.url("/echo?after=restart"))})).json();
[slow.delayed, next.query.after]`;
      const first = await startServer({
        statesDir: dir,
        port,
        env: { SHUTDOWN_GRACE_MS: "10000" },
      });
      let taskId: string;
      try {
        taskId = (await first.createTask({ code })).id;
        await upstream.waitForRequests("/delay/700", 1);
        assertEquals((await first.stop()).code, 0);
      } catch (error) {
        console.error(first.tail());
        throw error;
      } finally {
        await first.close();
      }
      const onDisk = JSON.parse(await Deno.readTextFile(join(dir, `${taskId}.json`))) as TaskRecord;
      assertEquals(onDisk.status, "paused");
      assertEquals(onDisk.pauseCount, 2, "the slow response was delivered before the stop");
      assertEquals(onDisk.pending.map((request) => request.url), [
        upstream.url("/echo?after=restart"),
      ]);
      assertEquals(upstream.requestsTo("/echo").length, 0);

      const second = await startServer({ statesDir: dir, port });
      try {
        const done = await second.waitForTask(taskId);
        assertEquals(done.status, "completed");
        assertEquals(done.result, [700, "restart"]);
      } catch (error) {
        console.error(second.tail());
        throw error;
      } finally {
        await second.close();
      }
      assertEquals(upstream.requestsTo("/delay/700").length, 1, "the slow request went once");
      assertEquals(upstream.requestsTo("/echo").length, 1);
    });
  } finally {
    await upstream.close();
  }
});
