/**
 * The guest's `Response` is the Fetch standard's class (the cases the web-platform-tests
 * check): the constructor's status, status text and body checks, `Response.json()`,
 * `Response.error()`, `Response.redirect()`, `clone()`, and fetched responses with immutable
 * headers and the exact bytes the server sent.
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";
import { driveCold, ok } from "../testing/engine_driver.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

const CATCH = `const caught = (f) => { try { f(); return "none"; } catch (e) { return e.name; } };`;

Deno.test("new Response(body, init) keeps status, statusText, headers and the body text", async () => {
  assert.deepEqual(
    await guest(`const r = new Response("hello", { status: 201, statusText: "Made",
  headers: { "X-A": "1" } });
[r.status, r.statusText, r.ok, r.type, r.url, r.redirected, r.headers.get("x-a"),
 r.headers.get("content-type"), r.bodyUsed, await r.text(), r.bodyUsed]`),
    [
      201,
      "Made",
      true,
      "default",
      "",
      false,
      "1",
      "text/plain;charset=UTF-8",
      false,
      "hello",
      true,
    ],
  );
});

Deno.test("new Response() defaults to 200 with no body and mutable headers", async () => {
  assert.deepEqual(
    await guest(`const r = new Response(); r.headers.set("x", "y");
[r.status, r.statusText, r.ok, r.body, r.headers.get("x"), await r.text()]`),
    [200, "", true, null, "y", ""],
  );
});

Deno.test("Response refuses a status outside 200-599 with a RangeError and a bad statusText with a TypeError", async () => {
  assert.deepEqual(
    await guest(`${CATCH}
[caught(() => new Response("", { status: 199 })), caught(() => new Response("", { status: 600 })),
 caught(() => new Response("", { status: 0 })), caught(() => new Response("", { statusText: "a\\nb" })),
 caught(() => new Response("", { statusText: "\\u0100" })), caught(() => new Response("", { status: 599 }))]`),
    ["RangeError", "RangeError", "RangeError", "TypeError", "TypeError", "none"],
  );
});

Deno.test("Response refuses a body with a null-body status and accepts null with it", async () => {
  assert.deepEqual(
    await guest(`${CATCH}
[...[204, 205, 304].map((status) => caught(() => new Response("x", { status }))),
 caught(() => new Response(null, { status: 204 })), caught(() => new Response("", { status: 204 }))]`),
    ["TypeError", "TypeError", "TypeError", "none", "TypeError"],
  );
});

Deno.test("Response.json() serialises the data with application/json unless init sets a type", async () => {
  assert.deepEqual(
    await guest(`${CATCH}
const a = Response.json({ a: 1.5 }, { status: 202 });
const b = Response.json([1], { headers: { "content-type": "application/vnd.x+json" } });
[a.status, a.headers.get("content-type"), await a.text(), b.headers.get("content-type"),
 caught(() => Response.json(undefined)), caught(() => Response.json(1, { status: 204 }))]`),
    [202, "application/json", '{"a":1.5}', "application/vnd.x+json", "TypeError", "TypeError"],
  );
});

Deno.test("Response.error() is a network error with status 0 and immutable headers", async () => {
  assert.deepEqual(
    await guest(`${CATCH} const r = Response.error();
[r.type, r.status, r.statusText, r.ok, r.body, caught(() => r.headers.set("a", "b"))]`),
    ["error", 0, "", false, null, "TypeError"],
  );
});

Deno.test("Response.redirect() parses the URL and accepts only redirect statuses", async () => {
  assert.deepEqual(
    await guest(`${CATCH} const r = Response.redirect("https://a.example/x y", 301);
[r.status, r.headers.get("location"), Response.redirect("https://a.example/").status,
 caught(() => Response.redirect("https://a.example/", 200)),
 caught(() => Response.redirect("not a url")), caught(() => r.headers.delete("location"))]`),
    [301, "https://a.example/x%20y", 302, "RangeError", "TypeError", "TypeError"],
  );
});

Deno.test("Response.clone() gives an independent body; cloning or reading a used body fails", async () => {
  assert.deepEqual(
    await guest(`${CATCH} const r = new Response("abc", { headers: { a: "1" } });
const c = r.clone(); c.headers.set("a", "2");
const texts = [await r.text(), await c.text()];
let again; try { await r.text(); again = "none"; } catch (e) { again = e.name; }
[texts, r.headers.get("a"), c.headers.get("a"), caught(() => r.clone()), again]`),
    [["abc", "abc"], "1", "2", "TypeError", "TypeError"],
  );
});

Deno.test("Response body methods reject on another object with a TypeError", async () => {
  assert.deepEqual(
    await guest(
      `let name; try { await Response.prototype.text.call({}); } catch (e) { name = e.name; }
name`,
    ),
    "TypeError",
  );
});

Deno.test("a fetched response has immutable headers and text() is exactly what the server sent", async () => {
  const run = await driveCold(
    `const r = await fetch("https://api.example/n");
let set; try { r.headers.set("x", "1"); set = "none"; } catch (e) { set = e.name; }
const c = r.clone();
[r.status, r.ok, r.url, r.type, r.headers.get("content-type"), set, await r.text(),
 (await c.json()).n, c.headers.get("x-bad")]`,
    () => ({
      success: true,
      status: 200,
      statusText: "OK",
      body: '{ "n": 1.50, "big": 12345678901234567890 }',
      headers: { "Content-Type": " application/json ", "x bad": "dropped" },
    }),
  );
  assert.deepEqual(run.result, [
    200,
    true,
    "https://api.example/n",
    "basic",
    "application/json",
    "TypeError",
    '{ "n": 1.50, "big": 12345678901234567890 }',
    1.5,
    null,
  ]);
});

Deno.test("a binary fetched body survives arrayBuffer(), bytes() and blob()", async () => {
  const bytes = [0, 255, 128, 10, 200];
  const run = await driveCold(
    `const r = await fetch("https://api.example/bin");
const c = r.clone(); const d = r.clone();
const blob = await d.blob();
[[...new Uint8Array(await r.arrayBuffer())], [...(await c.bytes())], blob.size, blob.type]`,
    () => ({
      success: true,
      status: 200,
      bodyBase64: btoa(String.fromCharCode(...bytes)),
      headers: { "content-type": "application/octet-stream" },
    }),
  );
  assert.deepEqual(run.result, [bytes, bytes, 5, "application/octet-stream"]);
});

Deno.test("the seed's data form still reads as JSON and as text", async () => {
  const run = await driveCold(
    `const a = await fetch("https://api.example/a"); const b = await fetch("https://api.example/b");
[await a.json(), await b.text()]`,
    (_request, index) => index === 0 ? ok({ a: [1, 2] }) : ok("plain text"),
  );
  assert.deepEqual(run.result, [{ a: [1, 2] }, "plain text"]);
});
