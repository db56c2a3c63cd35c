/**
 * The behaviour every {@link TaskStore} must have, as a suite any store's test file runs.
 *
 * @module
 */
import { assert, assertEquals, assertNotStrictEquals, assertRejects } from "@std/assert";
import { BadRequestError, UnavailableError } from "../lib/errors.ts";
import type {
  TaskEvent,
  TaskRecord,
  TaskStatus,
  TaskStore,
  TaskSummary,
} from "../lib/service/task_types.ts";

/** A fresh, empty store and how to dispose of it. */
export interface StoreFixture {
  store: TaskStore;
  /** The store as a restarted process sees it (open() not yet called). */
  reopen(): TaskStore;
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
  const test = (
    title: string,
    fn: (store: TaskStore, reopen: () => TaskStore) => Promise<void>,
  ) =>
    Deno.test(`${name}: ${title}`, async () => {
      const { store, reopen, cleanup } = await makeStore();
      const opened = [store];
      try {
        await fn(store, () => {
          const again = reopen();
          opened.push(again);
          return again;
        });
      } finally {
        for (const each of opened) await each.close();
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

  // --- index: listing, counts, removal, reopening ----------------------------------------

  /** Saves task `id` created at second `second` of 2025 in `status`, named `name`. */
  const saveAt = (
    store: TaskStore,
    id: string,
    second: number,
    status: TaskStatus = "completed",
    name = id,
  ) => {
    const createdAt = new Date(Date.UTC(2025, 0, 1, 0, 0, second)).toISOString();
    return store.save(
      makeRecord(id, { status, name, createdAt, updatedAt: createdAt, pending: [] }),
      [logEvent(id)],
    );
  };
  const ids = (tasks: readonly TaskSummary[]) => tasks.map((task) => task.id);

  /** Every page of `query`, following `nextCursor`. */
  const pages = async (
    store: TaskStore,
    query: Parameters<TaskStore["list"]>[0],
  ): Promise<string[][]> => {
    const all: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list({ ...query, cursor });
      all.push(ids(page.tasks));
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined && all.length < 100);
    return all;
  };

  test("list pages through every task with a cursor, oldest or newest first", async (store) => {
    for (const [i, id] of ["a", "b", "c", "d", "e", "f", "g"].entries()) {
      await saveAt(store, id, 10 - i); // Created in the reverse order of their ids.
    }
    assertEquals(await pages(store, { limit: 3 }), [["g", "f", "e"], ["d", "c", "b"], ["a"]]);
    assertEquals(await pages(store, { limit: 3, order: "newest" }), [
      ["a", "b", "c"],
      ["d", "e", "f"],
      ["g"],
    ]);
    assertEquals(await pages(store, { limit: 7 }), [["g", "f", "e", "d", "c", "b", "a"]]);
    const first = await store.list({ limit: 2 });
    assertEquals(first.tasks[0], {
      id: "g",
      name: "g",
      status: "completed",
      pauseCount: 1,
      createdAt: "2025-01-01T00:00:04.000Z",
      updatedAt: "2025-01-01T00:00:04.000Z",
    });
    assertEquals(typeof first.nextCursor, "string");
  });

  test("tasks created in the same millisecond are listed by id", async (store) => {
    for (const id of ["m", "z", "a", "q"]) await saveAt(store, id, 1);
    await saveAt(store, "first", 0);
    assertEquals(await pages(store, { limit: 2 }), [["first", "a"], ["m", "q"], ["z"]]);
    assertEquals(await pages(store, { limit: 4, order: "newest" }), [
      ["z", "q", "m", "a"],
      ["first"],
    ]);
  });

  test("list filters by status and by name; counts counts by status", async (store) => {
    await saveAt(store, "p1", 1, "paused", "job");
    await saveAt(store, "c1", 2, "completed", "job");
    await saveAt(store, "e1", 3, "error", "other");
    await saveAt(store, "c2", 4, "completed");
    await saveAt(store, "job", 5, "completed"); // Named after its id, which is "job".
    const list = async (query: Omit<Parameters<TaskStore["list"]>[0], "limit">) =>
      ids((await store.list({ ...query, limit: 100 })).tasks);
    assertEquals(await list({ status: ["completed"] }), ["c1", "c2", "job"]);
    assertEquals(await list({ status: ["completed", "error"] }), ["c1", "e1", "c2", "job"]);
    assertEquals(await list({ name: "job" }), ["p1", "c1", "job"]);
    assertEquals(await list({ name: "job", status: ["completed"], order: "newest" }), [
      "job",
      "c1",
    ]);
    assertEquals(await list({ name: "nobody" }), []);
    assertEquals(await list({ status: ["running"] }), []);
    assertEquals(await pages(store, { status: ["completed"], limit: 1 }), [
      ["c1"],
      ["c2"],
      ["job"],
    ]);
    assertEquals(store.counts(), { running: 0, paused: 1, completed: 3, error: 1, cancelled: 0 });
  });

  test("a listing saves a task's latest status, and a cursor survives its task's removal", async (store) => {
    const a = await saveAt(store, "a", 1, "paused");
    await saveAt(store, "b", 2, "paused");
    await saveAt(store, "c", 3, "paused");
    await store.save({ ...a, status: "completed" }, []);
    const page = await store.list({ limit: 2 });
    assertEquals(page.tasks.map((task) => [task.id, task.status]), [
      ["a", "completed"],
      ["b", "paused"],
    ]);
    await store.remove("b");
    assertEquals(ids((await store.list({ limit: 2, cursor: page.nextCursor! })).tasks), ["c"]);
    assertEquals(
      ids((await store.list({ limit: 2, cursor: page.nextCursor!, order: "newest" })).tasks),
      ["a"],
    );
    assertEquals(store.counts(), { running: 0, paused: 1, completed: 1, error: 0, cancelled: 0 });
  });

  test("list refuses a cursor no listing answered with BadRequestError", async (store) => {
    for (const cursor of ["", "abc", "12", "12.", "x.a", "1.../x"]) {
      await assertRejects(() => store.list({ cursor, limit: 1 }), BadRequestError, "cursor");
    }
  });

  test("remove deletes the task's record, journal and listing; an unknown task is a no-op", async (store) => {
    const record = await saveAt(store, "gone", 1);
    await saveAt(store, "kept", 2);
    await store.remove("gone");
    assertEquals(await store.readRecord("gone"), null);
    assertEquals(await store.readEvents({ id: "gone", eventsBytes: 0 }), []);
    await assertRejects(() => store.readEvents(record), UnavailableError);
    assertEquals(ids((await store.list({ limit: 10 })).tasks), ["kept"]);
    await store.remove("gone");
    await store.remove("never-was");
    await assertRejects(() => store.remove("../x"), BadRequestError);
    // The id can be used again, by a new task.
    const again = await saveAt(store, "gone", 3, "paused");
    assertEquals(await store.readEvents(again), [logEvent("gone")]);
    assertEquals(ids((await store.list({ limit: 10 })).tasks), ["kept", "gone"]);
  });

  test("finishedBefore answers finished tasks updated before the cutoff, oldest first", async (store) => {
    await saveAt(store, "old-done", 1, "completed");
    await saveAt(store, "old-error", 2, "error");
    await saveAt(store, "old-paused", 3, "paused");
    await saveAt(store, "old-running", 4, "running");
    await saveAt(store, "new-done", 30, "completed");
    const cutoff = Date.UTC(2025, 0, 1, 0, 0, 10);
    assertEquals(ids(await store.finishedBefore(cutoff, 10)), ["old-done", "old-error"]);
    assertEquals(ids(await store.finishedBefore(cutoff, 1)), ["old-done"]);
    assertEquals(ids(await store.finishedBefore(Date.UTC(2025, 0, 2), 10)), [
      "old-done",
      "old-error",
      "new-done",
    ]);
  });

  test(
    "open answers the records of running and paused tasks, oldest first",
    async (store, reopen) => {
      await saveAt(store, "done", 1, "completed");
      const paused = await saveAt(store, "paused", 3, "paused");
      const running = await saveAt(store, "running", 2, "running");
      const again = reopen();
      const { active, skipped } = await again.open();
      assertEquals(skipped, []);
      assertEquals(active, [running, paused]);
    },
  );

  test("a reopened store lists what was saved, finished and removed", async (store, reopen) => {
    for (let i = 0; i < 30; i++) {
      await saveAt(store, `t${i}`, i, i % 3 === 0 ? "paused" : "completed", `n${i % 4}`);
    }
    const t0 = (await store.readRecord("t0"))!;
    await store.save({ ...t0, status: "error", updatedAt: "2025-01-02T00:00:00.000Z" }, []);
    for (const id of ["t1", "t2", "t5"]) await store.remove(id);
    const query = { limit: 4, status: ["completed", "error"] as TaskStatus[] };
    const before = await pages(store, query);
    const named = await pages(store, { limit: 3, name: "n1", order: "newest" });
    const counts = store.counts();
    const again = reopen();
    await again.open();
    assertEquals(await pages(again, query), before);
    assertEquals(await pages(again, { limit: 3, name: "n1", order: "newest" }), named);
    assertEquals(again.counts(), counts);
    assertEquals(counts, { running: 0, paused: 9, completed: 17, error: 1, cancelled: 0 });
    assertEquals(await again.readRecord("t5"), null);
    assertEquals((await again.list({ limit: 1 })).tasks[0]?.status, "error");
  });

  test("readTail answers the committed events of the journal's last bytes and the bytes before them", async (store) => {
    let record = await store.save(makeRecord("t1"), [logEvent("first")]);
    const lines = Array.from({ length: 40 }, (_, i) => logEvent(`line ${i} ` + "x".repeat(100)));
    for (let i = 0; i < lines.length; i += 10) {
      record = await store.save(record, lines.slice(i, i + 10));
    }
    const whole = await store.readTail(record, record.eventsBytes);
    assertEquals(whole, { events: await store.readEvents(record), skippedBytes: 0 });
    const tail = await store.readTail(record, 1000);
    assert(tail.skippedBytes > record.eventsBytes - 1000, `skipped ${tail.skippedBytes}`);
    assert(tail.skippedBytes <= record.eventsBytes);
    const all = await store.readEvents(record);
    assert(tail.events.length > 0 && tail.events.length < 10);
    assertEquals(tail.events, all.slice(-tail.events.length), "the last events, in order");
    // Lines after the commit point (an interrupted save) are not part of it.
    assertEquals(await store.readTail({ ...record, eventsBytes: 0 }, 1000), {
      events: [],
      skippedBytes: 0,
    });
  });
}
