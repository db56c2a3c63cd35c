import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { join } from "node:path";
import { FileTaskStore } from "../lib/store/file_task_store.ts";
import { waitFor } from "../testing/wait.ts";
import { ConflictError, UnavailableError } from "../lib/errors.ts";
import type { TaskEvent, TaskRecord } from "../lib/service/task_types.ts";
import {
  commitText,
  logEvent,
  makeRecord,
  requestEvent,
  testTaskStoreContract,
} from "./task_store_contract.ts";

testTaskStoreContract("FileTaskStore", async () => {
  const dir = await Deno.makeTempDir();
  return {
    store: new FileTaskStore(dir),
    reopen: () => new FileTaskStore(dir),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});

/** Saves with a store opened for that save alone, as another process would. */
async function saveOnce(
  dir: string,
  record: TaskRecord,
  events: TaskEvent[],
): Promise<TaskRecord> {
  await using store = new FileTaskStore(dir);
  return await store.save(record, events);
}

/** Whether a directory with mode 0o500 refuses writes here (it does not for root). */
async function readOnlyDirsRefuseWrites(): Promise<boolean> {
  if (Deno.build.os === "windows") return false;
  const dir = await Deno.makeTempDir();
  try {
    await Deno.chmod(dir, 0o500);
    await Deno.writeTextFile(join(dir, "probe"), "");
    return false;
  } catch (error) {
    return error instanceof Deno.errors.PermissionDenied;
  } finally {
    await Deno.chmod(dir, 0o700);
    await Deno.remove(dir, { recursive: true });
  }
}

const READ_ONLY_DIRS_REFUSE_WRITES = await readOnlyDirsRefuseWrites();

async function withStoreDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The files of `dir` but the store's index file and its snapshots. */
async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.name.startsWith("_index.")) names.push(entry.name);
  }
  return names.sort();
}

const line = (event: TaskEvent) => JSON.stringify(event) + "\n";
const byteLength = (text: string) => new TextEncoder().encode(text).length;

/** Counts the flushes (`sync`, `syncData` of any file) that `fn` makes. */
async function countFlushes(fn: () => Promise<void>): Promise<{ sync: number; syncData: number }> {
  const counts = { sync: 0, syncData: 0 };
  const proto = Deno.FsFile.prototype;
  const { sync, syncData } = proto;
  proto.sync = function (this: Deno.FsFile) {
    counts.sync++;
    return sync.call(this);
  };
  proto.syncData = function (this: Deno.FsFile) {
    counts.syncData++;
    return syncData.call(this);
  };
  try {
    await fn();
  } finally {
    proto.sync = sync;
    proto.syncData = syncData;
  }
  return counts;
}

Deno.test("FileTaskStore writes the record pretty-printed and the journal as events and commits", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const created = makeRecord("t1");
    const events = [requestEvent("r1"), logEvent("hi")];
    const written = await store.save(created, events);
    const recordPath = join(dir, "t1.json");
    const journal = join(dir, "t1.journal.jsonl");
    assertEquals(await Deno.readTextFile(recordPath), JSON.stringify(written, null, 2) + "\n");
    const firstSave = events.map(line).join("") + commitText(created);
    assertEquals(await Deno.readTextFile(journal), firstSave);
    assertEquals(written.eventsBytes, byteLength(firstSave));
    assertEquals(await listDir(dir), ["t1.journal.jsonl", "t1.json"]);

    const next = { ...written, status: "completed" as const, pauseCount: 2 };
    const again = await store.save(next, [logEvent("bye")]);
    assertEquals(await Deno.readTextFile(recordPath), JSON.stringify(again, null, 2) + "\n");
    const text = firstSave + line(logEvent("bye")) + commitText(next);
    assertEquals(await Deno.readTextFile(journal), text);
    assertEquals(again.eventsBytes, byteLength(text));
    // The code and the input are in the first commit only.
    assertEquals(text.split(JSON.stringify(created.code)).length, 2);
    assertEquals(text.split(JSON.stringify(created.input)).length, 2);
  });
});

Deno.test("a pause after a pause defers its record write: reads catch up from the journal, the file follows within a second or at close, and any other save writes it at once", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const recordPath = join(dir, "t1.json");
    const onDisk = async () => JSON.parse(await Deno.readTextFile(recordPath)) as TaskRecord;
    const first = await store.save(makeRecord("t1"), [logEvent("a")]);
    let record = first;
    for (let pause = 2; pause <= 4; pause++) {
      record = await store.save({ ...record, pauseCount: pause }, [logEvent(`p${pause}`)]);
    }
    // The journal has every commit; the file still holds the first save.
    assertEquals(await onDisk(), first);
    assertEquals(await store.readRecord("t1"), record);
    assertEquals(await new FileTaskStore(dir).loadAll(), { tasks: [record], skipped: [] });
    // Within DEFER_MS the file is written once, with the latest record.
    await waitFor(async () => (await onDisk()).pauseCount === 4, { timeoutMs: 3_000 });
    assertEquals(await onDisk(), record);

    record = await store.save({ ...record, pauseCount: 5 }, [logEvent("p5")]);
    await store.close();
    assertEquals(await onDisk(), record, "close() makes the deferred write");

    record = await store.save({ ...record, pauseCount: 6 }, [logEvent("p6")]);
    const done = await store.save({ ...record, status: "completed" }, [logEvent("end")]);
    assertEquals(await onDisk(), done, "a save of another status writes at once");
    await store.close();
    assertEquals(await onDisk(), done, "and the deferred write it replaced never lands");
    assertEquals(await listDir(dir), ["t1.journal.jsonl", "t1.json"]);
  });
});

