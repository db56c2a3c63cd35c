/**
 * The guest's `Request` is the Fetch standard's class (the cases the web-platform-tests
 * check): the constructor from a string, a URL or a Request plus init, method
 * normalisation, the TypeErrors for forbidden methods, bodies on GET/HEAD, bad URLs and
 * modes, `clone()`, and `fetch(request)` sending what the request holds.
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";
import { driveCold, ok } from "../testing/engine_driver.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

const CATCH = `const caught = (f) => { try { f(); return "none"; } catch (e) { return e.name; } };`;

Deno.test("new Request(url) has the standard defaults", async () => {
  assert.deepEqual(
    await guest(`const r = new Request("https://a.example/p?q#h");
[r.url, r.method, r.mode, r.credentials, r.cache, r.redirect, r.referrer, r.referrerPolicy,
 r.integrity, r.keepalive, r.destination, r.body, r.bodyUsed, r.signal instanceof AbortSignal,
 r.signal.aborted, [...r.headers]]`),
    [
      "https://a.example/p?q#h",
      "GET",
      "cors",
      "same-origin",
      "default",
      "follow",
      "about:client",
      "",
      "",
      false,
      "",
      null,
      false,
      true,
      false,
      [],
    ],
  );
});

Deno.test("Request normalises the standard methods only and refuses forbidden ones", async () => {
  assert.deepEqual(
    await guest(`${CATCH}
const m = (method) => new Request("https://a.example/", { method }).method;
[m("get"), m("post"), m("delete"), m("patch"), m("custom"),
 caught(() => m("CONNECT")), caught(() => m("trace")), caught(() => m("track")),
 caught(() => m("bad method")), caught(() => m(""))]`),
    [
      "GET",
      "POST",
      "DELETE",
      "patch",
      "custom",
      "TypeError",
      "TypeError",
      "TypeError",
      "TypeError",
      "TypeError",
    ],
  );
});

Deno.test("Request refuses a body on GET and HEAD, bad URLs, credentials and bad modes", async () => {
  assert.deepEqual(
    await guest(`${CATCH}
const u = "https://a.example/";
[caught(() => new Request(u, { body: "x" })), caught(() => new Request(u, { method: "HEAD", body: "x" })),
 caught(() => new Request("nope")), caught(() => new Request("https://u:p@a.example/")),
 caught(() => new Request(u, { mode: "navigate" })), caught(() => new Request(u, { redirect: "bogus" })),
 caught(() => new Request(u, { window: {} })), caught(() => new Request(u, { signal: {} })),
 caught(() => new Request(u, { cache: "only-if-cached" })),
 caught(() => new Request(u, { method: "PUT", mode: "no-cors" })),
 caught(() => new Request(u, { method: "GET", body: null }))]`),
    [
      "TypeError",
      "TypeError",
      "TypeError",
      "TypeError",
      "TypeError",
      "TypeError",
      "TypeError",
      "TypeError",
      "TypeError",
      "TypeError",
      "none",
    ],
  );
});

Deno.test("Request takes a URL object and copies a Request with init overriding", async () => {
  assert.deepEqual(
    await guest(`const base = new Request(new URL("https://a.example/x"), { method: "POST",
  headers: { a: "1" }, body: "payload", redirect: "manual" });
const copy = new Request(base, { headers: { b: "2" } });
[copy.url, copy.method, copy.redirect, [...copy.headers], base.bodyUsed, await copy.text()]`),
    [
      "https://a.example/x",
      "POST",
      "manual",
      [["b", "2"]],
      true,
      "payload",
    ],
  );
});

Deno.test("Request.clone() copies headers and body; a used body cannot be cloned or reused", async () => {
  assert.deepEqual(
    await guest(`${CATCH}
const r = new Request("https://a.example/", { method: "POST", body: "abc" });
const c = r.clone(); c.headers.set("x", "1");
const texts = [await r.text(), await c.text()];
[texts, r.headers.has("x"), r.bodyUsed, caught(() => r.clone()),
 caught(() => new Request(r))]`),
    [["abc", "abc"], false, true, "TypeError", "TypeError"],
  );
});

Deno.test("a Request's signal follows the signal given in init", async () => {
  assert.deepEqual(
    await guest(`const controller = new AbortController();
const r = new Request("https://a.example/", { signal: controller.signal });
const before = r.signal.aborted; controller.abort("why");
[before, r.signal.aborted, r.signal.reason, r.signal === controller.signal]`),
    [false, true, "why", false],
  );
});

Deno.test("fetch(request) sends its method, headers and body; fetch(request, init) overrides", async () => {
  const run = await driveCold(
    `const r = new Request("https://a.example/in", { method: "PUT", headers: { "x-a": "1" },
  body: new Uint8Array([1, 2, 255]) });
await fetch(r);
await fetch(new Request("https://a.example/two"), { method: "POST", body: "hi" });
r.bodyUsed`,
    () => ok({}),
  );
  assert.equal(run.result, true);
  assert.deepEqual(run.requests.map((r) => [r.url, r.options]), [
    ["https://a.example/in", {
      method: "PUT",
      headers: { "x-a": "1" },
      bodyBase64: btoa(String.fromCharCode(1, 2, 255)),
    }],
    ["https://a.example/two", {
      method: "POST",
      headers: { "content-type": "text/plain;charset=UTF-8" },
      body: "hi",
    }],
  ]);
});

Deno.test("fetch with a used Request body rejects with a TypeError", async () => {
  assert.equal(
    await guest(`const r = new Request("https://a.example/", { method: "POST", body: "x" });
await r.text();
let name; try { await fetch(r); } catch (e) { name = e.name; } name`),
    "TypeError",
  );
});

Deno.test("aborting init.signal rejects the pending fetch with its reason, also on replay", async () => {
  const run = await driveCold(
    `const controller = new AbortController();
const pending = fetch("https://a.example/slow", { signal: controller.signal });
await fetch("https://a.example/fast");
controller.abort();
let first; try { await pending; first = "resolved"; } catch (e) { first = e.name; }
let early; try { await fetch("https://a.example/never", { signal: controller.signal }); } catch (e) { early = e.name; }
const custom = new AbortController(); custom.abort("my reason");
let reason; try { await fetch("https://a.example/x", { signal: custom.signal }); } catch (e) { reason = e; }
[first, early, reason]`,
    () => ok({}),
    { pick: "last" },
  );
  assert.deepEqual(run.result, ["AbortError", "AbortError", "my reason"]);
  assert.deepEqual(run.requests.map((r) => r.url), [
    "https://a.example/slow",
    "https://a.example/fast",
  ]);
});

Deno.test("aborting after the response came makes its unread body reject with the reason at once", async () => {
  const run = await driveCold(
    `const controller = new AbortController();
const r = await fetch("https://a.example/", { signal: controller.signal });
const read = await fetch("https://a.example/read", { signal: controller.signal });
const kept = await read.text();
controller.abort();
const order = [];
const p = r.text().then(() => order.push("resolved"), (e) => order.push(e.name));
Promise.resolve().then(() => order.push("next-microtask"));
await p;
let again; try { await r.json(); } catch (e) { again = e.name; }
[order, again, kept]`,
    () => ok("body"),
  );
  assert.deepEqual(run.result, [["AbortError", "next-microtask"], "AbortError", "body"]);
});

Deno.test("with an aborted signal, fetch still throws the Request constructor's TypeErrors first", async () => {
  assert.deepEqual(
    await guest(`const signal = AbortSignal.abort();
const names = [];
for (const init of [{ mode: "bogus" }, { window: {} }, {}]) {
  try { await fetch("https://a.example/", { ...init, signal }); } catch (e) { names.push(e.name); }
}
try { await fetch("https://u:p@a.example/", { signal }); } catch (e) { names.push(e.name); }
names`),
    ["TypeError", "TypeError", "AbortError", "TypeError"],
  );
});

Deno.test("a Request built from another takes its body over; a failed construction leaves it unused", async () => {
  assert.deepEqual(
    await guest(`const req = new Request("https://a.example/", { method: "POST", body: "hello" });
const names = [];
for (const init of [{ method: "GET" }, { method: "CONNECT" }]) {
  try { new Request(req, init); } catch (e) { names.push(e.name); }
}
const before = req.bodyUsed;
const next = new Request(req);
[names, before, req.bodyUsed, await next.text()]`),
    [["TypeError", "TypeError"], false, true, "hello"],
  );
});
