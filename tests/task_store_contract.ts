/**
 * The behaviour every {@link TaskStore} must have, as a suite any store's test file runs.
 *
 * @module
 */
import { assert, assertEquals, assertNotStrictEquals, assertRejects } from "@std/assert";
import { BadRequestError, UnavailableError } from "../lib/errors.ts";
import type { TaskEvent, TaskRecord, TaskStore } from "../lib/service/task_types.ts";

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
    pending: [],
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

const encoder = new TextEncoder();

/** UTF-8 size of the journal lines of `events` (one JSON line each). */
function lineBytes(events: readonly TaskEvent[]): number {
  return events.reduce(
    (bytes, event) => bytes + encoder.encode(JSON.stringify(event)).length + 1,
    0,
  );
}

/**
 * The commit line, with its `\n`, of a save of `record` (which has no `vm`): the record less
 * `eventsBytes`, and less `code` and `input` unless it is the journal's first commit.
 */
export function commitText(record: TaskRecord): string {
  const { eventsBytes, ...full } = record;
  const { code: _code, input: _input, ...lean } = full;
  return JSON.stringify({ type: "commit", record: eventsBytes === 0 ? full : lean }) + "\n";
}

/** UTF-8 size of {@link commitText}. */
function commitBytes(record: TaskRecord): number {
  return encoder.encode(commitText(record)).length;
}

