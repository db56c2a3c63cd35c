/**
 * The Body mixin of the guest's `Request` and `Response` (the cases the web-platform-tests
 * check): every kind of init body with its standard content type (never `String(body)`),
 * the read methods, `formData()` of multipart and urlencoded bodies, used-body errors, and
 * a script that only fetches JSON loading none of the blob and form modules.
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";
import { driveCold, ok } from "../testing/engine_driver.ts";
import { decodeBody } from "../lib/engine/body_bytes.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

Deno.test("init bodies of every kind get their standard content type", async () => {
  assert.deepEqual(
    await guest(`const type = (body) => new Response(body).headers.get("content-type");
[type("s"), type(new Uint8Array(1)), type(new ArrayBuffer(1)), type(new Blob(["x"], { type: "a/b" })),
 type(new Blob(["x"])), type(new URLSearchParams("a=1")), type(new FormData()).split("=")[0],
 new Response("x", { headers: { "content-type": "mine/own" } }).headers.get("content-type")]`),
    [
      "text/plain;charset=UTF-8",
      null,
      null,
      "a/b",
      null,
      "application/x-www-form-urlencoded;charset=UTF-8",
      "multipart/form-data; boundary",
      "mine/own",
    ],
  );
});

Deno.test("bodies are bytes: a view, a buffer and a blob read back exactly", async () => {
  assert.deepEqual(
    await guest(`const bytes = new Uint8Array([0, 1, 254, 255]);
const view = new Response(bytes.subarray(1, 3)); const buffer = new Response(bytes.buffer);
const blob = new Response(new Blob([bytes]));
[[...await view.bytes()], [...new Uint8Array(await buffer.arrayBuffer())], (await blob.blob()).size,
 await new Response(new URLSearchParams({ a: "1 2", b: "é" })).text()]`),
    [[1, 254], [0, 1, 254, 255], 4, "a=1+2&b=%C3%A9"],
  );
});

Deno.test("json(), text() and blob() read the body once; a second read rejects", async () => {
  assert.deepEqual(
    await guest(
      `const r = new Response('{"a":[1]}', { headers: { "content-type": "application/json" } });
const data = await r.json();
const errors = [];
for (const m of ["text", "json", "arrayBuffer", "bytes", "blob", "formData"]) {
  try { await r[m](); errors.push("none"); } catch (e) { errors.push(e.name); }
}
const b = await new Response("x", { headers: { "content-type": "Text/Plain" } }).blob();
[data, r.bodyUsed, errors, b.type, b.size]`,
    ),
    [{ a: [1] }, true, Array(6).fill("TypeError"), "text/plain", 1],
  );
});

Deno.test("json() of a body that is not JSON rejects with a SyntaxError", async () => {
  assert.equal(
    await guest(
      `let name; try { await new Response("{").json(); } catch (e) { name = e.name; } name`,
    ),
    "SyntaxError",
  );
});

Deno.test("formData() reads back a multipart body with strings and files", async () => {
  assert.deepEqual(
    await guest(`const f = new FormData();
f.append("name", "a\\nb \\"q\\" é"); f.append("file", new Blob([new Uint8Array([0, 255, 13, 10])], { type: "x/y" }), "f.bin");
const r = new Response(f);
const back = await r.formData();
const file = back.get("file");
[back.get("name"), file.name, file.type, [...await file.bytes()], [...back.keys()]]`),
    ['a\r\nb "q" é', "f.bin", "x/y", [0, 255, 13, 10], ["name", "file"]],
  );
});

Deno.test("formData() reads an urlencoded body and refuses other content types", async () => {
  assert.deepEqual(
    await guest(`const r = new Response("a=1&b=x+y&a=%C3%A9", {
  headers: { "content-type": "application/x-www-form-urlencoded" } });
const form = await r.formData();
let plain; try { await new Response("a=1").formData(); } catch (e) { plain = e.name; }
let broken; try { await new Response("junk", { headers: { "content-type": "multipart/form-data; boundary=zz" } }).formData(); } catch (e) { broken = e.name; }
[form.getAll("a"), form.get("b"), plain, broken]`),
    [["1", "é"], "x y", "TypeError", "TypeError"],
  );
});

Deno.test("fetch sends URLSearchParams, FormData and bytes bodies with their content types", async () => {
  const run = await driveCold(
    `await fetch("https://a.example/form", { method: "POST", body: new URLSearchParams({ q: "a b" }) });
const f = new FormData(); f.append("k", "v");
await fetch("https://a.example/multi", { method: "POST", body: f });
await fetch("https://a.example/bin", { method: "POST", body: new Uint8Array([104, 105]) });
"done"`,
    () => ok({}),
  );
  const [form, multi, bin] = run.requests;
  assert.deepEqual(form!.options, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded;charset=UTF-8" },
    body: "q=a+b",
  });
  const type = multi!.options.headers!["content-type"]!;
  const boundary = type.match(/^multipart\/form-data; boundary=(.+)$/)![1]!;
  assert.equal(
    new TextDecoder().decode(decodeBody(multi!.options)),
    `--${boundary}\r\nContent-Disposition: form-data; name="k"\r\n\r\nv\r\n--${boundary}--\r\n`,
  );
  assert.deepEqual(bin!.options, { method: "POST", headers: {}, bodyBase64: "aGk=" });
});

Deno.test("without an image, a script that only fetches JSON loads neither Blob, FormData nor Request", async () => {
  const run = await driveCold(
    `const r = await fetch("https://a.example/");
const data = await r.json();
const lazy = (name) => typeof Object.getOwnPropertyDescriptor(globalThis, name).get === "function";
[data.a, lazy("Blob"), lazy("File"), lazy("FormData"), lazy("Request")]`,
    () => ok({ a: 1 }),
    { vmImages: false },
  );
  assert.deepEqual(run.result, [1, true, true, true, true]);
});

Deno.test("text() and json() drop a leading byte order mark, as UTF-8 decoding does", async () => {
  const run = await driveCold(
    `const r = await fetch("https://a.example/bom");
const local = new Response("\\uFEFFhi");
[await r.json(), await local.text()]`,
    () => ({ success: true, status: 200, body: '\uFEFF{ "b": 1 }' }),
  );
  assert.deepEqual(run.result, [{ b: 1 }, "hi"]);
});
