/**
 * Pending request bodies written once: the file store keeps a large pending body only in
 * its journal's request line, the record and every commit line reference it, and it reads
 * back byte for byte, with an integrity key and with an encryption key too.
 */
import { assert, assertEquals, assertInstanceOf, assertRejects } from "@std/assert";
import { join } from "node:path";
import { FileTaskStore, type FileTaskStoreOptions } from "../lib/store/file_task_store.ts";
import { ConflictError } from "../lib/errors.ts";
import { INLINE_BODY_CHARS } from "../lib/store/pending_bodies.ts";
import type { FetchRequest } from "../lib/engine/types.ts";
import type { TaskEvent, TaskRecord } from "../lib/service/task_types.ts";
import { makeRecord } from "./task_store_contract.ts";

const MIB = 1024 * 1024;

function encodeBase64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

/** A POST of `body` (text) or of `bytes` (not UTF-8: base64). */
function post(id: string, body: { text?: string; bytes?: Uint8Array }): FetchRequest {
  return {
    id,
    url: `https://api.example.com/${id}`,
    options: {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      ...(body.text === undefined ? {} : { body: body.text }),
      ...(body.bytes === undefined ? {} : { bodyBase64: encodeBase64(body.bytes) }),
    },
    timestamp: 1_700_000_000_000,
  };
}

/** `n` bytes that are not UTF-8 (every byte value, repeated). */
function binary(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
}

function requestEvents(requests: readonly FetchRequest[]): TaskEvent[] {
  return requests.map((request, index) => ({ type: "request", step: 1, index, request }));
}

async function withStore(
  options: FileTaskStoreOptions,
  fn: (store: FileTaskStore, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-bodies-" });
  try {
    const store = new FileTaskStore(dir, { fsync: false, ...options });
    await store.open();
    await fn(store, dir);
    await store.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const VARIANTS: [string, FileTaskStoreOptions][] = [
  ["plain", {}],
  ["with an integrity key", { integrityKey: "integrity-key-0123456789" }],
  ["with an encryption key", { encryptionKey: "sealing-key-0123456789" }],
];

for (const [variant, options] of VARIANTS) {
  Deno.test(`pending bodies ${variant}: written once in the journal, referenced by the record and commits, read back byte-exact after a reopen`, async () => {
    await withStore(options, async (store, dir) => {
      const requests = [
        post("r0", { text: "é0".repeat(MIB / 2) }),
        post("r1", { bytes: binary(MIB, 1) }),
        post("r2", { text: "small" }),
        post("r3", { text: "3".repeat(MIB) }),
      ];
      const sum = requests.reduce(
        (n, r) => n + (r.options.body?.length ?? 0) + (r.options.bodyBase64?.length ?? 0),
        0,
      );
      let record = await store.save(makeRecord("t", { status: "running" }), []);
      record = await store.save(
        { ...record, status: "paused", pending: requests, journalLength: requests.length },
        requestEvents(requests),
      );
      const [r0, r1, r2, r3] = record.pending;
      assert(r0!.bodyRef && r1!.bodyRef && r3!.bodyRef, "large bodies are referenced");
      assertEquals(r2!.bodyRef, undefined, "a small body stays in the record");
      assertEquals(r2!.options.body, "small");
      assertEquals(r0!.options.body, undefined);
      assertEquals(r1!.bodyRef!.bytes, MIB);
      assertEquals(r0!.bodyRef!.bytes, new TextEncoder().encode(requests[0]!.options.body).length);

      // Three more commits of the paused task, as responses arrive: none repeats a body.
      for (let i = 0; i < 3; i++) {
        record = await store.save({ ...record, pauseCount: record.pauseCount + 1 }, []);
      }
      const journal = (await Deno.stat(join(dir, "t.journal.jsonl"))).size;
      // Once: the journal holds the bodies (UTF-8 "é" is 2 bytes; sealed, base64 of the
      // ciphertext), not once more per commit.
      const once = options.encryptionKey ? 2 : 1.4;
      assert(journal < sum * once + 64 * 1024, `journal ${journal} bytes for ${sum} of bodies`);
      assert(journal > sum, "the bodies are in the journal");
      const recordFile = (await Deno.stat(join(dir, "t.json"))).size;
      assert(recordFile < 16 * 1024, `record file ${recordFile} bytes`);
      assert(JSON.stringify(record).length < 16 * 1024, "the record in memory is small");

      const reopened = new FileTaskStore(dir, { fsync: false, ...options });
      const { active } = await reopened.open();
      assertEquals(active, [record]);
      for (const [index, pending] of active[0]!.pending.entries()) {
        assertEquals(await reopened.requestWithBody("t", pending), requests[index]);
      }
      await reopened.close();
    });
  });
}

Deno.test("pending bodies: a request journaled by an earlier save keeps its body inline, old records without references still load", async () => {
  await withStore({}, async (store, dir) => {
    const request = post("r0", { text: "x".repeat(INLINE_BODY_CHARS + 1) });
    let record = await store.save(makeRecord("t", { status: "running" }), requestEvents([request]));
    record = await store.save({ ...record, pending: [request] }, []);
    assertEquals(record.pending[0], request, "no request line in this save: kept as it was");
    assertEquals(await store.requestWithBody("t", record.pending[0]!), request);
    const reopened = new FileTaskStore(dir, { fsync: false });
    assertEquals((await reopened.open()).active, [record]);
    await reopened.close();
  });
});

Deno.test("pending bodies with an integrity key: an edited body line is refused when read back (409)", async () => {
  await withStore({ integrityKey: "integrity-key-0123456789" }, async (store, dir) => {
    const request = post("r0", { text: "a".repeat(MIB) });
    let record = await store.save(makeRecord("t", { status: "running" }), []);
    record = await store.save(
      { ...record, pending: [request], journalLength: 1 },
      requestEvents([request]),
    );
    const path = join(dir, "t.journal.jsonl");
    const bytes = await Deno.readFile(path);
    const at = record.pending[0]!.bodyRef!.at + 1000;
    bytes[at] = "b".charCodeAt(0);
    await Deno.writeFile(path, bytes);
    const error = await assertRejects(() => store.requestWithBody("t", record.pending[0]!));
    assertInstanceOf(error, ConflictError);
  });
});

Deno.test("pending bodies: a reference that does not lead to its request line is a 409, not a wrong body", async () => {
  await withStore({}, async (store) => {
    const request = post("r0", { text: "a".repeat(MIB) });
    let record: TaskRecord = await store.save(makeRecord("t", { status: "running" }), []);
    record = await store.save(
      { ...record, pending: [request], journalLength: 1 },
      requestEvents([request]),
    );
    const ref = record.pending[0]!.bodyRef!;
    const wrong = { ...record.pending[0]!, bodyRef: { ...ref, at: 0 } };
    assertInstanceOf(await assertRejects(() => store.requestWithBody("t", wrong)), ConflictError);
  });
});
