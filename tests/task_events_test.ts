/** Tests of the task event hub: order, ring, resume ids, waiting and closing. */
import { assertEquals, assertStrictEquals } from "@std/assert";
import { isFinishedStatus, TaskEventHub, type TaskTransition } from "../lib/service/task_events.ts";
import type { TaskView } from "../lib/service/task_types.ts";

function view(id: string, status: TaskView["status"]): TaskView {
  const at = "2026-01-01T00:00:00.000Z";
  return { id, name: id, status, pauseCount: 0, createdAt: at, updatedAt: at };
}

Deno.test("TaskEventHub hands every event to listeners in order with consecutive seqs", () => {
  const hub = new TaskEventHub();
  const seen: TaskTransition[] = [];
  const stop = hub.subscribe((event) => seen.push(event));
  hub.publish("created", view("a", "running"));
  hub.publish("paused", view("a", "paused"));
  stop();
  hub.publish("resumed", view("a", "running"));
  assertEquals(seen.map((e) => [e.seq, e.type, e.taskId, e.status]), [
    [1, "created", "a", "running"],
    [2, "paused", "a", "paused"],
  ]);
  assertEquals(seen[0]!.id, `${hub.boot}-1`);
  assertEquals(hub.lastSeq, 3);
});

Deno.test("TaskEventHub.since() replays what follows an id, and the whole ring for a foreign id", () => {
  const hub = new TaskEventHub({ ringSize: 3 });
  for (let i = 0; i < 5; i++) hub.publish("paused", view(`t${i}`, "paused"));
  assertEquals(hub.since(`${hub.boot}-3`).map((e) => e.seq), [4, 5]);
  assertEquals(hub.since(`${hub.boot}-5`), []);
  assertEquals(hub.since("zzzz-1").map((e) => e.seq), [3, 4, 5]);
  assertEquals(hub.since("not an id").map((e) => e.seq), [3, 4, 5]);
  assertEquals(hub.since(null).map((e) => e.seq), [3, 4, 5]);
});

Deno.test("TaskEventHub keeps publishing when a listener throws", () => {
  const errors: unknown[] = [];
  const hub = new TaskEventHub({ onListenerError: (error) => errors.push(error) });
  const seen: string[] = [];
  hub.subscribe(() => {
    throw new Error("boom");
  });
  hub.subscribe((event) => seen.push(event.taskId));
  hub.publish("created", view("a", "running"));
  assertEquals(seen, ["a"]);
  assertEquals(errors.length, 1);
});

Deno.test("TaskEventHub.next() resolves with the first match, or null on timeout and close", async () => {
  const hub = new TaskEventHub();
  const waiting = hub.next((e) => e.taskId === "b", { timeoutMs: 10_000 });
  hub.publish("completed", view("a", "completed"));
  hub.publish("completed", view("b", "completed"));
  assertEquals((await waiting)?.taskId, "b");
  assertStrictEquals(await hub.next(() => true, { timeoutMs: 1 }), null);
  const aborted = new AbortController();
  const pending = hub.next(() => true, { timeoutMs: 10_000, signal: aborted.signal });
  aborted.abort();
  assertStrictEquals(await pending, null);
  const closing = hub.next(() => true, { timeoutMs: 10_000 });
  let closed = false;
  hub.onClose(() => closed = true);
  hub.close();
  assertStrictEquals(await closing, null);
  assertEquals(closed, true);
  assertStrictEquals(await hub.next(() => true, { timeoutMs: 10_000 }), null);
});

Deno.test("isFinishedStatus() is true for completed, error and cancelled only", () => {
  assertEquals(
    ["running", "paused", "completed", "error", "cancelled"].map(isFinishedStatus),
    [false, false, true, true, true],
  );
});
