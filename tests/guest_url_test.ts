/**
 * The guest's `URL` and `URLSearchParams` behave as the WHATWG URL standard says (the cases
 * the web-platform-tests check), parsed by the host's own WHATWG parser.
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

Deno.test("URL parses against a base and exposes every component", async () => {
  assert.deepEqual(
    await guest(`const u = new URL("../b/c?x=1#frag", "https://user:pw@Example.COM:8080/a/z");
[u.href, u.origin, u.protocol, u.username, u.password, u.host, u.hostname, u.port,
 u.pathname, u.search, u.hash, String(u), JSON.stringify({ u })]`),
    [
      "https://user:pw@example.com:8080/b/c?x=1#frag",
      "https://example.com:8080",
      "https:",
      "user",
      "pw",
      "example.com:8080",
      "example.com",
      "8080",
      "/b/c",
      "?x=1",
      "#frag",
      "https://user:pw@example.com:8080/b/c?x=1#frag",
      '{"u":"https://user:pw@example.com:8080/b/c?x=1#frag"}',
    ],
  );
});

Deno.test("URL gives the WHATWG answers for IDNA, IPv4, percent-encoding and default ports", async () => {
  assert.deepEqual(
    await guest(`[new URL("http://EXAMPLE.com:80/ä b").href, new URL("http://0x7f.1/").host,
new URL("https://bücher.example/").hostname, new URL("file:///C:/x/../y").href,
new URL("blob:https://a.example/uuid").origin, new URL("non-special://h/p").origin]`),
    [
      "http://example.com/%C3%A4%20b",
      "127.0.0.1",
      "xn--bcher-kva.example",
      "file:///C:/y",
      "https://a.example",
      "null",
    ],
  );
});

Deno.test("an invalid URL throws a TypeError naming the input; parse and canParse do not throw", async () => {
  assert.deepEqual(
    await guest(
      `let message; try { new URL("http://[::1"); } catch (e) { message = [e instanceof TypeError, e.message]; }
[message, URL.parse("nope"), URL.parse("/x", "https://a.example/").href, URL.canParse("nope"),
 URL.canParse("/x", "https://a.example"), (() => { try { new URL(); } catch (e) { return e instanceof TypeError; } })()]`,
    ),
    [[true, 'Invalid URL: "http://[::1"'], null, "https://a.example/x", false, true, true],
  );
});

Deno.test("URL setters follow the standard and an invalid href throws", async () => {
  assert.deepEqual(
    await guest(`const u = new URL("https://a.example/p?q#h");
u.protocol = "http"; u.host = "b.example:81"; u.pathname = "x y"; u.search = "a=1"; u.hash = "";
u.port = "80"; u.username = "me"; const before = u.href;
let threw = false; try { u.href = "not a url"; } catch (e) { threw = e instanceof TypeError; }
u.protocol = "mailto"; // a special scheme cannot become a non-special one
[before, threw, u.href]`),
    ["http://me@b.example/x%20y?a=1", true, "http://me@b.example/x%20y?a=1"],
  );
});

Deno.test("URLSearchParams parses, serialises and iterates as application/x-www-form-urlencoded", async () => {
  assert.deepEqual(
    await guest(`const p = new URLSearchParams("?a=1&b=x+y&a=%C3%A9&c&=e&%zz=1");
[p.get("a"), p.getAll("a"), p.get("b"), p.get("c"), p.get(""), p.get("%zz"), p.get("none"),
 p.has("a"), p.has("a", "2"), p.size, [...p.keys()], p.toString(),
 new URLSearchParams({ "a b": "€&=", emoji: "\\u{1F600}" }).toString(),
 new URLSearchParams([["x", "1"], ["x", "2"]]).getAll("x"),
 new URLSearchParams(new URLSearchParams("k=v")).get("k"),
 new URLSearchParams("x=\\uD800").get("x").charCodeAt(0)]`),
    [
      "1",
      ["1", "é"],
      "x y",
      "",
      "e",
      "1",
      null,
      true,
      false,
      6,
      ["a", "b", "a", "c", "", "%zz"],
      "a=1&b=x+y&a=%C3%A9&c=&=e&%25zz=1",
      "a+b=%E2%82%AC%26%3D&emoji=%F0%9F%98%80",
      ["1", "2"],
      "v",
      0xFFFD,
    ],
  );
});

Deno.test("URLSearchParams append, set, delete and sort keep order as the standard says", async () => {
  assert.deepEqual(
    await guest(`const p = new URLSearchParams("z=1&a=2&z=3&b=4");
p.set("z", "9"); const afterSet = p.toString();
p.append("a", "0"); p.delete("a", "2"); const afterDelete = p.toString();
p.sort(); const afterSort = p.toString();
const seen = []; p.forEach((value, name, self) => seen.push(name + "=" + value + (self === p)));
let threw; try { new URLSearchParams([["only-one"]]); } catch (e) { threw = e instanceof TypeError; }
[afterSet, afterDelete, afterSort, seen, threw, Object.prototype.toString.call(p)]`),
    [
      "z=9&a=2&b=4",
      "z=9&b=4&a=0",
      "a=0&b=4&z=9",
      ["a=0true", "b=4true", "z=9true"],
      true,
      "[object URLSearchParams]",
    ],
  );
});

Deno.test("url.searchParams and url.search stay in step both ways", async () => {
  assert.deepEqual(
    await guest(`const u = new URL("https://a.example/list?page=1#top");
const p = u.searchParams;
p.set("page", "2"); p.append("q", "a b");
const one = u.href;
u.search = "?x=1";
const two = [p.get("x"), p.get("page"), u.searchParams === p];
p.delete("x");
[one, two, u.href]`),
    [
      "https://a.example/list?page=2&q=a+b#top",
      ["1", null, true],
      "https://a.example/list#top",
    ],
  );
});

Deno.test("deleting during iteration of URLSearchParams visits the live list", async () => {
  assert.deepEqual(
    await guest(`const p = new URLSearchParams("a=1&b=2&c=3&d=4");
const seen = [];
for (const [name] of p) { seen.push(name); if (name === "b") p.delete("c"); }
seen`),
    ["a", "b", "d"],
  );
});
