/**
 * The guest's WHATWG streams behave as the Streams standard says (the cases the
 * web-platform-tests under streams/ and encoding/streams/ check): readers, locking, async
 * iteration, tee, pipes with backpressure and abort, transform streams, queuing strategies,
 * BYOB reads, and the text encoder and decoder streams. They load only when a script reads
 * one of their globals.
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";
import { driveCold, ok, VARIANTS } from "../testing/engine_driver.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

for (const variant of VARIANTS) {
  Deno.test(`[${variant}] a reader loop and for await read every chunk of a stream in order`, async () => {
    const done = await executeCode(
      `const make = () => new ReadableStream({
  start(c) { c.enqueue("a"); c.enqueue("b"); },
  pull(c) { c.enqueue("c"); c.close(); },
});
const reader = make().getReader();
const loop = [];
for (;;) { const { done, value } = await reader.read(); if (done) break; loop.push(value); }
const iterated = [];
for await (const chunk of make()) iterated.push(chunk);
[loop, iterated, typeof ReadableStream.prototype[Symbol.asyncIterator]]`,
      { variant },
    );
    assert.deepEqual(done.result, [["a", "b", "c"], ["a", "b", "c"], "function"]);
  });
}

Deno.test("a stream is locked to its reader until releaseLock, and a second reader is refused", async () => {
  assert.deepEqual(
    await guest(`const rs = new ReadableStream();
const before = rs.locked;
const reader = rs.getReader();
let second; try { rs.getReader(); } catch (e) { second = e instanceof TypeError; }
const cancelLocked = await rs.cancel().then(() => "resolved", (e) => e instanceof TypeError);
reader.releaseLock();
const closed = await reader.closed.then(() => "resolved", (e) => e instanceof TypeError);
[before, second, cancelLocked, closed, rs.locked, rs.getReader() instanceof ReadableStreamDefaultReader]`),
    [false, true, true, true, false, true],
  );
});

Deno.test("cancel reaches the source with its reason, and an errored stream rejects reads", async () => {
  assert.deepEqual(
    await guest(`let reason;
const rs = new ReadableStream({ cancel(r) { reason = r; } });
await rs.cancel("stop");
const boom = new ReadableStream({ start(c) { c.error(new RangeError("bad")); } });
const read = await boom.getReader().read().then(() => "read", (e) => e.name + ": " + e.message);
const thrown = new ReadableStream({ pull() { throw new Error("pull failed"); } });
const pulled = await thrown.getReader().read().then(() => "read", (e) => e.message);
[reason, read, pulled]`),
    ["stop", "RangeError: bad", "pull failed"],
  );
});

Deno.test("breaking out of for await cancels the stream unless preventCancel", async () => {
  assert.deepEqual(
    await guest(`let cancelled = 0;
const make = () => new ReadableStream({
  pull(c) { c.enqueue(1); },
  cancel() { cancelled++; },
});
const a = make();
for await (const x of a) break;
const b = make();
for await (const x of b.values({ preventCancel: true })) break;
[cancelled, a.locked, b.locked]`),
    [1, false, false],
  );
});

Deno.test("tee gives two branches that each read every chunk", async () => {
  assert.deepEqual(
    await guest(`const [a, b] = ReadableStream.from(["x", "y", "z"]).tee();
const all = async (s) => { const out = []; for await (const c of s) out.push(c); return out; };
[await all(a), await all(b)]`),
    [["x", "y", "z"], ["x", "y", "z"]],
  );
});

Deno.test("ReadableStream.from takes arrays, iterables and async generators", async () => {
  assert.deepEqual(
    await guest(`async function* gen() { yield 1; await null; yield 2; }
const all = async (s) => { const out = []; for await (const c of s) out.push(c); return out; };
let refused; try { ReadableStream.from(5); } catch (e) { refused = e instanceof TypeError; }
[await all(ReadableStream.from([1, 2])), await all(ReadableStream.from(new Set([3]))),
 await all(ReadableStream.from(gen())), refused]`),
    [[1, 2], [3], [1, 2], true],
  );
});

Deno.test("pipeThrough a TransformStream transforms, flushes and keeps order", async () => {
  assert.deepEqual(
    await guest(`const upper = new TransformStream({
  transform(chunk, c) { c.enqueue(chunk.toUpperCase()); },
  flush(c) { c.enqueue("!"); },
});
const out = [];
for await (const c of ReadableStream.from(["a", "b"]).pipeThrough(upper)) out.push(c);
const identity = new TransformStream();
const w = identity.writable.getWriter();
w.write(1); w.write(2); w.close();
const passed = [];
for await (const c of identity.readable) passed.push(c);
out.concat(passed)`),
    ["A", "B", "!", 1, 2],
  );
});

Deno.test("pipeTo writes every chunk, closes the sink, and respects preventClose", async () => {
  assert.deepEqual(
    await guest(`const log = [];
const sink = () => new WritableStream({
  write(c) { log.push("write " + c); },
  close() { log.push("close"); },
});
await ReadableStream.from([1, 2]).pipeTo(sink());
await ReadableStream.from([3]).pipeTo(sink(), { preventClose: true });
log`),
    ["write 1", "write 2", "close", "write 3"],
  );
});

Deno.test("pipeTo with an aborted signal rejects with its AbortError and aborts the sink", async () => {
  assert.deepEqual(
    await guest(`let aborted;
const controller = new AbortController();
controller.abort();
const error = await ReadableStream.from([1]).pipeTo(
  new WritableStream({ abort(r) { aborted = r.name; } }), { signal: controller.signal },
).catch((e) => e);
const custom = new AbortController();
custom.abort(new Error("mine"));
const mine = await ReadableStream.from([1]).pipeTo(new WritableStream(), { signal: custom.signal })
  .catch((e) => e.message);
[error instanceof DOMException, error.name, aborted, mine]`),
    [true, "AbortError", "AbortError", "mine"],
  );
});

Deno.test("an erroring sink cancels the source of a pipe with the same error", async () => {
  assert.deepEqual(
    await guest(`let cancelReason;
const source = new ReadableStream({ pull(c) { c.enqueue(1); }, cancel(r) { cancelReason = r.message; } });
const result = await source.pipeTo(new WritableStream({ write() { throw new Error("disk full"); } }))
  .catch((e) => e.message);
[result, cancelReason]`),
    ["disk full", "disk full"],
  );
});

Deno.test("a writer sees desiredSize and ready follow the high-water mark (backpressure)", async () => {
  assert.deepEqual(
    await guest(`let release;
const ws = new WritableStream({
  write() { return new Promise((resolve) => { release = resolve; }); },
}, new CountQueuingStrategy({ highWaterMark: 2 }));
const writer = ws.getWriter();
const sizes = [writer.desiredSize];
writer.write("a"); sizes.push(writer.desiredSize);
writer.write("b"); sizes.push(writer.desiredSize);
writer.write("c"); sizes.push(writer.desiredSize);
await null;
release();
[sizes, ws.locked]`),
    [[2, 1, 0, -1], true],
  );
});

Deno.test("closing a writer waits for queued writes; writing after close is refused", async () => {
  assert.deepEqual(
    await guest(`const seen = [];
const writer = new WritableStream({ write(c) { seen.push(c); } }).getWriter();
writer.write("x");
await writer.close();
const late = await writer.write("y").then(() => "written", (e) => e instanceof TypeError);
[seen, late]`),
    [["x"], true],
  );
});

Deno.test("queuing strategies report their high-water mark and size per WPT", async () => {
  assert.deepEqual(
    await guest(`const bytes = new ByteLengthQueuingStrategy({ highWaterMark: 16 });
const count = new CountQueuingStrategy({ highWaterMark: 4 });
let missing; try { new CountQueuingStrategy({}); } catch (e) { missing = e instanceof TypeError; }
const rs = new ReadableStream({}, new ByteLengthQueuingStrategy({ highWaterMark: 10 }));
[bytes.highWaterMark, bytes.size(new Uint8Array(7)), count.highWaterMark, count.size("x"), missing,
 String(bytes), String(count)]`),
    [16, 7, 4, 1, true, "[object ByteLengthQueuingStrategy]", "[object CountQueuingStrategy]"],
  );
});

Deno.test("a byte stream reads into a caller's buffer with a BYOB reader", async () => {
  assert.deepEqual(
    await guest(`const rs = new ReadableStream({
  type: "bytes",
  pull(c) {
    const view = c.byobRequest.view;
    view[0] = 7; view[1] = 8;
    c.byobRequest.respond(2);
    c.close();
  },
});
const reader = rs.getReader({ mode: "byob" });
const { value } = await reader.read(new Uint8Array(4));
const end = await reader.read(new Uint8Array(4));
[reader instanceof ReadableStreamBYOBReader, [...value], end.done]`),
    [true, [7, 8], true],
  );
});

Deno.test("the stream classes and their prototypes carry the standard names", async () => {
  assert.deepEqual(
    await guest(`const ts = new TransformStream();
[String(new ReadableStream()), String(new WritableStream()), String(ts),
 String(ts.writable.getWriter()), ReadableStream.name, typeof ReadableStreamDefaultController,
 typeof ReadableByteStreamController, typeof WritableStreamDefaultController,
 typeof TransformStreamDefaultController, typeof ReadableStreamBYOBRequest]`),
    [
      "[object ReadableStream]",
      "[object WritableStream]",
      "[object TransformStream]",
      "[object WritableStreamDefaultWriter]",
      "ReadableStream",
      "function",
      "function",
      "function",
      "function",
      "function",
    ],
  );
});

Deno.test("TextDecoderStream joins a character split across chunks and flushes the rest", async () => {
  assert.deepEqual(
    await guest(`const decode = async (chunks, ...args) => {
  let out = "";
  for await (const s of ReadableStream.from(chunks).pipeThrough(new TextDecoderStream(...args))) {
    out += s;
  }
  return out;
};
const euro = [0xE2, 0x82, 0xAC];
[await decode([new Uint8Array(euro.slice(0, 1)), new Uint8Array(euro.slice(1)), new Uint8Array([0x21])]),
 await decode([new Uint8Array([0xE2, 0x82])]),
 await decode([new Uint8Array([0xEF, 0xBB, 0xBF, 0x68])]),
 (await decode([new Uint8Array([0xEF, 0xBB, 0xBF, 0x68])], "utf-8", { ignoreBOM: true })).length,
 await decode([new Uint16Array([0x6968]).buffer, new DataView(new Uint8Array([0x21]).buffer)])]`),
    ["€!", "\uFFFD", "h", 2, "hi!"],
  );
});

Deno.test("TextDecoderStream errors on a chunk that is not bytes, and on bad bytes when fatal", async () => {
  assert.deepEqual(
    await guest(`const fail = (chunks, options) => ReadableStream.from(chunks)
  .pipeThrough(new TextDecoderStream("utf-8", options)).getReader().read()
  .then(() => "read", (e) => e.name);
const d = new TextDecoderStream("utf-16le", { fatal: true });
let badLabel; try { new TextDecoderStream("no-such-encoding"); } catch (e) { badLabel = e.name; }
[await fail(["text"]), await fail([{}]), await fail([new Uint8Array([0xFF])], { fatal: true }),
 d.encoding, d.fatal, d.ignoreBOM, badLabel, String(d)]`),
    [
      "TypeError",
      "TypeError",
      "TypeError",
      "utf-16le",
      true,
      false,
      "RangeError",
      "[object TextDecoderStream]",
    ],
  );
});

Deno.test("TextEncoderStream encodes UTF-8, joins surrogate pairs across chunks, and ends a lone one with U+FFFD", async () => {
  assert.deepEqual(
    await guest(`const encode = async (chunks) => {
  const out = [];
  for await (const b of ReadableStream.from(chunks).pipeThrough(new TextEncoderStream())) {
    out.push(b instanceof Uint8Array ? [...b] : "not bytes");
  }
  return out;
};
[await encode(["a€", "", 5]), await encode(["\\uD83D", "\\uDE00"]), await encode(["x\\uD83D"]),
 new TextEncoderStream().encoding]`),
    [
      [[0x61, 0xE2, 0x82, 0xAC], [0x35]],
      [[0xF0, 0x9F, 0x98, 0x80]],
      [[0x78], [0xEF, 0xBF, 0xBD]],
      "utf-8",
    ],
  );
});

Deno.test("a script using only fetch loads no stream code; reading a stream global loads it", async () => {
  const run = await driveCold(
    `const lazy = (name) => typeof Object.getOwnPropertyDescriptor(globalThis, name).get;
const r = await fetch("https://api.example/");
await r.json();
const before = [lazy("ReadableStream"), lazy("TextDecoderStream"), lazy("WritableStream")];
typeof TextDecoderStream;
[before, lazy("ReadableStream"), lazy("TextDecoderStream")]`,
    () => ok({ a: 1 }),
  );
  assert.deepEqual(run.result, [["function", "function", "function"], "undefined", "undefined"]);
});

Deno.test("a stream in use survives a pause at fetch and a cold replay gives the same chunks", async () => {
  const run = await driveCold(
    `const { readable, writable } = new TransformStream();
const writer = writable.getWriter();
const seen = [];
const reading = (async () => { for await (const c of readable) seen.push(c); })();
for (let i = 0; i < 3; i++) {
  const r = await fetch("https://api.example/item?i=" + i);
  await writer.write((await r.json()).n);
}
await writer.close();
await reading;
seen`,
    (_request, index) => ok({ n: index * 10 }),
  );
  assert.deepEqual(run.result, [0, 10, 20]);
});
