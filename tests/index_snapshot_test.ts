/**
 * The index's binary snapshot and the index file that names it: a store reopens from the
 * snapshot and the lines after it, an index file of version 1 is read and rewritten, a
 * damaged snapshot makes the store rebuild from the records, and the index knows which
 * tasks have a callback URL.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "node:path";
import { FileTaskStore } from "../lib/store/file_task_store.ts";
import { IndexFile, parseIndex } from "../lib/store/index_file.ts";
import { decodeSnapshot, encodeSnapshot } from "../lib/store/index_snapshot.ts";
import { TaskIndex } from "../lib/store/task_index.ts";
import type { TaskRecord } from "../lib/service/task_types.ts";
import { logEvent, makeRecord } from "./task_store_contract.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-index-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const at = (second: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, second)).toISOString();

function task(id: string, second: number, overrides: Partial<TaskRecord> = {}): TaskRecord {
  return makeRecord(id, { createdAt: at(second), updatedAt: at(second + 1), ...overrides });
}

const ids = async (store: FileTaskStore, query: { callback?: true } = {}) =>
  (await store.list({ limit: 100, ...query })).tasks.map((t) => `${t.id}:${t.status}`);

/** Rewrites the store's index file as the store does once it holds many lines. */
async function rewriteIndex(dir: string): Promise<void> {
  const path = join(dir, "_index.tsv");
  const file = new IndexFile(path, { fsync: false });
  const bytes = await Deno.readFile(path);
  const header = new TextDecoder().decode(bytes).split("\n")[0]!;
  const snapshotName = header.split("\t")[2];
  const snapshot = snapshotName ? await Deno.readFile(join(dir, snapshotName)) : null;
  const loaded = parseIndex(bytes, snapshot);
  if (typeof loaded === "string") throw new Error(loaded);
  await file.adopt(loaded);
  await file.rewrite(() => ({ index: loaded.index, removals: loaded.removals }));
  await file.close();
}

Deno.test("a snapshot holds the index's tasks, names and order; dead slots are left out", () => {
  const index = new TaskIndex();
  for (let i = 0; i < 50; i++) {
    index.set({
      id: `t${String(i).padStart(2, "0")}`,
      name: i % 3 === 0 ? `t${String(i).padStart(2, "0")}` : `job-${i % 4}`,
      status: i % 5 === 0 ? "paused" : "completed",
      pauseCount: i,
      createdAt: at(100 - i), // Inserted newest first: each goes to the front.
      updatedAt: at(200 + i),
      callback: i % 7 === 0,
    });
  }
  index.delete("t10", at(90));
  const snapshot = decodeSnapshot(encodeSnapshot(index));
  if (typeof snapshot === "string") throw new Error(snapshot);
  const decoded: TaskIndex = snapshot;
  assertEquals([...decoded.entries()], [...index.entries()]);
  assertEquals(decoded.counts(), index.counts());
  assertEquals(
    decoded.list({ limit: 5, name: "job-1", order: "newest" }),
    index.list({
      limit: 5,
      name: "job-1",
      order: "newest",
    }),
  );
  assertEquals(
    decoded.list({ limit: 100, callback: true }).tasks.map((t) => t.id),
    ["t49", "t42", "t35", "t28", "t21", "t14", "t07", "t00"],
  );
  // It grows on like any index.
  decoded.set({ ...index.list({ limit: 1 }).tasks[0]!, id: "zz", createdAt: at(300) });
  assertEquals(decoded.size, index.size + 1);
  const bytes = encodeSnapshot(index);
  bytes[8] = 99; // The task count.
  assertEquals(typeof decodeSnapshot(bytes), "string");
});