Deno.test("the first save writes the record durably; a later save flushes the journal once, only", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    let record = makeRecord("t1");
    const first = await countFlushes(async () => {
      record = await store.save(record, [logEvent("a")]);
    });
    // The task's line in the index file and the journal (fdatasync each) and the record's
    // temp file (fsync), then, after the rename, the directory (fsync; Windows cannot open a
    // directory).
    assertEquals(first, { sync: Deno.build.os === "windows" ? 1 : 2, syncData: 2 });
    for (const events of [[logEvent("b")], []]) {
      const later = await countFlushes(async () => {
        record = await store.save({ ...record, pauseCount: record.pauseCount + 1 }, events);
      });
      assertEquals(later, { sync: 0, syncData: 1 });
      assertEquals(await store.readRecord("t1"), record);
    }
    await store.close();
    assertEquals(
      await Deno.readTextFile(join(dir, "t1.json")),
      JSON.stringify(record, null, 2) + "\n",
    );

    await using unflushed = new FileTaskStore(join(dir, "off"), { fsync: false });
    await unflushed.loadAll();
    const off = await countFlushes(async () => {
      const saved = await unflushed.save(makeRecord("t2"), [logEvent("a")]);
      await unflushed.save(saved, [logEvent("b")]);
    });
    assertEquals(off, { sync: 0, syncData: 0 });
  });
});

Deno.test("a save flushes only the journal: the record file is replaced but not required for recovery", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const recordPath = join(dir, "t1.json");
    const created = makeRecord("t1", { status: "running", pauseCount: 0 });
    const first = await store.save(created, []);
    const firstText = await Deno.readTextFile(recordPath);
    const request = requestEvent("r1");
    const events = [{ type: "eval", step: 0, at: 1 } as TaskEvent, request];
    const vm: TaskRecord["vm"] = {
      id: "t1",
      code: created.code,
      variables: { n: 1 },
      timestamp: 1_700_000_000_000,
      version: 1,
      variant: "asyncify",
      seed: 7,
      globals: { input: created.input },
      pending: ["r1"],
      droppedLogs: 0,
    };
    const pending = request.type === "request" ? [request.request] : [];
    const second = await store.save(
      { ...first, status: "paused", pauseCount: 1, vm, pending },
      events,
    );
    // As if the machine died before the record's rename reached the disk.
    await Deno.writeTextFile(recordPath, firstText);

    await using restarted = new FileTaskStore(dir);
    assertEquals(await restarted.loadAll(), { tasks: [second], skipped: [] });
    assertEquals(await restarted.readRecord("t1"), second);
    assertEquals(await restarted.readEvents(second), events);
    const journalText = await Deno.readTextFile(join(dir, "t1.journal.jsonl"));
    assertEquals(second.eventsBytes, byteLength(journalText));
    // The commit left out the engine's copy of the code and of the input too.
    assertEquals(journalText.split(JSON.stringify(created.code)).length, 2);
    assertEquals(journalText.split(JSON.stringify(created.input)).length, 2);

    // An engine state whose code and globals are not the task's is kept whole.
    const third = await restarted.save(
      { ...second, pauseCount: 2, vm: { ...vm, code: "other()", globals: { other: 1 } } },
      [logEvent("x")],
    );
    await Deno.writeTextFile(recordPath, firstText);
    await using again = new FileTaskStore(dir);
    assertEquals(await again.loadAll(), { tasks: [third], skipped: [] });
    assertEquals(await again.readEvents(third), [...events, logEvent("x")]);
    const fourth = await again.save({ ...third, status: "completed", pending: [] }, []);
    assertEquals(await new FileTaskStore(dir).loadAll(), { tasks: [fourth], skipped: [] });
  });
});

Deno.test("uncommitted lines after the last commit are ignored and truncated by the next save", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const recordPath = join(dir, "t1.json");
    const journal = join(dir, "t1.journal.jsonl");
    const first = await store.save(makeRecord("t1"), [logEvent("a")]);
    const firstText = await Deno.readTextFile(recordPath);
    const second = await store.save({ ...first, pauseCount: 2 }, [logEvent("b")]);
    const committed = await Deno.readTextFile(journal);
    // A lagging record, and what a save cut off before its commit line leaves.
    await Deno.writeTextFile(recordPath, firstText);
    await Deno.writeTextFile(
      journal,
      line(logEvent("c")) + line(requestEvent("r9")) + '{"type":"commit","record":{"id":"t1"',
      { append: true },
    );

    await using restarted = new FileTaskStore(dir);
    assertEquals(await restarted.loadAll(), { tasks: [second], skipped: [] });
    assertEquals(await restarted.readEvents(second), [logEvent("a"), logEvent("b")]);
    const next = { ...second, pauseCount: 3 };
    const third = await restarted.save(next, [logEvent("d")]);
    const text = committed + line(logEvent("d")) + commitText(next);
    assertEquals(await Deno.readTextFile(journal), text);
    assertEquals(third.eventsBytes, byteLength(text));
    assertEquals(await restarted.readEvents(third), [logEvent("a"), logEvent("b"), logEvent("d")]);
    assertEquals(await new FileTaskStore(dir).loadAll(), { tasks: [third], skipped: [] });
  });
});

Deno.test("a commit after a line that does not parse is not taken", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const journal = join(dir, "t1.journal.jsonl");
    const first = await store.save(makeRecord("t1"), [logEvent("a")]);
    const committed = await Deno.readTextFile(journal);
    // What a power loss can leave of an append that was never flushed: a hole of zeros.
    const hole = new Uint8Array(17);
    hole[16] = 0x0a;
    await Deno.writeFile(journal, hole, { append: true });
    const unflushed = { ...first, pauseCount: 2 };
    await Deno.writeTextFile(journal, line(logEvent("b")) + commitText(unflushed), {
      append: true,
    });

    await using restarted = new FileTaskStore(dir);
    assertEquals(await restarted.loadAll(), { tasks: [first], skipped: [] });
    assertEquals(await restarted.readRecord("t1"), first);
    const next = await restarted.save({ ...first, pauseCount: 3 }, []);
    assertEquals(
      await Deno.readTextFile(journal),
      committed + commitText({ ...first, pauseCount: 3 }),
    );
    assertEquals(await restarted.readEvents(next), [logEvent("a")]);
  });
});

