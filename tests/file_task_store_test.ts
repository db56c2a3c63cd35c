import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { join } from "node:path";
import { FileTaskStore } from "../lib/file_task_store.ts";
import { UnavailableError } from "../lib/http_errors.ts";
import type { TaskEvent } from "../lib/task_types.ts";
import {
  logEvent,
  makeRecord,
  requestEvent,
  testTaskStoreContract,
} from "./task_store_contract.ts";

testTaskStoreContract("FileTaskStore", async () => {
  const dir = await Deno.makeTempDir();
  return {
    store: new FileTaskStore(dir),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
});

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

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

const line = (event: TaskEvent) => JSON.stringify(event) + "\n";

Deno.test("FileTaskStore writes the record pretty-printed and one journal line per event", async () => {
  await withStoreDir(async (dir) => {
    const store = new FileTaskStore(dir);
    const events = [requestEvent("r1"), logEvent("hi")];
    const written = await store.save(makeRecord("t1"), events);
    assertEquals(
      await Deno.readTextFile(join(dir, "t1.json")),
      JSON.stringify(written, null, 2) + "\n",
    );
    assertEquals(await Deno.readTextFile(join(dir, "t1.journal.jsonl")), events.map(line).join(""));
    assertEquals(await listDir(dir), ["t1.journal.jsonl", "t1.json"]);
  });
});

Deno.test("FileTaskStore with fsync off stores the same files", async () => {
  await withStoreDir(async (dir) => {
    const store = new FileTaskStore(dir, { fsync: false });
    const written = await store.save(makeRecord("t1"), [logEvent("a")]);
    assertEquals(await new FileTaskStore(dir).readRecord("t1"), written);
    assertEquals(await new FileTaskStore(dir).readEvents(written), [logEvent("a")]);
  });
});

Deno.test("readEvents ignores uncommitted lines after eventsBytes", async () => {
  await withStoreDir(async (dir) => {
    const store = new FileTaskStore(dir);
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
    const record = await new FileTaskStore(dir).save(makeRecord("t1"), [logEvent("a")]);
    const journal = join(dir, "t1.journal.jsonl");
    // What a crash between appending events and writing their record leaves behind.
    await Deno.writeTextFile(journal, line(logEvent("b")) + line(requestEvent("r1")), {
      append: true,
    });
    await Deno.writeTextFile(journal, '{"type":"log","mess', { append: true });

    const restarted = new FileTaskStore(dir);
    assertEquals(await restarted.loadAll(), { tasks: [record], skipped: [] });
    const written = await restarted.save({ ...record, pauseCount: 2 }, [logEvent("c")]);
    const expected = line(logEvent("a")) + line(logEvent("c"));
    assertEquals(await Deno.readTextFile(journal), expected);
    assertEquals(written.eventsBytes, new TextEncoder().encode(expected).length);
    assertEquals(await restarted.readEvents(written), [logEvent("a"), logEvent("c")]);

    const unchanged = await new FileTaskStore(dir).save(written, []);
    assertEquals(unchanged.eventsBytes, written.eventsBytes);
    assertEquals(await Deno.readTextFile(journal), expected);
  });
});

Deno.test("readEvents throws naming the file and line of an unparsable committed line", async () => {
  await withStoreDir(async (dir) => {
    const store = new FileTaskStore(dir);
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
    const store = new FileTaskStore(dir);
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
    const store = new FileTaskStore(dir);
    const good = await store.save(makeRecord("t1"), []);
    await Deno.writeTextFile(join(dir, ".t1.json.0123456789abcdef.tmp"), '{"id": "t1", "na');
    await Deno.writeTextFile(join(dir, "keep.tmp"), "mine");
    const { tasks, skipped } = await store.loadAll();
    assertEquals(tasks, [good]);
    assertEquals(skipped, []);
    assertEquals(await listDir(dir), ["keep.tmp", "t1.json"]);
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
    const record = await new FileTaskStore(dir).save(makeRecord("t1"), [
      logEvent("a"),
      logEvent("b"),
    ]);
    const { eventsBytes } = record;
    const recordText = await Deno.readTextFile(join(dir, "t1.json"));
    const journal = join(dir, "t1.journal.jsonl");
    await Deno.remove(journal);

    const store = new FileTaskStore(dir);
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
    const store = new FileTaskStore(dir, { fsync: false });
    const ids = Array.from({ length: 150 }, (_, i) => `task-${String(i).padStart(3, "0")}`);
    await Promise.all(ids.map((id) => store.save(makeRecord(id), [logEvent(id)])));
    const { tasks, skipped } = await new FileTaskStore(dir).loadAll();
    assertEquals(skipped, []);
    assertEquals(tasks.map((t) => t.id), ids);
  });
});

Deno.test("save reports a failing journal append as UnavailableError and keeps the record", async () => {
  await withStoreDir(async (dir) => {
    const store = new FileTaskStore(dir);
    const before = await store.save(makeRecord("t1"), []);
    await Deno.mkdir(join(dir, "t1.journal.jsonl"));
    const error = await assertRejects(
      () => store.save({ ...before, pauseCount: 2 }, [logEvent("a")]),
      UnavailableError,
    );
    assertEquals(error.status, 503);
    assert(error.message.startsWith('Cannot append to the journal of task "t1": '), error.message);
    assertInstanceOf(error.cause, Error);
    assertEquals(await store.readRecord("t1"), before);

    const restarted = new FileTaskStore(dir);
    const cutError = await assertRejects(
      () => restarted.save({ ...before, pauseCount: 2 }, [logEvent("a")]),
      UnavailableError,
    );
    assert(
      cutError.message.startsWith('Cannot cut back the journal of task "t1": '),
      cutError.message,
    );
    assertEquals(await restarted.readRecord("t1"), before);
  });
});

Deno.test({
  name: "save reports a full disk with the OS reason and no path",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await withStoreDir(async (dir) => {
      const store = new FileTaskStore(dir);
      const before = await store.save(makeRecord("t1"), []);
      await Deno.symlink("/dev/full", join(dir, "t1.journal.jsonl"));
      const error = await assertRejects(
        () => store.save({ ...before, pauseCount: 2 }, [logEvent("a")]),
        UnavailableError,
      );
      assertEquals(
        error.message,
        'Cannot append to the journal of task "t1": No space left on device (os error 28)',
      );
      assertEquals(await store.readRecord("t1"), before);
    });
  },
});

Deno.test({
  name: "save into a read-only directory rejects with UnavailableError, old record readable",
  ignore: !READ_ONLY_DIRS_REFUSE_WRITES,
  fn: async () => {
    await withStoreDir(async (dir) => {
      const store = new FileTaskStore(dir);
      const before = await store.save(makeRecord("t1"), [logEvent("a")]);
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
      } finally {
        await Deno.chmod(dir, 0o700);
      }
      // The appended event's record was never written: the next save discards it.
      const retried = await store.save({ ...before, pauseCount: 2 }, [logEvent("c")]);
      assertEquals(await store.readEvents(retried), [logEvent("a"), logEvent("c")]);
      assertEquals(
        await Deno.readTextFile(join(dir, "t1.journal.jsonl")),
        line(logEvent("a")) + line(logEvent("c")),
      );
    });
  },
});

Deno.test("a refused id creates no file anywhere", async () => {
  await withStoreDir(async (dir) => {
    const storeDir = join(dir, "states");
    const store = new FileTaskStore(storeDir);
    await store.loadAll();
    await assertRejects(() => store.save(makeRecord("../escape"), [logEvent("a")]));
    assertEquals(await listDir(dir), ["states"]);
    assertEquals(await listDir(storeDir), []);
  });
});
