/**
 * End-to-end: a paused task holding several large POST bodies costs their size once in its
 * journal and nothing per commit or in its record; after a SIGKILL the restarted server
 * sends them again byte for byte.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import type { TaskRecord } from "../lib/service/task_types.ts";
import { startServer, waitFor } from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";

/** Requests of the task, and the characters of each body (two UTF-8 bytes each). */
const REQUESTS = 5;
const BODY_CHARS = 1024 * 1024;

/** The body of request `i`, as the guest builds it. */
const bodyOf = (i: number) => ("é" + i).repeat(BODY_CHARS / 2);

Deno.test("a paused task with large POST bodies: each body is journaled once, not repeated per commit nor held in its record, and re-sent byte-exact after a SIGKILL", async () => {
  const upstream = startUpstream();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-bodies-" });
  const server = await startServer({ statesDir: dir });
  const journal = () => Deno.stat(join(dir, "bodies.journal.jsonl")).then((info) => info.size);
  const record = async () =>
    JSON.parse(await Deno.readTextFile(join(dir, "bodies.json"))) as TaskRecord;
  try {
    // Inside a function: the bodies are not globals, so the variables view does not hold them.
    const code = `(async () => {
  const urls = ${
      JSON.stringify(Array.from({ length: REQUESTS }, (_, i) => upstream.url(`/hold/body-${i}`)))
    };
  const answers = await Promise.all(urls.map((url, i) =>
    fetch(url, { method: "POST", body: ("é" + i).repeat(${
      BODY_CHARS / 2
    }) }).then((r) => r.json())));
  return answers.map((a) => a.value);
})()`;
    const task = await server.createTask({ id: "bodies", code });
    assertEquals(task.status, "paused");
    assertEquals(task.fetchRequests?.length, REQUESTS);
    for (let i = 0; i < REQUESTS; i++) await upstream.waitForRequests(`/hold/body-${i}`, 1);
    const bytes = new TextEncoder().encode(bodyOf(0)).length * REQUESTS;

    const paused = await journal();
    assert(paused > bytes, "the journal holds the bodies");
    assert(paused < bytes + 256 * 1024, `journal ${paused} bytes for ${bytes} of bodies`);
    const saved = await record();
    assertEquals(saved.pending.length, REQUESTS);
    assert(JSON.stringify(saved).length < 64 * 1024, "the record references the bodies");
    for (const pending of saved.pending) {
      assertEquals(pending.options.body, undefined);
      assertEquals(pending.bodyRef?.bytes, bytes / REQUESTS);
    }

    // One response: a commit with four requests still pending adds no body.
    upstream.release("body-0", 0);
    await waitFor(async () => (await record()).pending.length === REQUESTS - 1);
    const grown = (await journal()) - paused;
    assert(grown < 64 * 1024, `one commit added ${grown} bytes`);

    await server.kill();
    await server.restart();
    for (let i = 1; i < REQUESTS; i++) {
      const [sent, resent] = await upstream.waitForRequests(`/hold/body-${i}`, 2);
      assertEquals(sent!.body, bodyOf(i));
      assertEquals(resent!.body, bodyOf(i), `body ${i} re-sent byte-exact`);
      assertEquals(resent!.headers["idempotency-key"], sent!.headers["idempotency-key"]);
    }
    for (let i = 1; i < REQUESTS; i++) upstream.release(`body-${i}`, i);
    const done = await server.waitForTask("bodies");
    assertEquals(done.status, "completed", JSON.stringify(done.error));
    assertEquals(done.result, [0, 1, 2, 3, 4]);
    assert((await journal()) < bytes + 512 * 1024, "no body was journaled again");
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    await server.close();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});