Deno.test("a record file left unreadable by a power loss is rebuilt from the journal", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const recordPath = join(dir, "t1.json");
    const first = await store.save(makeRecord("t1", { task: "demo" }), [logEvent("a")]);
    const last = await store.save(
      { ...first, status: "completed", result: { ok: 1 }, pauseCount: 2 },
      [logEvent("b")],
    );
    for (const torn of ["", '{\n  "id": "t1",\n  "na', "\0".repeat(300)]) {
      await Deno.writeTextFile(recordPath, torn);
      await using restarted = new FileTaskStore(dir);
      assertEquals(await restarted.loadAll(), { tasks: [last], skipped: [] });
      assertEquals(await restarted.readRecord("t1"), last);
      assertEquals(await restarted.readEvents(last), [logEvent("a"), logEvent("b")]);
    }
    // The rebuilt record goes on like any other.
    const next = await saveOnce(dir, { ...last, pauseCount: 3 }, []);
    assertEquals(await new FileTaskStore(dir).loadAll(), { tasks: [next], skipped: [] });

    // Without the journal's first commit, there is nothing to rebuild it from.
    await Deno.writeTextFile(recordPath, "");
    await Deno.writeTextFile(join(dir, "t1.journal.jsonl"), line(logEvent("a")));
    const { tasks, skipped } = await new FileTaskStore(dir).loadAll();
    assertEquals(tasks, []);
    assertEquals(skipped.map((s) => s.file), ["t1.json"]);
    assert(skipped[0]!.reason.startsWith("Not valid JSON"), skipped[0]!.reason);
    await assertRejects(() => new FileTaskStore(dir).readRecord("t1"), Error, "Not valid JSON");
  });
});

Deno.test("a save whose record cannot be replaced is taken back from the journal", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const recordPath = join(dir, "t1.json");
    const journal = join(dir, "t1.journal.jsonl");
    const before = await store.save(makeRecord("t1"), [logEvent("a")]);
    const committed = await Deno.readTextFile(journal);
    const aside = join(dir, "aside");
    await Deno.rename(recordPath, aside);
    await Deno.mkdir(recordPath);
    await Deno.writeTextFile(join(recordPath, "inside"), "x");
    // Not a pause after a pause, whose record write is deferred: this one is written now.
    const error = await assertRejects(
      () => store.save({ ...before, status: "running", pauseCount: 2 }, [logEvent("b")]),
      UnavailableError,
    );
    assert(error.message.startsWith('Cannot save task "t1": '), error.message);
    assertEquals(await Deno.readTextFile(journal), committed);
    await Deno.remove(recordPath, { recursive: true });
    await Deno.rename(aside, recordPath);
    assertEquals(await new FileTaskStore(dir).loadAll(), { tasks: [before], skipped: [] });
    const retried = await store.save({ ...before, pauseCount: 2 }, [logEvent("c")]);
    assertEquals(await store.readEvents(retried), [logEvent("a"), logEvent("c")]);

    // The first save of a task too; its journal is left empty.
    await Deno.mkdir(join(dir, "t2.json"));
    await Deno.writeTextFile(join(dir, "t2.json", "inside"), "x");
    await assertRejects(() => store.save(makeRecord("t2"), [logEvent("a")]), UnavailableError);
    assertEquals(await Deno.readTextFile(join(dir, "t2.journal.jsonl")), "");
    await Deno.remove(join(dir, "t2.json"), { recursive: true });
    const created = await store.save(makeRecord("t2"), [logEvent("b")]);
    assertEquals(await store.readEvents(created), [logEvent("b")]);
    assertEquals((await new FileTaskStore(dir).loadAll()).tasks, [retried, created]);
  });
});

Deno.test("FileTaskStore with fsync off stores the same files", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir, { fsync: false });
    const written = await store.save(makeRecord("t1"), [logEvent("a")]);
    assertEquals(await new FileTaskStore(dir).readRecord("t1"), written);
    assertEquals(await new FileTaskStore(dir).readEvents(written), [logEvent("a")]);
  });
});

Deno.test("readEvents ignores uncommitted lines after eventsBytes", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const record = await store.save(makeRecord("t1"), [logEvent("a"), logEvent("b")]);
    const journal = join(dir, "t1.journal.jsonl");
    await Deno.writeTextFile(journal, line(logEvent("c")) + "not json\n", { append: true });
    assertEquals(await store.readEvents(record), [logEvent("a"), logEvent("b")]);
    await Deno.writeTextFile(journal, '{"type":"log","mess', { append: true });
    assertEquals(await store.readEvents(record), [logEvent("a"), logEvent("b")]);
    assertEquals(await new FileTaskStore(dir).readEvents(record), [logEvent("a"), logEvent("b")]);
  });
});

Deno.test("save discards journal lines the record does not account for", async () => {
  await withStoreDir(async (dir) => {
    const record = await saveOnce(dir, makeRecord("t1"), [logEvent("a")]);
    const journal = join(dir, "t1.journal.jsonl");
    // What a crash between appending events and writing their record leaves behind.
    await Deno.writeTextFile(journal, line(logEvent("b")) + line(requestEvent("r1")), {
      append: true,
    });
    await Deno.writeTextFile(journal, '{"type":"log","mess', { append: true });

    await using restarted = new FileTaskStore(dir);
    assertEquals(await restarted.loadAll(), { tasks: [record], skipped: [] });
    const next = { ...record, pauseCount: 2 };
    const written = await restarted.save(next, [logEvent("c")]);
    const expected = line(logEvent("a")) + commitText(makeRecord("t1")) + line(logEvent("c")) +
      commitText(next);
    assertEquals(await Deno.readTextFile(journal), expected);
    assertEquals(written.eventsBytes, byteLength(expected));
    assertEquals(await restarted.readEvents(written), [logEvent("a"), logEvent("c")]);

    const unchanged = await saveOnce(dir, written, []);
    assertEquals(unchanged.eventsBytes, byteLength(expected + commitText(written)));
    assertEquals(await Deno.readTextFile(journal), expected + commitText(written));
  });
});

