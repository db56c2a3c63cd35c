import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import {
  appendLines,
  ensureDir,
  isTempFileName,
  readHead,
  readRange,
  readTextOrNull,
  shrinkFile,
  writeFileAtomic,
} from "../lib/store/atomic_file.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
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

Deno.test("ensureDir creates missing parents and accepts an existing directory", async () => {
  await withTempDir(async (dir) => {
    const nested = join(dir, "a", "b", "c");
    await ensureDir(nested);
    assert((await Deno.stat(nested)).isDirectory);
    await ensureDir(nested);
    assert((await Deno.stat(nested)).isDirectory);
  });
});

Deno.test("writeFileAtomic writes text and bytes, replaces the file, leaves no temp file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "record.json");
    await writeFileAtomic(path, "first ✓");
    assertEquals(await Deno.readTextFile(path), "first ✓");
    await writeFileAtomic(path, new TextEncoder().encode("second"), { fsync: false });
    assertEquals(await Deno.readTextFile(path), "second");
    assertEquals(await listDir(dir), ["record.json"]);
  });
});

Deno.test("writeFileAtomic flushes the file and the directory, nothing with fsync off", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "record.json");
    assertEquals(await countFlushes(() => writeFileAtomic(path, "durable")), {
      sync: Deno.build.os === "windows" ? 1 : 2,
      syncData: 0,
    });
    assertEquals(
      await countFlushes(() => writeFileAtomic(path, "cached", { fsync: false })),
      { sync: 0, syncData: 0 },
    );
    assertEquals(await Deno.readTextFile(path), "cached");
    assertEquals(await listDir(dir), ["record.json"]);
  });
});

Deno.test("writeFileAtomic removes its temp file and rejects when the rename fails", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "target");
    await Deno.mkdir(target);
    await Deno.writeTextFile(join(target, "inside"), "x");
    await assertRejects(() => writeFileAtomic(target, "data"));
    assertEquals(await listDir(dir), ["target"]);
    assertEquals(await listDir(target), ["inside"]);
  });
});

Deno.test("writeFileAtomic removes its temp file and rejects when the rename fails, fsync off", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "target");
    await Deno.mkdir(target);
    await Deno.writeTextFile(join(target, "inside"), "x");
    await assertRejects(() => writeFileAtomic(target, "data", { fsync: false }));
    await assertRejects(() => writeFileAtomic(target, new Uint8Array([1]), { fsync: false }));
    assertEquals(await listDir(dir), ["target"]);
  });
});

Deno.test("writeFileAtomic rejects when the directory does not exist", async () => {
  await withTempDir(async (dir) => {
    for (const fsync of [true, false]) {
      await assertRejects(
        () => writeFileAtomic(join(dir, "missing", "file"), "data", { fsync }),
        Deno.errors.NotFound,
      );
    }
    assertEquals(await listDir(dir), []);
  });
});

Deno.test("isTempFileName recognises only temp file names of writeFileAtomic", () => {
  assert(isTempFileName(".task-1.json.0123456789abcdef.tmp"));
  assert(!isTempFileName("task-1.json"));
  assert(!isTempFileName(".task-1.json.tmp"));
  assert(!isTempFileName("task-1.json.0123456789abcdef.tmp"));
  assert(!isTempFileName(".task-1.json.0123456789ABCDEF.tmp"));
});

Deno.test("readTextOrNull returns null for a missing file and the text otherwise", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "file.txt");
    assertEquals(await readTextOrNull(path), null);
    await Deno.writeTextFile(path, "hello");
    assertEquals(await readTextOrNull(path), "hello");
    await assertRejects(() => readTextOrNull(dir));
  });
});

Deno.test("appendLines creates the file, appends, and returns the UTF-8 byte count", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "lines.jsonl");
    assertEquals(await appendLines(path, "one\n"), 4);
    assertEquals(await appendLines(path, "dé\nthree\n", { fsync: false }), 10);
    assertEquals(await Deno.readTextFile(path), "one\ndé\nthree\n");
  });
});

