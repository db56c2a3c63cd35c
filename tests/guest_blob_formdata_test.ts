/**
 * The guest's `Blob`, `File` and `FormData` (the cases the web-platform-tests check): parts
 * of every kind, type normalisation, `slice`, the read methods, file names and dates, and
 * form entries with their `Blob`-to-`File` conversion.
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

Deno.test("Blob joins strings (UTF-8), buffers, views and blobs, and reports its size", async () => {
  assert.deepEqual(
    await guest(`const inner = new Blob(["é"]);
const b = new Blob(["a", new Uint8Array([98]).buffer, new Uint8Array([0, 99, 0]).subarray(1, 2),
  inner, new DataView(new Uint8Array([100]).buffer)]);
[b.size, inner.size, await b.text(), [...new Uint8Array(await b.arrayBuffer())], b.type,
 String(b), b instanceof Blob]`),
    [6, 2, "abcéd", [97, 98, 99, 0xc3, 0xa9, 100], "", "[object Blob]", true],
  );
});

Deno.test("Blob type is lowercased, and emptied when it holds a non-ASCII-printable character", async () => {
  assert.deepEqual(
    await guest(
      `[new Blob([], { type: "Text/HTML" }).type, new Blob([], { type: "a\\u0019b" }).type,
 new Blob([], { type: "é" }).type, new Blob([], {}).type]`,
    ),
    ["text/html", "", "", ""],
  );
});

Deno.test("Blob refuses parts that are not a sequence and a bad endings option", async () => {
  assert.deepEqual(
    await guest(`const names = [];
for (const f of [() => new Blob("abc"), () => new Blob(1), () => new Blob({}),
  () => new Blob([], { endings: "bogus" }), () => new Blob([], 1)]) {
  try { f(); names.push("none"); } catch (e) { names.push(e.name); }
}
names`),
    ["TypeError", "TypeError", "TypeError", "TypeError", "TypeError"],
  );
});

Deno.test("Blob slice takes relative indexes and a content type", async () => {
  assert.deepEqual(
    await guest(`const b = new Blob(["0123456789"], { type: "text/plain" });
const s = b.slice(-4, -1, "X/Y");
[await s.text(), s.type, await b.slice(2).text(), await b.slice(5, 2).text(), b.slice().type,
 await b.slice(1, 100).text()]`),
    ["678", "x/y", "23456789", "", "", "123456789"],
  );
});

Deno.test("Blob bytes() and arrayBuffer() give copies; endings native turns CRLF into LF", async () => {
  assert.deepEqual(
    await guest(`const b = new Blob(["a\\r\\nb\\rc"], { endings: "native" });
const one = await b.bytes(); one[0] = 0;
[await b.text(), (await b.bytes())[0], one instanceof Uint8Array]`),
    ["a\nb\nc", 97, true],
  );
});

Deno.test("File has a name and a lastModified from the guest clock or the options", async () => {
  assert.deepEqual(
    await guest(`const f = new File(["x"], "a.txt", { type: "text/plain", lastModified: 42 });
const g = new File([], "b");
let missing; try { new File([]); } catch (e) { missing = e.name; }
[f.name, f.size, f.type, f.lastModified, f instanceof Blob, String(f),
 g.lastModified === Date.now(), missing]`),
    ["a.txt", 1, "text/plain", 42, true, "[object File]", true, "TypeError"],
  );
});

Deno.test("FormData keeps entries in order; set replaces, delete removes, getAll lists", async () => {
  assert.deepEqual(
    await guest(`const f = new FormData();
f.append("a", "1"); f.append("b", "2"); f.append("a", "3");
const before = [...f]; f.set("a", "4"); const afterSet = [...f.keys()];
f.delete("b");
[before, afterSet, f.get("a"), f.getAll("a"), f.has("b"), f.get("missing"), [...f.values()]]`),
    [[["a", "1"], ["b", "2"], ["a", "3"]], ["a", "b"], "4", ["4"], false, null, ["4"]],
  );
});

Deno.test("FormData turns a Blob into a File named blob or the filename given", async () => {
  assert.deepEqual(
    await guest(`const f = new FormData();
f.append("a", new Blob(["xy"], { type: "text/plain" }));
f.append("b", new Blob(["z"]), "z.bin");
const file = new File(["q"], "q.txt"); f.append("c", file);
const a = f.get("a"), b = f.get("b");
let bad; try { f.append("d", "text", "name.txt"); } catch (e) { bad = e.name; }
[a instanceof File, a.name, a.type, a.size, b.name, f.get("c") === file, f.get("c").name, bad,
 String(f)]`),
    [true, "blob", "text/plain", 2, "z.bin", true, "q.txt", "TypeError", "[object FormData]"],
  );
});

Deno.test("FormData values are strings; a missing argument is a TypeError", async () => {
  assert.deepEqual(
    await guest(
      `const f = new FormData(); f.append("n", 1); f.append("o", { toString() { return "s"; } });
let missing; try { f.append("x"); } catch (e) { missing = e.name; }
[f.get("n"), f.get("o"), missing]`,
    ),
    ["1", "s", "TypeError"],
  );
});