Deno.test("readEvents throws naming the file and line of an unparsable committed line", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const journal = join(dir, "t1.journal.jsonl");
    const text = line(logEvent("a")) + "not json\n" + line(logEvent("c"));
    await Deno.writeTextFile(journal, text);
    const eventsBytes = new TextEncoder().encode(text).length;
    const error = await assertRejects(() => store.readEvents({ id: "t1", eventsBytes }), Error);
    assert(error.message.includes(journal), error.message);
    assert(error.message.includes("line 2"), error.message);

    const cut = line(logEvent("a")).length + 3;
    const cutError = await assertRejects(
      () => store.readEvents({ id: "t1", eventsBytes: cut }),
      Error,
    );
    assert(cutError.message.includes(journal), cutError.message);
    assert(cutError.message.includes("line 2 is cut off"), cutError.message);
  });
});

Deno.test("loadAll skips bad record files with reasons, leaves them on disk, loads good ones", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const good = await store.save(makeRecord("good"), [logEvent("a")]);
    const bad: Record<string, string> = {
      "corrupt.json": '{"id": "corrupt", ',
      "array.json": "[1, 2]",
      "foreign.json": JSON.stringify({ id: "foreign", hello: "world" }),
      "wrong-status.json": JSON.stringify(
        makeRecord("wrong-status", { status: "sleeping" as never }),
      ),
      "bad-vm.json": JSON.stringify(makeRecord("bad-vm", { vm: "nope" as never })),
      "renamed.json": JSON.stringify(makeRecord("original")),
      "bad name.json": JSON.stringify(makeRecord("bad name")),
      ".hidden.json": JSON.stringify(makeRecord(".hidden")),
    };
    for (const [file, text] of Object.entries(bad)) {
      await Deno.writeTextFile(join(dir, file), text);
    }
    await Deno.writeTextFile(join(dir, "notes.txt"), "not a task");

    const { tasks, skipped } = await store.loadAll();
    assertEquals(tasks, [good]);
    const reasons = Object.fromEntries(skipped.map((s) => [s.file, s.reason]));
    assertEquals(Object.keys(reasons).sort(), Object.keys(bad).sort());
    assert(reasons["corrupt.json"]!.startsWith("Not valid JSON"), reasons["corrupt.json"]);
    assertEquals(reasons["array.json"], "Not a task record: not a JSON object");
    assertEquals(reasons["foreign.json"], 'Not a task record: field "name" is missing or invalid');
    assertEquals(
      reasons["wrong-status.json"],
      'Not a task record: field "status" is missing or invalid',
    );
    assertEquals(reasons["bad-vm.json"], 'Not a task record: field "vm" is invalid');
    assertEquals(
      reasons["renamed.json"],
      'Holds task id "original", which does not match the file name',
    );
    assertEquals(reasons["bad name.json"], "File name is not a valid task id");
    assertEquals(reasons[".hidden.json"], "File name is not a valid task id");
    for (const [file, text] of Object.entries(bad)) {
      assertEquals(await Deno.readTextFile(join(dir, file)), text);
    }
  });
});

Deno.test("loadAll removes leftover temp files of interrupted writes only", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const good = await store.save(makeRecord("t1"), []);
    await Deno.writeTextFile(join(dir, ".t1.json.0123456789abcdef.tmp"), '{"id": "t1", "na');
    await Deno.writeTextFile(join(dir, "keep.tmp"), "mine");
    const { tasks, skipped } = await store.loadAll();
    assertEquals(tasks, [good]);
    assertEquals(skipped, []);
    assertEquals(await listDir(dir), ["keep.tmp", "t1.journal.jsonl", "t1.json"]);
  });
});

Deno.test("remove takes the record file first, so an interrupted remove leaves no task, and loadAll clears its journal", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    await store.save(makeRecord("kept"), [logEvent("kept")]);
    const gone = await store.save(makeRecord("gone"), [logEvent("a")]);
    assertEquals(await store.remove("gone"), true);
    assertEquals(await listDir(dir), ["kept.journal.jsonl", "kept.json"]);

    // What a crash between the two unlinks of remove() leaves: the journal alone.
    await Deno.writeTextFile(join(dir, "half.journal.jsonl"), commitText(gone));
    await using fresh = new FileTaskStore(dir);
    const { tasks, skipped } = await fresh.loadAll();
    assertEquals(tasks.map((task) => task.id), ["kept"]);
    assertEquals(skipped, []);
    assertEquals(await listDir(dir), ["kept.journal.jsonl", "kept.json"]);
  });
});

Deno.test("loadAll creates a missing directory", async () => {
  await withStoreDir(async (dir) => {
    const missing = join(dir, "states", "nested");
    assertEquals(await new FileTaskStore(missing).loadAll(), { tasks: [], skipped: [] });
    assert((await Deno.stat(missing)).isDirectory);
  });
});

Deno.test("a journal shorter than its record is reported by loadAll and refused by save", async () => {
  await withStoreDir(async (dir) => {
    const record = await saveOnce(dir, makeRecord("t1"), [
      logEvent("a"),
      logEvent("b"),
    ]);
    const { eventsBytes } = record;
    const recordText = await Deno.readTextFile(join(dir, "t1.json"));
    const journal = join(dir, "t1.journal.jsonl");
    await Deno.remove(journal);

    await using store = new FileTaskStore(dir);
    assertEquals(await store.loadAll(), {
      tasks: [],
      skipped: [{
        file: "t1.json",
        reason: `Journal "t1.journal.jsonl" has 0 bytes, fewer than the ${eventsBytes} ` +
          "the record accounts for",
      }],
    });
    const error = await assertRejects(
      () => store.save({ ...record, pauseCount: 2 }, [logEvent("c")]),
      UnavailableError,
    );
    assertEquals(
      error.message,
      `The journal of task "t1" is shorter than its record: 0 bytes, fewer than the ` +
        `${eventsBytes} the record accounts for (corrupted)`,
    );
    assertEquals(await listDir(dir), ["t1.json"]);
    await assertRejects(() => store.readEvents(record), UnavailableError, "shorter");

    await Deno.writeTextFile(journal, line(logEvent("a")));
    const { tasks, skipped } = await store.loadAll();
    assertEquals(tasks, []);
    assertEquals(skipped.map((s) => s.file), ["t1.json"]);
    await assertRejects(
      () => store.save({ ...record, pauseCount: 2 }, [logEvent("c")]),
      UnavailableError,
      "shorter than its record",
    );
    await assertRejects(() => store.readEvents(record), UnavailableError, "shorter");
    assertEquals(await Deno.readTextFile(journal), line(logEvent("a")));
    assertEquals(await Deno.readTextFile(join(dir, "t1.json")), recordText);
  });
});