Deno.test("a store reopens from its index snapshot and the lines written after it", async () => {
  await withDir(async (dir) => {
    const store = new FileTaskStore(dir, { fsync: false });
    await store.open();
    const paused = await store.save(task("p", 1, { status: "paused" }), [logEvent("p")]);
    await store.save(task("c", 2, { status: "completed", callbackUrl: "http://x.test/" }), []);
    await store.close();
    await rewriteIndex(dir);
    assert((await Deno.readTextFile(join(dir, "_index.tsv"))).startsWith("flowstate-index\t2\t"));
    const after = new FileTaskStore(dir, { fsync: false });
    await after.open();
    await after.save(task("d", 3, { status: "completed" }), []);
    await after.remove("c");
    await after.close();

    const again = new FileTaskStore(dir, { fsync: false });
    // c.json is not read at the start: finished tasks are only indexed.
    assertEquals(await again.open(), { active: [paused], skipped: [] });
    assertEquals(await ids(again), ["p:paused", "d:completed"]);
    await again.close();
    await rewriteIndex(dir);
    const third = new FileTaskStore(dir, { fsync: false });
    await third.open();
    assertEquals(await ids(third), ["p:paused", "d:completed"]);
    await third.close();
    const files = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".bin"));
    assertEquals(files.length, 1, `one snapshot is kept: ${files}`);
  });
});

Deno.test("the index tells which tasks have a callback URL; an index file of version 1 does not know, and is rewritten", async () => {
  await withDir(async (dir) => {
    const store = new FileTaskStore(dir, { fsync: false });
    await store.open();
    await store.save(task("a", 1, { status: "completed", callbackUrl: "http://x.test/" }), []);
    await store.save(task("b", 2, { status: "completed" }), []);
    assertEquals(await ids(store, { callback: true }), ["a:completed"]);
    await store.close();

    const v1 = "flowstate-index\t1\n" +
      `a\tcompleted\t${Date.parse(at(1))}\t${Date.parse(at(2))}\t1\t"Task a"\n` +
      `b\tcompleted\t${Date.parse(at(2))}\t${Date.parse(at(3))}\t1\t"Task b"\n`;
    await Deno.writeTextFile(join(dir, "_index.tsv"), v1);
    const old = new FileTaskStore(dir, { fsync: false });
    assertEquals(await old.open(), { active: [], skipped: [] });
    assertEquals(await ids(old), ["a:completed", "b:completed"]);
    assertEquals(await ids(old, { callback: true }), ["a:completed", "b:completed"]);
    await old.save(task("c", 3, { status: "completed" }), []);
    await old.close();
    const text = await Deno.readTextFile(join(dir, "_index.tsv"));
    assert(text.startsWith("flowstate-index\t2\t_index."), text);
    const again = new FileTaskStore(dir, { fsync: false });
    await again.open();
    assertEquals(await ids(again), ["a:completed", "b:completed", "c:completed"]);
    assertEquals(await ids(again, { callback: true }), ["a:completed", "b:completed"]);
    await again.close();
  });
});

Deno.test("a damaged or missing index snapshot makes the store rebuild its index from the records", async () => {
  await withDir(async (dir) => {
    const store = new FileTaskStore(dir, { fsync: false });
    await store.open();
    const paused = await store.save(task("p", 1, { status: "paused" }), []);
    await store.save(task("c", 2, { status: "completed" }), []);
    await store.close();
    await rewriteIndex(dir);
    const name = (await Deno.readTextFile(join(dir, "_index.tsv"))).split("\n")[0]!.split("\t")[2]!;
    await Deno.writeFile(join(dir, name), new Uint8Array([1, 2, 3]));
    const again = new FileTaskStore(dir, { fsync: false });
    const { active, skipped } = await again.open();
    assertEquals(active, [paused]);
    assertEquals(skipped.length, 1);
    assert(skipped[0]!.reason.includes("rebuilt from the records"), skipped[0]!.reason);
    assertEquals(await ids(again), ["p:paused", "c:completed"]);
    await again.close();
    await Deno.remove(
      join(dir, (await Deno.readTextFile(join(dir, "_index.tsv"))).split("\n")[0]!.split("\t")[2]!),
    );
    const third = new FileTaskStore(dir, { fsync: false });
    assertEquals((await third.open()).active, [paused]);
    await third.close();
  });
});
