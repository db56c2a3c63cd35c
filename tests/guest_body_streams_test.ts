/**
 * Bodies as streams (the cases the web-platform-tests check, where the guest has
 * `ReadableStream`): a fetched body read with a reader loop, a stream as a request body sent
 * whole, `bodyUsed` once a stream is read or cancelled, clones of streamed bodies, and
 * `Blob.stream()`.
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";
import { driveCold, ok } from "../testing/engine_driver.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

Deno.test("a fetched body reads with a reader loop, and bodyUsed follows the stream", async () => {
  const run = await driveCold(
    `const r = await fetch("https://a.example/");
const reader = r.body.getReader();
const before = r.bodyUsed;
const chunks = [];
for (;;) { const { done, value } = await reader.read(); if (done) break; chunks.push(...value); }
let again; try { await r.text(); } catch (e) { again = e.name; }
[before, r.bodyUsed, new TextDecoder().decode(new Uint8Array(chunks)), again]`,
    () => ({ success: true, status: 200, body: "streamed é" }),
  );
  assert.deepEqual(run.result, [false, true, "streamed é", "TypeError"]);
});

Deno.test("a ReadableStream request body is read whole and sent as its bytes", async () => {
  const run = await driveCold(
    `const body = new ReadableStream({ start(c) { c.enqueue(new Uint8Array([104, 105])); c.close(); } });
await fetch("https://a.example/up", { method: "POST", body, duplex: "half" });
"sent"`,
    () => ok({}),
  );
  assert.equal(run.result, "sent");
  assert.equal(run.requests[0]!.options.bodyBase64, "aGk=");
});

Deno.test("a stream body: locked or read streams are refused, clones read the same bytes", async () => {
  assert.deepEqual(
    await guest(
      `const make = () => new ReadableStream({ start(c) { c.enqueue(new Uint8Array([1, 2])); c.close(); } });
const locked = make(); locked.getReader();
let refused; try { new Response(locked); } catch (e) { refused = e.name; }
const r = new Response(make()); const c = r.clone();
const cancelled = new Response(make()); await cancelled.body.cancel();
[refused, [...await r.bytes()], [...await c.bytes()], cancelled.bodyUsed,
 await new Blob(["ab"]).stream().getReader().read().then(({ value }) => [...value])]`,
    ),
    ["TypeError", [1, 2], [1, 2], true, [97, 98]],
  );
});

Deno.test("after a body was read, its stream is locked and disturbed", async () => {
  assert.deepEqual(
    await guest(`const r = new Response("x"); await r.text();
let locked; try { r.body.getReader(); } catch (e) { locked = e.name; }
[r.body.locked, locked]`),
    [true, "TypeError"],
  );
});