Deno.test("loadAll loads more records than it reads at once", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir, { fsync: false });
    const ids = Array.from({ length: 150 }, (_, i) => `task-${String(i).padStart(3, "0")}`);
    await Promise.all(ids.map((id) => store.save(makeRecord(id), [logEvent(id)])));
    const { tasks, skipped } = await new FileTaskStore(dir).loadAll();
    assertEquals(skipped, []);
    assertEquals(tasks.map((t) => t.id), ids);
  });
});

Deno.test("a save whose record's temp file cannot be written is taken back from the journal", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const journal = join(dir, "t1.journal.jsonl");
    let record = await store.save(makeRecord("t1"), [logEvent("a")]);
    const { writeTextFile } = Deno;
    // The write fails at once (while the journal commits) or late (after it committed).
    for (const delayMs of [-1, 50]) {
      const committed = await Deno.readTextFile(journal);
      Deno.writeTextFile = async () => {
        if (delayMs >= 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
        throw new Deno.errors.PermissionDenied("Permission denied (os error 13)");
      };
      try {
        const error = await assertRejects(
          () =>
            store.save(
              { ...record, status: "running", pauseCount: record.pauseCount + 1 },
              [logEvent("b")],
            ),
          UnavailableError,
        );
        assertEquals(error.message, 'Cannot save task "t1": Permission denied (os error 13)');
      } finally {
        Deno.writeTextFile = writeTextFile;
      }
      assertEquals(await Deno.readTextFile(journal), committed);
      assertEquals(await listDir(dir), ["t1.journal.jsonl", "t1.json"]);
      assertEquals(await new FileTaskStore(dir).loadAll(), { tasks: [record], skipped: [] });
      record = await store.save({ ...record, pauseCount: record.pauseCount + 1 }, [logEvent("c")]);
    }
    assertEquals(await store.readEvents(record), [logEvent("a"), logEvent("c"), logEvent("c")]);
  });
});

Deno.test("save reports a failing journal append as UnavailableError and keeps the record", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    const before = await store.save(makeRecord("t1"), []);
    const recordPath = join(dir, "t1.json");
    const recordText = await Deno.readTextFile(recordPath);
    const journal = join(dir, "t1.journal.jsonl");
    const journalText = await Deno.readTextFile(journal);
    await Deno.remove(journal);
    await Deno.mkdir(journal);
    const error = await assertRejects(
      () => store.save({ ...before, pauseCount: 2 }, [logEvent("a")]),
      UnavailableError,
    );
    assertEquals(error.status, 503);
    assert(error.message.startsWith('Cannot append to the journal of task "t1": '), error.message);
    assertInstanceOf(error.cause, Error);
    assertEquals(await Deno.readTextFile(recordPath), recordText);
    assertEquals(await listDir(dir), ["t1.journal.jsonl", "t1.json"]);

    await using restarted = new FileTaskStore(dir);
    const cutError = await assertRejects(
      () => restarted.save({ ...before, pauseCount: 2 }, [logEvent("a")]),
      UnavailableError,
    );
    assert(
      cutError.message.startsWith('Cannot cut back the journal of task "t1": '),
      cutError.message,
    );
    assertEquals(await Deno.readTextFile(recordPath), recordText);
    // The record is read with its journal, which cannot be read now.
    await assertRejects(() => restarted.readRecord("t1"), UnavailableError, "Is a directory");

    await Deno.remove(journal);
    await Deno.writeTextFile(journal, journalText);
    assertEquals(await restarted.readRecord("t1"), before);
    const after = await restarted.save({ ...before, pauseCount: 2 }, [logEvent("a")]);
    assertEquals(await restarted.readEvents(after), [logEvent("a")]);
  });
});

Deno.test({
  name: "a journal that is a symlink (to /dev/full) is refused with 409, never written through",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await withStoreDir(async (dir) => {
      await using store = new FileTaskStore(dir);
      const before = await store.save(makeRecord("t1"), []);
      await Deno.remove(join(dir, "t1.journal.jsonl"));
      await Deno.symlink("/dev/full", join(dir, "t1.journal.jsonl"));
      const error = await assertRejects(
        () => store.save({ ...before, pauseCount: 2 }, [logEvent("a")]),
        ConflictError,
      );
      assertEquals(
        error.message,
        'Cannot append to the journal of task "t1": Refusing "t1.journal.jsonl": it is a ' +
          "symbolic link, not a regular file",
      );
      await assertRejects(() => store.readRecord("t1"), ConflictError, "symbolic link");
    });
  },
});

Deno.test({
  name: "a new task whose journal name is a planted symlink is refused; the target is untouched",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await withStoreDir(async (dir) => {
      const victim = join(dir, "..", `victim-${crypto.randomUUID()}.txt`);
      await Deno.writeTextFile(victim, "precious");
      try {
        await using store = new FileTaskStore(dir);
        await store.loadAll();
        // Planted while the store runs (at startup an orphan journal is removed).
        await Deno.symlink(victim, join(dir, "victim.journal.jsonl"));
        await assertRejects(
          () => store.save(makeRecord("victim"), [logEvent("a")]),
          ConflictError,
          "symbolic link",
        );
        assertEquals(await Deno.readTextFile(victim), "precious");
        assertEquals(await listDir(dir), ["victim.journal.jsonl"]);
      } finally {
        await Deno.remove(victim);
      }
    });
  },
});

