/**
 * The behaviour every {@link TaskStore} must have, as a suite any store's test file runs.
 *
 * @module
 */
import { assert, assertEquals, assertNotStrictEquals, assertRejects } from "@std/assert";
import { BadRequestError } from "../lib/http_errors.ts";
import type { TaskEvent, TaskRecord, TaskStore } from "../lib/task_types.ts";

/** A fresh, empty store and how to dispose of it. */
export interface StoreFixture {
  store: TaskStore;
  cleanup(): Promise<void>;
}

/** A valid record for task `id`, with `overrides` applied. */
export function makeRecord(id: string, overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id,
    name: `Task ${id}`,
    status: "paused",
    pauseCount: 1,
    createdAt: "2025-01-01T00:00:00.000Z",
    updatedAt: "2025-01-01T00:00:01.000Z",
    code: "const r = await fetch('https://example.com'); r.status",
    input: { n: 1, tags: ["a", "b"] },
    autoFetch: true,
    journalLength: 0,
    logCount: 0,
    eventsBytes: 0,
    ...overrides,
  };
}

/** A log event whose message is `message`. */
export function logEvent(message: string, time = 1_700_000_000_000): TaskEvent {
  return { type: "log", level: "log", message, time };
}

/** A request event for request `requestId`. */
export function requestEvent(requestId: string, index = 0): TaskEvent {
  return {
    type: "request",
    step: 0,
    index,
    request: {
      id: requestId,
      url: "https://example.com/",
      options: { method: "GET" },
      timestamp: 1_700_000_000_000,
    },
  };
}

/** UTF-8 size of the journal lines of `events` (one JSON line each). */
function lineBytes(events: readonly TaskEvent[]): number {
  const encoder = new TextEncoder();
  return events.reduce(
    (bytes, event) => bytes + encoder.encode(JSON.stringify(event)).length + 1,
    0,
  );
}

