/**
 * Bodies as streams (the cases the web-platform-tests check, where the guest has
 * `ReadableStream`): a fetched body read with a reader loop, a stream as a request body sent
 * whole, `bodyUsed` once a stream is read or cancelled, clones of streamed bodies, and
 * `Blob.stream()`; chunks are `Uint8Array`s of the exact bytes, a body read only through
 * `text()` loads no stream code, and a body piped at every pause replays to the same bytes.
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

const binary = (bytes: number[]) => ({
  success: true,
  status: 200,
  bodyBase64: btoa(String.fromCharCode(...bytes)),
  headers: { "content-type": "application/octet-stream" },
});

Deno.test("a fetched body read with a reader loop gives Uint8Array chunks of the exact bytes, and is used", async () => {
  const bytes = [0, 255, 128, 10, 200, 0xE2, 0x82];
  const run = await driveCold(
    `const r = await fetch("https://api.example/bin");
const body = r.body;
const before = [body instanceof ReadableStream, r.bodyUsed, body === r.body];
const reader = body.getReader();
const got = [];
let allBytes = true;
for (;;) {
  const { done, value } = await reader.read();
  if (done) break;
  allBytes = allBytes && value instanceof Uint8Array;
  got.push(...value);
}
const again = await r.arrayBuffer().then(() => "read", (e) => e.name);
[before, got, allBytes, r.bodyUsed, again]`,
    () => binary(bytes),
  );
  assert.deepEqual(run.result, [[true, false, true], bytes, true, true, "TypeError"]);
});

Deno.test("for await over a fetched JSON body gives the text the server sent, through TextDecoderStream", async () => {
  const run = await driveCold(
    `const r = await fetch("https://api.example/doc");
let text = "";
for await (const chunk of r.body.pipeThrough(new TextDecoderStream())) text += chunk;
text`,
    () => ({
      success: true,
      status: 200,
      body: '{"price": 1.50, "id": 12345678901234567890}',
      headers: { "content-type": "application/json" },
    }),
  );
  assert.equal(run.result, '{"price": 1.50, "id": 12345678901234567890}');
});

Deno.test("a body read through text() never makes a stream: the stream code is not loaded", async () => {
  const run = await driveCold(
    `const r = await fetch("https://api.example/");
await r.text();
typeof Object.getOwnPropertyDescriptor(globalThis, "ReadableStream").get`,
    () => ok({ a: 1 }),
  );
  assert.equal(run.result, "function");
});

Deno.test("reading one chunk of a body disturbs it: bodyUsed, and text() rejects even after releaseLock", async () => {
  assert.deepEqual(
    await guest(`const r = new Response("abc");
const reader = r.body.getReader();
const locked = await r.text().then(() => "read", (e) => e.name);
await reader.read();
reader.releaseLock();
[locked, r.bodyUsed, await r.text().then(() => "read", (e) => e.name),
 (() => { try { r.clone(); return "cloned"; } catch (e) { return e.name; } })()]`),
    ["TypeError", true, "TypeError", "TypeError"],
  );
});

Deno.test("new Response(stream) reads the stream's Uint8Array chunks; other chunks are a TypeError", async () => {
  assert.deepEqual(
    await guest(`const enc = new TextEncoder();
const r = new Response(ReadableStream.from([enc.encode("he"), enc.encode("llo")]));
const bad = new Response(ReadableStream.from(["text"]));
const locked = new ReadableStream(); locked.getReader();
let refused; try { new Response(locked); } catch (e) { refused = e.name; }
const piped = new Response(ReadableStream.from([enc.encode("a€")]).pipeThrough(new TransformStream()));
[await r.text(), r.headers.get("content-type"), await bad.text().then(() => "read", (e) => e.name),
 refused, [...await piped.bytes()]]`),
    ["hello", null, "TypeError", "TypeError", [0x61, 0xE2, 0x82, 0xAC]],
  );
});

Deno.test("Blob.prototype.stream() gives the blob's bytes as a byte stream", async () => {
  assert.deepEqual(
    await guest(`const blob = new Blob(["héllo", new Uint8Array([33])]);
let text = "";
for await (const s of blob.stream().pipeThrough(new TextDecoderStream())) text += s;
const reader = new Blob(["xyz"]).stream().getReader({ mode: "byob" });
const { value } = await reader.read(new Uint8Array(2));
[text, [...value], new Blob([]).stream() instanceof ReadableStream]`),
    ["héllo!", [0x78, 0x79], true],
  );
});

Deno.test("pipeTo from a fetched body into a WritableStream replays to the same bytes after every pause", async () => {
  const run = await driveCold(
    `const sizes = [];
for (let i = 0; i < 3; i++) {
  const r = await fetch("https://api.example/part?i=" + i);
  let size = 0;
  await r.body.pipeTo(new WritableStream({ write(chunk) { size += chunk.length; } }));
  sizes.push([size, r.bodyUsed]);
}
sizes`,
    (_request, index) => binary(Array.from({ length: 10 * (index + 1) }, (_, i) => i)),
  );
  assert.deepEqual(run.result, [[10, true], [20, true], [30, true]]);
});