Deno.test({
  name: "loadAll skips a FIFO and a symlink named like records without opening them",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await withStoreDir(async (dir) => {
      await using store = new FileTaskStore(dir);
      const kept = await store.save(makeRecord("t1"), []);
      const fifo = new Deno.Command("mkfifo", { args: [join(dir, "x.json")] });
      assertEquals((await fifo.output()).code, 0);
      await Deno.symlink(join(dir, "t1.json"), join(dir, "y.json"));
      const { tasks, skipped } = await new FileTaskStore(dir).loadAll();
      assertEquals(tasks, [kept]);
      assertEquals(skipped, [
        { file: "x.json", reason: "Not a regular file (a FIFO, socket or device): not opened" },
        { file: "y.json", reason: "A symbolic link, not a regular file: not followed" },
      ]);
    });
  },
});

Deno.test({
  name: "state files are created 0600 and the directory 0700",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await withStoreDir(async (parent) => {
      const dir = join(parent, "fresh");
      await using store = new FileTaskStore(dir);
      await store.loadAll();
      const record = await store.save(makeRecord("t1"), [logEvent("a")]);
      await store.save({ ...record, pauseCount: 2 }, []);
      assertEquals((await Deno.stat(dir)).mode! & 0o777, 0o700);
      for (const name of await listDir(dir)) {
        assertEquals((await Deno.stat(join(dir, name))).mode! & 0o777, 0o600, name);
      }
    });
  },
});

Deno.test({
  name: "save into a read-only directory rejects with UnavailableError, old record readable",
  ignore: !READ_ONLY_DIRS_REFUSE_WRITES,
  fn: async () => {
    await withStoreDir(async (dir) => {
      await using store = new FileTaskStore(dir);
      const before = await store.save(makeRecord("t1"), [logEvent("a")]);
      const journal = join(dir, "t1.journal.jsonl");
      const committed = await Deno.readTextFile(journal);
      await Deno.chmod(dir, 0o500);
      try {
        const error = await assertRejects(
          () => store.save({ ...before, pauseCount: 2 }, [logEvent("b")]),
          UnavailableError,
        );
        assert(error.message.startsWith('Cannot save task "t1": '), error.message);
        assertInstanceOf(error.cause, Deno.errors.PermissionDenied);
        assertEquals(await store.readRecord("t1"), before);
        assertEquals(await listDir(dir), ["t1.journal.jsonl", "t1.json"]);
        assertEquals(await store.readEvents(before), [logEvent("a")]);
        // The journal commit of the failed save was taken back.
        assertEquals(await Deno.readTextFile(journal), committed);
      } finally {
        await Deno.chmod(dir, 0o700);
      }
      const next = { ...before, pauseCount: 2 };
      const retried = await store.save(next, [logEvent("c")]);
      assertEquals(await store.readEvents(retried), [logEvent("a"), logEvent("c")]);
      assertEquals(
        await Deno.readTextFile(journal),
        committed + line(logEvent("c")) + commitText(next),
      );
    });
  },
});

Deno.test("a refused id creates no file anywhere", async () => {
  await withStoreDir(async (dir) => {
    const storeDir = join(dir, "states");
    await using store = new FileTaskStore(storeDir);
    await store.loadAll();
    await assertRejects(() => store.save(makeRecord("../escape"), [logEvent("a")]));
    assertEquals(await listDir(dir), ["states"]);
    assertEquals(await listDir(storeDir), []);
  });
});

const INTEGRITY_KEY = "journal-key-for-tests-0123";

Deno.test("with an integrity key, saves read back the same, live and after a restart", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir, { integrityKey: INTEGRITY_KEY });
    await store.loadAll();
    let record = await store.save(makeRecord("t1", { result: { ok: true } }), [requestEvent("r1")]);
    const older = record;
    record = await store.save({ ...record, pauseCount: 2 }, [logEvent("two")]);
    record = await store.save({ ...record, pauseCount: 3 }, []);
    assertEquals(await store.readRecord("t1"), record);
    assertEquals(await store.readEvents(record), [requestEvent("r1"), logEvent("two")]);
    await using restarted = new FileTaskStore(dir, { integrityKey: INTEGRITY_KEY });
    assertEquals(await restarted.loadAll(), { tasks: [record], skipped: [] });
    // A save from an older record cuts the journal back and signs on from there.
    const redone = await restarted.save({ ...older, pauseCount: 5 }, [logEvent("redo")]);
    assertEquals(await restarted.readEvents(redone), [requestEvent("r1"), logEvent("redo")]);
    await using again = new FileTaskStore(dir, { integrityKey: INTEGRITY_KEY });
    assertEquals(await again.loadAll(), { tasks: [redone], skipped: [] });
    assertEquals(await again.readEvents(redone), [requestEvent("r1"), logEvent("redo")]);
  });
});

Deno.test("with an integrity key, an edited journal line refuses the task: skipped at start, 409 when read", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir, { integrityKey: INTEGRITY_KEY });
    await store.loadAll();
    let record = await store.save(makeRecord("t1"), [requestEvent("r1")]);
    record = await store.save({ ...record, pauseCount: 2 }, [logEvent("paid 10")]);
    await store.save(makeRecord("t2"), [logEvent("other")]);
    const journal = join(dir, "t1.journal.jsonl");
    const original = await Deno.readTextFile(journal);
    for (const line of original.trimEnd().split("\n")) {
      assert(/,"mac":"[0-9a-f]{64}"\}$/.test(line), line);
    }
    assertEquals(await store.readEvents(record), [requestEvent("r1"), logEvent("paid 10")]);

    await Deno.writeTextFile(journal, original.replace("paid 10", "paid 99"));
    const error = await assertRejects(() => store.readEvents(record), ConflictError);
    assertEquals(
      error.message,
      'Task "t1" failed its integrity check: line 3 does not match its MAC (edited, moved or ' +
        "from another task)",
    );
    const { tasks, skipped } = await new FileTaskStore(dir, { integrityKey: INTEGRITY_KEY })
      .loadAll();
    assertEquals(tasks.map((t) => t.id), ["t2"]);
    assertEquals(skipped.map((s) => s.file), ["t1.json"]);
    assert(skipped[0]!.reason.includes("failed its integrity check"), skipped[0]!.reason);

    // Another task's journal, valid in itself, does not pass for this one.
    await Deno.copyFile(join(dir, "t2.journal.jsonl"), journal);
    const copied = await new FileTaskStore(dir, { integrityKey: INTEGRITY_KEY }).loadAll();
    assertEquals(copied.skipped.map((s) => s.file), ["t1.json"]);

    // Without the key the same files load: the check is opt-in.
    await Deno.writeTextFile(journal, original);
    const plain = await new FileTaskStore(dir).loadAll();
    assertEquals(plain.tasks.map((t) => t.id), ["t1", "t2"]);
  });
});