/** Registers the contract tests for the store `makeStore` creates, titled with `name`. */
export function testTaskStoreContract(
  name: string,
  makeStore: () => Promise<StoreFixture>,
): void {
  const test = (title: string, fn: (store: TaskStore) => Promise<void>) =>
    Deno.test(`${name}: ${title}`, async () => {
      const { store, cleanup } = await makeStore();
      try {
        await fn(store);
      } finally {
        await cleanup();
      }
    });

  test("readRecord returns the saved record with eventsBytes set", async (store) => {
    const record = makeRecord("t1", { result: { ok: true }, task: "demo" });
    const events = [requestEvent("r1")];
    const written = await store.save(record, events);
    assertEquals(written, { ...record, eventsBytes: lineBytes(events) });
    assertEquals(await store.readRecord("t1"), written);
  });

  test("readRecord returns null and readEvents [] for an unknown task", async (store) => {
    assertEquals(await store.readRecord("nope"), null);
    assertEquals(await store.readEvents("nope"), []);
  });

  test("readEvents returns the events of all saves in order", async (store) => {
    const first = [requestEvent("r1", 0), logEvent("one")];
    const second = [logEvent("two")];
    const third = [logEvent("three"), requestEvent("r2", 1)];
    await store.save(makeRecord("t1"), first);
    await store.save(makeRecord("t1", { pauseCount: 2 }), second);
    await store.save(makeRecord("t1", { pauseCount: 3 }), []);
    await store.save(makeRecord("t1", { pauseCount: 4 }), third);
    assertEquals(await store.readEvents("t1"), [...first, ...second, ...third]);
    assertEquals((await store.readRecord("t1"))?.pauseCount, 4);
  });

  test("eventsBytes counts the UTF-8 bytes of one JSON line per event", async (store) => {
    const none = await store.save(makeRecord("t1"), []);
    assertEquals(none.eventsBytes, 0);
    const first = [logEvent("héllo wörld ✓")];
    const afterFirst = await store.save(makeRecord("t1"), first);
    assertEquals(afterFirst.eventsBytes, lineBytes(first));
    const unchanged = await store.save(makeRecord("t1"), []);
    assertEquals(unchanged.eventsBytes, afterFirst.eventsBytes);
    const second = [requestEvent("r1"), logEvent("x")];
    const afterSecond = await store.save(makeRecord("t1"), second);
    assertEquals(afterSecond.eventsBytes, lineBytes([...first, ...second]));
  });

  test("save ignores the eventsBytes the caller passes", async (store) => {
    const written = await store.save(makeRecord("t1", { eventsBytes: 12345 }), []);
    assertEquals(written.eventsBytes, 0);
    assertEquals((await store.readRecord("t1"))?.eventsBytes, 0);
  });

  test("stored data does not alias what callers pass or receive", async (store) => {
    const record = makeRecord("t1");
    const events = [logEvent("original")];
    const written = await store.save(record, events);
    assertNotStrictEquals(written, record);
    record.name = "changed after save";
    (record.input as { n: number }).n = 99;
    (events[0] as { message: string }).message = "changed after save";
    written.status = "error";

    const read = await store.readRecord("t1");
    assertEquals(read?.name, "Task t1");
    assertEquals(read?.input, { n: 1, tags: ["a", "b"] });
    assertEquals(read?.status, "paused");
    read!.pauseCount = 42;
    assertEquals((await store.readRecord("t1"))?.pauseCount, 1);

    const readEvents = await store.readEvents("t1");
    assertEquals(readEvents, [logEvent("original")]);
    (readEvents[0] as { message: string }).message = "changed after read";
    assertEquals(await store.readEvents("t1"), [logEvent("original")]);

    const loaded = await store.loadAll();
    loaded.tasks[0]!.record.name = "changed after load";
    assertEquals((await store.readRecord("t1"))?.name, "Task t1");
  });

  test("loadAll returns every saved record, latest version, none behind", async (store) => {
    const a = await store.save(makeRecord("a"), [logEvent("a")]);
    await store.save(makeRecord("b"), []);
    const b = await store.save(makeRecord("b", { status: "completed", result: 7 }), []);
    const c = await store.save(makeRecord("c.2_x-y"), [requestEvent("r"), logEvent("c")]);
    const { tasks, skipped } = await store.loadAll();
    assertEquals(skipped, []);
    const byId = new Map(tasks.map((task) => [task.record.id, task]));
    assertEquals(byId.size, 3);
    assertEquals(tasks.length, 3);
    assertEquals(byId.get("a"), { record: a, behind: false });
    assertEquals(byId.get("b"), { record: b, behind: false });
    assertEquals(byId.get("c.2_x-y"), { record: c, behind: false });
  });

  test("loadAll of an empty store returns nothing", async (store) => {
    assertEquals(await store.loadAll(), { tasks: [], skipped: [] });
  });

  test("concurrent saves of different tasks all persist", async (store) => {
    const ids = Array.from({ length: 20 }, (_, i) => `task-${i}`);
    await Promise.all(ids.map((id) => store.save(makeRecord(id), [logEvent(id)])));
    await Promise.all(ids.map((id) => store.save(makeRecord(id), [logEvent(`${id} again`)])));
    for (const id of ids) {
      assertEquals(await store.readEvents(id), [logEvent(id), logEvent(`${id} again`)]);
    }
    assertEquals((await store.loadAll()).tasks.length, ids.length);
  });

  test("invalid task ids are refused with BadRequestError", async (store) => {
    const invalid = ["", "../escape", "a/b", ".hidden", "-dash", "a b", "x".repeat(129), "é"];
    for (const id of invalid) {
      await assertRejects(() => store.save(makeRecord(id), []), BadRequestError, "Invalid task id");
      await assertRejects(() => store.readRecord(id), BadRequestError);
      await assertRejects(() => store.readEvents(id), BadRequestError);
    }
    assertEquals((await store.loadAll()).tasks, []);
    const longest = "x".repeat(128);
    assert((await store.save(makeRecord(longest), [])).id === longest);
  });
}