/** The `eventsBytes` a save of `record` with `events` returns. */
function savedBytes(record: TaskRecord, events: readonly TaskEvent[]): number {
  return record.eventsBytes + lineBytes(events) + commitBytes(record);
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
    assertEquals(written, { ...record, eventsBytes: lineBytes(events) + commitBytes(record) });
    assertEquals(await store.readRecord("t1"), written);
  });

  test("readRecord returns null and readEvents [] for an unknown task", async (store) => {
    assertEquals(await store.readRecord("nope"), null);
    assertEquals(await store.readEvents({ id: "nope", eventsBytes: 0 }), []);
  });

  test("readEvents returns the events of all saves in order", async (store) => {
    const first = [requestEvent("r1", 0), logEvent("one")];
    const second = [logEvent("two")];
    const third = [logEvent("three"), requestEvent("r2", 1)];
    let record = await store.save(makeRecord("t1"), first);
    record = await store.save({ ...record, pauseCount: 2 }, second);
    record = await store.save({ ...record, pauseCount: 3 }, []);
    record = await store.save({ ...record, pauseCount: 4 }, third);
    assertEquals(await store.readEvents(record), [...first, ...second, ...third]);
    assertEquals(await store.readRecord("t1"), record);
    assertEquals(record.pauseCount, 4);
  });

  test("eventsBytes counts the UTF-8 bytes of each save's event lines and commit line", async (store) => {
    const created = makeRecord("t1", { input: { text: "ünïcödé ✓" } });
    const none = await store.save(created, []);
    assertEquals(none.eventsBytes, commitBytes(created));
    const first = [logEvent("héllo wörld ✓")];
    const afterFirst = await store.save(none, first);
    assertEquals(afterFirst.eventsBytes, savedBytes(none, first));
    const unchanged = await store.save(afterFirst, []);
    assertEquals(unchanged.eventsBytes, savedBytes(afterFirst, []));
    const second = [requestEvent("r1"), logEvent("x")];
    const afterSecond = await store.save(unchanged, second);
    assertEquals(afterSecond.eventsBytes, savedBytes(unchanged, second));
    assertEquals(await store.readEvents(afterSecond), [...first, ...second]);
  });

  test("readEvents never returns commit lines, even of saves without events", async (store) => {
    let record = await store.save(makeRecord("t1"), []);
    const sizes = [record.eventsBytes];
    for (let pause = 2; pause <= 4; pause++) {
      record = await store.save({ ...record, pauseCount: pause }, []);
      sizes.push(record.eventsBytes);
      assertEquals(await store.readEvents(record), []);
    }
    assert(sizes.every((size, i) => i === 0 || size > sizes[i - 1]!), String(sizes));
    record = await store.save(record, [logEvent("only")]);
    assertEquals(await store.readEvents(record), [logEvent("only")]);
    assertEquals(await store.readRecord("t1"), record);
  });

  test("after the first save, a save's journal growth does not include code and input", async (store) => {
    const code = "x".repeat(10_000);
    const input = { blob: "y".repeat(10_000) };
    const first = await store.save(makeRecord("t1", { code, input }), []);
    assert(first.eventsBytes > 20_000, String(first.eventsBytes));
    const second = await store.save({ ...first, pauseCount: 2 }, [logEvent("a")]);
    assert(second.eventsBytes - first.eventsBytes < 1_000, String(second.eventsBytes));
    assertEquals(second.code, code);
    assertEquals(second.input, input);
    assertEquals(await store.readRecord("t1"), second);
    assertEquals((await store.loadAll()).tasks, [second]);
  });

  test("a save refuses an event of type commit", async (store) => {
    const record = await store.save(makeRecord("t1"), [logEvent("a")]);
    const commit = { type: "commit", record: {} } as unknown as TaskEvent;
    await assertRejects(() => store.save(record, [commit]), TypeError, "commit");
    assertEquals(await store.readEvents(record), [logEvent("a")]);
    assertEquals(await store.readRecord("t1"), record);
  });

  test("save with an older record discards the events saved after it", async (store) => {
    const first = await store.save(makeRecord("t1"), [logEvent("a")]);
    // As if the record of this save had been lost: its events are not committed.
    await store.save({ ...first, pauseCount: 2 }, [logEvent("b"), requestEvent("r1")]);
    const retried = await store.save({ ...first, pauseCount: 3 }, [logEvent("c")]);
    assertEquals(retried.eventsBytes, savedBytes({ ...first, pauseCount: 3 }, [logEvent("c")]));
    assertEquals(await store.readEvents(retried), [logEvent("a"), logEvent("c")]);
    const restarted = await store.save(makeRecord("t1"), [logEvent("fresh")]);
    assertEquals(await store.readEvents(restarted), [logEvent("fresh")]);
    assertEquals(await store.readRecord("t1"), restarted);
  });

  test("readEvents returns only the events the given record commits", async (store) => {
    const first = await store.save(makeRecord("t1"), [logEvent("a"), logEvent("b")]);
    const second = await store.save(first, [logEvent("c")]);
    assertEquals(await store.readEvents(first), [logEvent("a"), logEvent("b")]);
    assertEquals(await store.readEvents({ id: "t1", eventsBytes: 0 }), []);
    assertEquals(await store.readEvents(second), [logEvent("a"), logEvent("b"), logEvent("c")]);
  });

  test("save and readEvents refuse a record accounting for more than the journal", async (store) => {
    const error = await assertRejects(
      () => store.save(makeRecord("t1", { eventsBytes: 12345 }), [logEvent("a")]),
      UnavailableError,
    );
    assert(error.message.includes('task "t1"'), error.message);
    assert(error.message.includes("shorter than its record"), error.message);
    assertEquals(await store.readRecord("t1"), null);
    await assertRejects(() => store.readEvents({ id: "t1", eventsBytes: 1 }), UnavailableError);

    const record = await store.save(makeRecord("t1"), [logEvent("a")]);
    const ahead = { ...record, eventsBytes: record.eventsBytes + 1 };
    await assertRejects(() => store.save(ahead, [logEvent("b")]), UnavailableError, "shorter");
    await assertRejects(() => store.readEvents(ahead), UnavailableError, "shorter");
    assertEquals(await store.readRecord("t1"), record);
    assertEquals(await store.readEvents(record), [logEvent("a")]);
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

    const readEvents = await store.readEvents(written);
    assertEquals(readEvents, [logEvent("original")]);
    (readEvents[0] as { message: string }).message = "changed after read";
    assertEquals(await store.readEvents(written), [logEvent("original")]);

    const loaded = await store.loadAll();
    loaded.tasks[0]!.name = "changed after load";
    assertEquals((await store.readRecord("t1"))?.name, "Task t1");
  });

  test("loadAll returns every saved record, latest version", async (store) => {
    const a = await store.save(makeRecord("a"), [logEvent("a")]);
    const b1 = await store.save(makeRecord("b"), []);
    const b = await store.save({ ...b1, status: "completed", result: 7 }, []);
    const c = await store.save(makeRecord("c.2_x-y"), [requestEvent("r"), logEvent("c")]);
    const { tasks, skipped } = await store.loadAll();
    assertEquals(skipped, []);
    const byId = new Map(tasks.map((record) => [record.id, record]));
    assertEquals(byId.size, 3);
    assertEquals(tasks.length, 3);
    assertEquals(byId.get("a"), a);
    assertEquals(byId.get("b"), b);
    assertEquals(byId.get("c.2_x-y"), c);
  });

  test("loadAll of an empty store returns nothing", async (store) => {
    assertEquals(await store.loadAll(), { tasks: [], skipped: [] });
  });

  test("concurrent saves of different tasks all persist", async (store) => {
    const ids = Array.from({ length: 20 }, (_, i) => `task-${i}`);
    const first = await Promise.all(ids.map((id) => store.save(makeRecord(id), [logEvent(id)])));
    const second = await Promise.all(
      first.map((record) => store.save(record, [logEvent(`${record.id} again`)])),
    );
    for (const record of second) {
      assertEquals(await store.readEvents(record), [
        logEvent(record.id),
        logEvent(`${record.id} again`),
      ]);
    }
    assertEquals((await store.loadAll()).tasks.length, ids.length);
  });

  test("remove forgets the record and the journal; the id can be created anew", async (store) => {
    let record = await store.save(makeRecord("gone"), [requestEvent("r1"), logEvent("one")]);
    record = await store.save({ ...record, status: "completed" }, [logEvent("two")]);
    await store.save(makeRecord("kept"), [logEvent("kept")]);
    assertEquals(await store.remove("gone"), true);
    assertEquals(await store.readRecord("gone"), null);
    assertEquals(await store.readEvents({ id: "gone", eventsBytes: 0 }), []);
    assertEquals((await store.loadAll()).tasks.map((task) => task.id), ["kept"]);
    assertEquals(await store.remove("gone"), false);
    const again = await store.save(makeRecord("gone"), [logEvent("fresh")]);
    assertEquals(await store.readEvents(again), [logEvent("fresh")]);
    assertEquals(await store.readRecord("gone"), again);
    await assertRejects(() => store.remove("../escape"), BadRequestError);
  });

  test("invalid task ids are refused with BadRequestError", async (store) => {
    const invalid = ["", "../escape", "a/b", ".hidden", "-dash", "a b", "x".repeat(129), "é"];
    for (const id of invalid) {
      await assertRejects(() => store.save(makeRecord(id), []), BadRequestError, "Invalid task id");
      await assertRejects(() => store.readRecord(id), BadRequestError);
      await assertRejects(() => store.readEvents({ id, eventsBytes: 0 }), BadRequestError);
    }
    assertEquals((await store.loadAll()).tasks, []);
    const longest = "x".repeat(128);
    assert((await store.save(makeRecord(longest), [])).id === longest);
  });
}