Deno.test("with an integrity key, a garbled committed line cannot roll the task back to an earlier commit", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir, { integrityKey: INTEGRITY_KEY });
    await store.loadAll();
    let record = await store.save(makeRecord("t1"), [logEvent("a")]);
    record = await store.save({ ...record, pauseCount: 2 }, [logEvent("b")]);
    await store.save({ ...record, pauseCount: 3 }, [logEvent("c")]);
    const journal = join(dir, "t1.journal.jsonl");
    const lines = (await Deno.readTextFile(journal)).split("\n");
    lines[2] = "not json";
    await Deno.writeTextFile(journal, lines.join("\n"));
    const { tasks, skipped } = await new FileTaskStore(dir, { integrityKey: INTEGRITY_KEY })
      .loadAll();
    assertEquals(tasks, []);
    assert(skipped[0]!.reason.includes("failed its integrity check"), skipped[0]!.reason);
  });
});

const SEALING_KEY = "sealing-key-for-tests-0123";

Deno.test("with an encryption key, request and response secrets are sealed on disk and read back in clear", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir, {
      encryptionKey: SEALING_KEY,
      integrityKey: INTEGRITY_KEY,
    });
    await store.loadAll();
    const request: TaskEvent = {
      type: "request",
      step: 0,
      index: 0,
      request: {
        id: "r1",
        url: "https://api.example.com/charge",
        options: {
          method: "POST",
          headers: { authorization: "Bearer sk-live-9" },
          body: "card=4242",
        },
        timestamp: 1_700_000_000_000,
      },
    };
    const pendingRequest = request.type === "request" ? request.request : undefined!;
    let record = await store.save(makeRecord("t1", { pending: [pendingRequest] }), [request]);
    assertEquals(record.pending, [pendingRequest]);
    const response: TaskEvent = {
      type: "response",
      step: 1,
      at: 1_700_000_000_500,
      response: {
        id: "r1",
        success: true,
        status: 200,
        headers: { "set-cookie": "sid=upstream-secret" },
        body: '{"receipt":"rc-77"}',
        data: { receipt: "rc-77" },
        timestamp: 1_700_000_000_400,
      },
    };
    record = await store.save({ ...record, pending: [], pauseCount: 2 }, [response]);
    for (const name of ["t1.json", "t1.journal.jsonl"]) {
      const text = await Deno.readTextFile(join(dir, name));
      for (const secret of ["sk-live-9", "card=4242", "sid=upstream-secret", "rc-77"]) {
        assert(!text.includes(secret), `${name} holds ${secret}`);
      }
      assert(text.includes("https://api.example.com/charge") || name === "t1.json", name);
    }
    assertEquals(await store.readEvents(record), [request, response]);
    await using restarted = new FileTaskStore(dir, {
      encryptionKey: SEALING_KEY,
      integrityKey: INTEGRITY_KEY,
    });
    assertEquals((await restarted.loadAll()).tasks, [record]);
    assertEquals(await restarted.readEvents(record), [request, response]);

    // Another key cannot open them: the task is refused, never read as garbage.
    await using wrong = new FileTaskStore(dir, {
      encryptionKey: "another-key-0123456789",
      integrityKey: INTEGRITY_KEY,
    });
    await assertRejects(
      () => wrong.readEvents(record),
      ConflictError,
      "another JOURNAL_ENCRYPTION_KEY",
    );
  });
});

Deno.test("with an encryption key, the variables view (globals a response filled) is sealed in the record and commit lines", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir, { encryptionKey: SEALING_KEY });
    await store.loadAll();
    const vm = {
      id: "vm-1",
      code: "const t = await (await fetch('https://auth.example.com')).json(); t",
      variables: { t: { token: "sk-live-variable" } },
      timestamp: 1,
      version: 1 as const,
      variant: "sync" as const,
      seed: 1,
      globals: {},
      pending: [],
      droppedLogs: 0,
    };
    const first = await store.save(makeRecord("t1"), []);
    const saved = await store.save({ ...first, vm }, []);
    for (const name of ["t1.json", "t1.journal.jsonl"]) {
      const text = await Deno.readTextFile(join(dir, name));
      assert(!text.includes("sk-live-variable"), `${name} holds the token`);
    }
    assertEquals(saved.vm?.variables, vm.variables);
    const reloaded = await new FileTaskStore(dir, { encryptionKey: SEALING_KEY }).loadAll();
    assertEquals(reloaded.tasks, [saved]);
  });
});

Deno.test("with an encryption key, a paused task's pending request is sealed in the record and opened at load", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir, { encryptionKey: SEALING_KEY });
    await store.loadAll();
    const pending = {
      id: "r1",
      url: "https://api.example.com/x",
      options: { headers: { "x-api-key": "key-5" } },
      timestamp: 1,
    };
    const saved = await store.save(makeRecord("t1", { pending: [pending] }), []);
    assert(!(await Deno.readTextFile(join(dir, "t1.json"))).includes("key-5"));
    assertEquals((await new FileTaskStore(dir, { encryptionKey: SEALING_KEY }).loadAll()).tasks, [
      saved,
    ]);
    assertEquals(
      await new FileTaskStore(dir, { encryptionKey: SEALING_KEY }).readRecord("t1"),
      saved,
    );
    const { tasks, skipped } = await new FileTaskStore(dir, {
      encryptionKey: "wrong-key-0123456789",
    })
      .loadAll();
    assertEquals(tasks, []);
    assert(skipped[0]!.reason.includes("another JOURNAL_ENCRYPTION_KEY"), skipped[0]!.reason);
  });
});

// --- the index file ------------------------------------------------------------------------

/** Saves task `id` in `status` into `store`. */
function saveTask(store: FileTaskStore, id: string, status: TaskRecord["status"]) {
  return store.save(makeRecord(id, { status }), [logEvent(id)]);
}

