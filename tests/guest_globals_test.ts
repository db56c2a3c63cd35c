/**
 * The small guest globals: `structuredClone`, `queueMicrotask`, `performance`, `navigator`,
 * `self`; what loading them costs a script that does not use them; and the errors a user can
 * act on (the busy-wait on `Date`).
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";
import { driveCold, ok, rejectsWithKind } from "../testing/engine_driver.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

Deno.test("structuredClone copies the serializable types, keeps cycles and shared references", async () => {
  assert.deepEqual(
    await guest(`const shared = { n: 1 };
const input = { d: new Date(5), r: /a+/gi, m: new Map([[1, shared]]), s: new Set([shared]),
  u: new Uint16Array([1, 2, 3]).subarray(1), big: 10n ** 20n, e: new RangeError("bad"),
  x: new DOMException("m", "DataError"), w: new String("s"), arr: [1, , 3] };
input.self = input;
const c = structuredClone(input);
[c !== input, c.self === c, c.d.getTime(), c.r.source + c.r.flags, c.m.get(1) === [...c.s][0],
 c.m.get(1) !== shared, [...c.u], c.u.byteOffset, String(c.big), c.e instanceof RangeError, c.e.message,
 c.x instanceof DOMException, c.x.name, typeof c.w, 1 in c.arr, c.arr.length]`),
    [
      true,
      true,
      5,
      "a+gi",
      true,
      true,
      [2, 3],
      2,
      "100000000000000000000",
      true,
      "bad",
      true,
      "DataError",
      "object",
      false,
      3,
    ],
  );
});

Deno.test("structuredClone throws DataCloneError for functions, symbols and platform objects", async () => {
  assert.deepEqual(
    await guest(
      `const name = (v) => { try { structuredClone(v); return "cloned"; } catch (e) { return e.name; } };
[name(() => 1), name(Symbol("s")), name({ f() {} }), name(new WeakMap()), name(Promise.resolve()),
 name(new URL("https://a.example/")), name(new (class Point { constructor() { this.x = 1; } })())]`,
    ),
    [
      "DataCloneError",
      "DataCloneError",
      "DataCloneError",
      "DataCloneError",
      "DataCloneError",
      "DataCloneError",
      "cloned",
    ],
  );
});

Deno.test("structuredClone transfers an ArrayBuffer and detaches the original", async () => {
  assert.deepEqual(
    await guest(`const buffer = new Uint8Array([1, 2, 3]).buffer;
const moved = structuredClone(buffer, { transfer: [buffer] });
[buffer.byteLength, [...new Uint8Array(moved)]]`),
    [0, [1, 2, 3]],
  );
});

Deno.test("queueMicrotask runs callbacks in order with promise jobs, before the script resumes", async () => {
  assert.deepEqual(
    await guest(`const log = [];
queueMicrotask(() => log.push("a"));
Promise.resolve().then(() => log.push("promise"));
queueMicrotask(() => { log.push("b"); queueMicrotask(() => log.push("nested")); });
log.push("sync");
let threw; try { queueMicrotask(1); } catch (e) { threw = e instanceof TypeError; }
await null; await null; await null;
[log, threw]`),
    [["sync", "a", "promise", "b", "nested"], true],
  );
});

Deno.test("an exception in a microtask is reported and the script goes on", async () => {
  const done = await executeCode(`queueMicrotask(() => { throw new TypeError("in a job"); });
await null; "still here"`);
  assert.equal(done.result, "still here");
  assert.match(done.logs[0]!.message, /^Uncaught TypeError: in a job/);
});

Deno.test("performance.now() reads the guest clock: still within a segment, moved by a fetch", async () => {
  let clock = 0;
  const run = await driveCold(
    `const a = performance.now(); const b = performance.now();
await fetch("https://api.example/");
[a, b, performance.now() >= a, performance.timeOrigin === Date.now() - performance.now()]`,
    () => {
      clock++;
      return ok({});
    },
  );
  const [a, b, later, origin] = run.result as [number, number, boolean, boolean];
  assert.equal(a, 0);
  assert.equal(b, 0);
  assert.ok(later);
  assert.ok(origin);
  assert.equal(clock, 1);
});

Deno.test("navigator, self and globalThis are there, and self can be replaced", async () => {
  assert.deepEqual(
    await guest(
      `const before = [navigator.userAgent, navigator.language, self === globalThis, globalThis.self.navigator === navigator];
self = 1;
[...before, self]`,
    ),
    ["FlowState (QuickJS)", "en-US", true, true, 1],
  );
});

Deno.test("without an image, a script using only fetch loads none of the new guest APIs", async () => {
  // Each lazy global is still an accessor when the script ends: nothing was parsed for it.
  // (A VM made from an image holds the common ones loaded: engine_vm_image_test.ts.)
  const run = await driveCold(
    `const r = await fetch("https://api.example/"); await r.json();
["URL", "TextEncoder", "atob", "AbortController", "Event", "crypto", "structuredClone",
 "queueMicrotask", "performance", "navigator", "self", "DOMException"]
  .filter((name) => typeof Object.getOwnPropertyDescriptor(globalThis, name).get !== "function")`,
    () => ok({ a: 1 }),
    { vmImages: false },
  );
  assert.deepEqual(run.result, []);
});

Deno.test("a busy-wait on Date fails with a message saying the clock stands still", async () => {
  const error = await rejectsWithKind(
    executeCode(`const end = Date.now() + 50; while (Date.now() < end) {}`, { timeLimitMs: 300 }),
    "timeout",
  );
  assert.match(error.message, /time limit of 300 ms/);
  assert.match(error.message, /stands still within a run segment/);
  assert.match(error.message, /FlowState\.sleep/);
});

Deno.test("a plain endless loop times out without the clock explanation", async () => {
  const error = await rejectsWithKind(
    executeCode(`while (true) {}`, { timeLimitMs: 200 }),
    "timeout",
  );
  assert.doesNotMatch(error.message, /stands still/);
});

Deno.test("interfaces have the Web IDL shape: enumerable operations and attributes, lengths counting the required arguments", async () => {
  const result = await guest(`const enumerable = (target, name) =>
  Object.getOwnPropertyDescriptor(target, name).enumerable;
[
  [URL.length, URL.parse.length, URL.canParse.length, Request.length, Headers.length,
   Blob.length, File.length, Event.length, CustomEvent.length, AbortSignal.abort.length,
   Response.json.length, new TextDecoder().decode.length, URLSearchParams.prototype.has.length,
   URLSearchParams.prototype.delete.length, URLSearchParams.prototype.forEach.length,
   Headers.prototype.forEach.length, FormData.prototype.forEach.length, Blob.prototype.slice.length],
  [enumerable(URL.prototype, "href"), enumerable(URL, "parse"),
   enumerable(URLSearchParams.prototype, "append"), enumerable(Headers.prototype, "get"),
   enumerable(Response.prototype, "clone"), enumerable(Request.prototype, "url"),
   enumerable(Blob.prototype, "slice"), enumerable(AbortSignal.prototype, "aborted"),
   enumerable(TextEncoder.prototype, "encode")],
  [enumerable(URL.prototype, "constructor"), enumerable(URL, "prototype"), enumerable(URL, "length"),
   Object.getOwnPropertyDescriptor(URLSearchParams.prototype, Symbol.iterator).enumerable],
  [URLSearchParams, Headers, FormData].map((C) => C.prototype[Symbol.iterator] === C.prototype.entries),
]`);
  assert.deepEqual(result, [
    [1, 1, 1, 1, 0, 0, 2, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0],
    [true, true, true, true, true, true, true, true, true],
    [false, false, false, false],
    [true, true, true],
  ]);
});
