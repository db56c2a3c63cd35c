/**
 * The guest's `Headers` behave as the Fetch standard says (the cases the web-platform-tests
 * check): validation, normalisation, sorted and combined iteration, `getSetCookie()`, and the
 * immutable headers of a fetched response.
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";
import { driveCold, ok } from "../testing/engine_driver.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

Deno.test("Headers lowercases names, strips value whitespace and combines on get", async () => {
  assert.deepEqual(
    await guest(`const h = new Headers([["X-A", " 1 \\t"], ["x-a", "2"]]);
h.append("Accept", "\\r\\ntext/plain\\n");
[h.get("x-A"), h.get("accept"), h.has("ACCEPT"), h.get("missing")]`),
    ["1, 2", "text/plain", true, null],
  );
});

Deno.test("Headers iterate sorted by name with values combined, set-cookie apart", async () => {
  assert.deepEqual(
    await guest(`const h = new Headers({ "Zeta": "z", "alpha": "a" });
h.append("Set-Cookie", "a=1"); h.append("set-cookie", "b=2"); h.append("ALPHA", "b");
const each = []; h.forEach((v, k) => each.push(k + "=" + v));
[[...h], [...h.keys()], [...h.values()], each, h.getSetCookie(), h.get("set-cookie")]`),
    [
      [["alpha", "a, b"], ["set-cookie", "a=1"], ["set-cookie", "b=2"], ["zeta", "z"]],
      ["alpha", "set-cookie", "set-cookie", "zeta"],
      ["a, b", "a=1", "b=2", "z"],
      ["alpha=a, b", "set-cookie=a=1", "set-cookie=b=2", "zeta=z"],
      ["a=1", "b=2"],
      "a=1, b=2",
    ],
  );
});

Deno.test("Headers set replaces every value of a name and delete removes them all", async () => {
  assert.deepEqual(
    await guest(`const h = new Headers([["a", "1"], ["b", "2"], ["a", "3"]]);
h.set("A", "4"); const afterSet = [...h]; h.delete("a"); [afterSet, [...h]]`),
    [[["a", "4"], ["b", "2"]], [["b", "2"]]],
  );
});

Deno.test("Headers refuse invalid names, values and pairs with TypeErrors", async () => {
  assert.deepEqual(
    await guest(`const errors = [];
for (const f of [() => new Headers({ "a b": "1" }), () => new Headers([["", "1"]]),
  () => new Headers().append("x", "a\\nb"), () => new Headers().set("x", "a\\0b"),
  () => new Headers([["a"]]), () => new Headers("a:b"), () => new Headers().get("é")]) {
  try { f(); errors.push("none"); } catch (e) { errors.push(e.constructor.name + ": " + e.message); }
}
errors`),
    [
      'TypeError: Invalid header name: "a b"',
      'TypeError: Invalid header name: ""',
      'TypeError: Invalid header value: "a\\nb"',
      'TypeError: Invalid header value: "a\\u0000b"',
      "TypeError: Invalid header: length must be 2, but is 1",
      "TypeError: Failed to construct 'Headers': init must be a sequence of pairs or a record",
      'TypeError: Invalid header name: "é"',
    ],
  );
});

Deno.test("Headers accept another Headers and any iterable of pairs", async () => {
  assert.deepEqual(
    await guest(`const a = new Headers({ b: "2", a: "1" });
const m = new Map([["x", "y"]]);
[[...new Headers(a)], [...new Headers(m)], Object.prototype.toString.call(a)]`),
    [[["a", "1"], ["b", "2"]], [["x", "y"]], "[object Headers]"],
  );
});

Deno.test("the headers of a fetched response are immutable and drop names the standard refuses", async () => {
  const run = await driveCold(
    `const r = await fetch("https://api.example/x");
let error; try { r.headers.set("x-a", "2"); } catch (e) { error = e.message; }
[error, [...r.headers], r.headers.getSetCookie()]`,
    () => ok("hi", { headers: { "X-A": "1", "bad name": "v", "set-cookie": "s=1" } }),
  );
  assert.deepEqual(run.result, [
    "Headers are immutable",
    [["set-cookie", "s=1"], ["x-a", "1"]],
    ["s=1"],
  ]);
});