const indexPath = (dir: string) => join(dir, "_index.tsv");
const listIds = async (store: FileTaskStore) =>
  (await store.list({ limit: 100 })).tasks.map((task) => `${task.id}:${task.status}`);

Deno.test("open reads the index file and only the records of running and paused tasks", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    await store.open();
    const paused = await saveTask(store, "p", "paused");
    await saveTask(store, "c", "completed");
    // A finished task's files are not read at a start: its record may even be unreadable.
    await Deno.writeTextFile(join(dir, "c.json"), "not read");
    await using again = new FileTaskStore(dir);
    assertEquals(await again.open(), { active: [paused], skipped: [] });
    assertEquals(await listIds(again), ["c:completed", "p:paused"]);
    await again.close();
  });
});

Deno.test("a missing or unreadable index file is rebuilt from the records", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    await store.open();
    const paused = await saveTask(store, "p", "paused");
    await saveTask(store, "c", "completed");
    await Deno.remove(indexPath(dir));
    await using rebuilt = new FileTaskStore(dir);
    assertEquals(await rebuilt.open(), { active: [paused], skipped: [] });
    assertEquals(await listIds(rebuilt), ["c:completed", "p:paused"]);
    await Deno.writeTextFile(indexPath(dir), "flowstate-index\t1\np\tpaused\tx\n");
    await using again = new FileTaskStore(dir);
    const { active, skipped } = await again.open();
    assertEquals(active, [paused]);
    assertEquals(skipped, [{
      file: "_index.tsv",
      reason: "Line 2 is not an index line; rebuilt from the records",
    }]);
    assertEquals(await listIds(again), ["c:completed", "p:paused"]);
    await again.close();
  });
});

Deno.test("a torn last line of the index file is ignored and cut off", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    await store.open();
    await saveTask(store, "c", "completed");
    const whole = await Deno.readTextFile(indexPath(dir));
    await Deno.writeTextFile(indexPath(dir), "zz\tcomp", { append: true });
    await using again = new FileTaskStore(dir);
    assertEquals((await again.open()).skipped, []);
    assertEquals(await listIds(again), ["c:completed"]);
    await saveTask(again, "d", "completed");
    const text = await Deno.readTextFile(indexPath(dir));
    assert(text.startsWith(whole) && !text.includes("zz"), text);
    await again.close();
  });
});

Deno.test("open corrects index lines a crash left behind: a task found finished or never committed", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    await store.open();
    const running = await saveTask(store, "r", "running");
    await saveTask(store, "gone", "running");
    // The finished task's own line was lost (it is appended without a flush), and the other
    // task's first commit never happened (its line is flushed before it).
    const before = await Deno.readTextFile(indexPath(dir));
    await store.save({ ...running, status: "completed" }, []);
    await Deno.writeTextFile(indexPath(dir), before);
    await Deno.remove(join(dir, "gone.json"));
    await Deno.remove(join(dir, "gone.journal.jsonl"));
    await using again = new FileTaskStore(dir);
    assertEquals(await again.open(), { active: [], skipped: [] });
    assertEquals(await listIds(again), ["r:completed"]);
    assertEquals(again.counts(), { running: 0, paused: 0, completed: 1, error: 0, cancelled: 0 });
    await again.close();
    await using third = new FileTaskStore(dir);
    await third.open();
    assertEquals(await listIds(third), ["r:completed"]);
    await third.close();
  });
});

Deno.test("a removal interrupted after its index line is completed at the next open", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    await store.open();
    const record = await saveTask(store, "x", "completed");
    await saveTask(store, "y", "completed");
    // What a kill between the removal's index line and its file removals leaves.
    const createdMs = Date.parse(record.createdAt);
    await Deno.writeTextFile(indexPath(dir), `x\tremoved\t${createdMs}\n`, { append: true });
    await using again = new FileTaskStore(dir);
    await again.open();
    assertEquals(await again.readRecord("x"), null);
    assertEquals(await listIds(again), ["y:completed"]);
    await again.close();
    assertEquals(await listDir(dir), ["y.journal.jsonl", "y.json"]);
  });
});

Deno.test("a task created anew after its id was removed survives the next open", async () => {
  await withStoreDir(async (dir) => {
    await using store = new FileTaskStore(dir);
    await store.open();
    await saveTask(store, "x", "completed");
    assertEquals(await store.remove("x"), true);
    const again = await store.save(
      makeRecord("x", { status: "completed", createdAt: "2025-02-01T00:00:00.000Z" }),
      [logEvent("anew")],
    );
    await using reopened = new FileTaskStore(dir);
    await reopened.open();
    assertEquals(await reopened.readRecord("x"), again);
    assertEquals(await listIds(reopened), ["x:completed"]);
    await reopened.close();
  });
});

for (
  const [variant, options] of [
    ["with an integrity key", { integrityKey: "integrity-key-0123456789" }],
    ["with an encryption key", { encryptionKey: SEALING_KEY }],
  ] as const
) {
  Deno.test(`readTail ${variant}: the journal's tail reads back in clear; with a MAC an edited line of it is refused`, async () => {
    await withStoreDir(async (dir) => {
      await using store = new FileTaskStore(dir, options);
      await store.loadAll();
      let record = await store.save(makeRecord("t1"), [logEvent("first")]);
      for (let i = 0; i < 30; i++) record = await store.save(record, [logEvent(`line ${i}`)]);
      const all = await store.readEvents(record);
      const tail = await store.readTail(record, 2000);
      assert(tail.skippedBytes > 0 && tail.events.length > 0);
      assertEquals(tail.events, all.slice(-tail.events.length));
      if (!("integrityKey" in options)) return;
      // A line of the tail edited: refused, as the whole journal is.
      const path = join(dir, "t1.journal.jsonl");
      const text = await Deno.readTextFile(path);
      await Deno.writeTextFile(path, text.replace("line 29", "line 92"));
      const error = await assertRejects(() => store.readTail(record, 2000));
      assertInstanceOf(error, ConflictError);
    });
  });
}