Deno.test("appendLines takes bytes, flushes once, and with create: false never creates", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "lines.jsonl");
    for (const fsync of [true, false]) {
      await assertRejects(
        () => appendLines(path, "one\n", { fsync, create: false }),
        Deno.errors.NotFound,
      );
    }
    assertEquals(await listDir(dir), []);
    const flushes = await countFlushes(async () => {
      assertEquals(await appendLines(path, new TextEncoder().encode("one\n")), 4);
      assertEquals(await appendLines(path, "two\n", { create: false }), 4);
    });
    assertEquals(flushes, { sync: 0, syncData: 2 });
    const none = await countFlushes(async () => {
      assertEquals(await appendLines(path, "three\n", { fsync: false, create: false }), 6);
    });
    assertEquals(none, { sync: 0, syncData: 0 });
    assertEquals(await Deno.readTextFile(path), "one\ntwo\nthree\n");
  });
});

Deno.test("readRange reads from an offset, fewer bytes when the file ends first", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "lines.jsonl");
    assertEquals(await readRange(path, 4, 4), null);
    await Deno.writeTextFile(path, "one\ndé\nthree\n");
    const decode = (bytes: Uint8Array | null) => new TextDecoder().decode(bytes!);
    assertEquals(decode(await readRange(path, 4, 4)), "dé\n");
    assertEquals(decode(await readRange(path, 8, 100)), "three\n");
    assertEquals((await readRange(path, 100, 10))!.length, 0);
    assertEquals(decode(await readRange(path, 0, 3)), "one");
  });
});

Deno.test("readHead reads only the first bytes, fewer when the file is shorter", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "lines.jsonl");
    assertEquals(await readHead(path, 4), null);
    assertEquals(await listDir(dir), []);
    const text = "one\ndé\n" + "x".repeat(200_000);
    await Deno.writeTextFile(path, text);
    assertEquals(new TextDecoder().decode((await readHead(path, 8))!), "one\ndé\n");
    assertEquals((await readHead(path, 0))!.length, 0);
    const all = (await readHead(path, 300_000))!;
    assertEquals(all.length, new TextEncoder().encode(text).length);
    assertEquals(new TextDecoder().decode(all), text);
  });
});

Deno.test("shrinkFile truncates a longer file and returns the size it had", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "lines.jsonl");
    await Deno.writeTextFile(path, 'one\ntwo\nthree\n{"torn');
    assertEquals(await shrinkFile(path, 8), 20);
    assertEquals(await Deno.readTextFile(path), "one\ntwo\n");
    assertEquals(await shrinkFile(path, 8), 8);
    assertEquals(await Deno.readTextFile(path), "one\ntwo\n");
    assertEquals(await shrinkFile(path, 0), 8);
    assertEquals((await Deno.stat(path)).size, 0);
  });
});

Deno.test("shrinkFile flushes the new size only with fsync and only when it truncates", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "lines.jsonl");
    await Deno.writeTextFile(path, "one\ntwo\n");
    assertEquals(await countFlushes(async () => void await shrinkFile(path, 4)), {
      sync: 0,
      syncData: 0,
    });
    await Deno.writeTextFile(path, "two\n", { append: true });
    assertEquals(
      await countFlushes(async () => void await shrinkFile(path, 4, { fsync: true })),
      { sync: 0, syncData: 1 },
    );
    assertEquals(
      await countFlushes(async () => void await shrinkFile(path, 4, { fsync: true })),
      { sync: 0, syncData: 0 },
    );
    assertEquals(await Deno.readTextFile(path), "one\n");
  });
});

Deno.test("shrinkFile never lengthens or creates a file", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "lines.jsonl");
    await Deno.writeTextFile(path, "one\n");
    assertEquals(await shrinkFile(path, 100), 4);
    assertEquals(await Deno.readTextFile(path), "one\n");
    assertEquals(await shrinkFile(join(dir, "missing.jsonl"), 10), 0);
    assertEquals(await listDir(dir), ["lines.jsonl"]);
  });
});
