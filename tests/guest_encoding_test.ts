/**
 * The guest's `TextEncoder`, `TextDecoder`, `atob` and `btoa` behave as the Encoding and
 * HTML standards say (the cases the web-platform-tests check), on the host's implementations.
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

Deno.test("TextEncoder encodes UTF-8, NUL included, and lone surrogates as U+FFFD", async () => {
  assert.deepEqual(
    await guest(`const e = new TextEncoder();
[e.encoding, [...e.encode("a\\0é€\\u{1F600}")], [...e.encode("\\uD800x\\uDC00")], e.encode().length,
 e.encode("x") instanceof Uint8Array]`),
    [
      "utf-8",
      [97, 0, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80],
      [0xEF, 0xBF, 0xBD, 0x78, 0xEF, 0xBF, 0xBD],
      0,
      true,
    ],
  );
});

Deno.test("TextEncoder.encodeInto writes what fits and never splits a character", async () => {
  assert.deepEqual(
    await guest(`const dest = new Uint8Array(5).fill(0xAA);
const r = new TextEncoder().encodeInto("a€b", dest.subarray(1, 4));
const r2 = new TextEncoder().encodeInto("\\u{1F600}", new Uint8Array(3));
[r, [...dest], r2]`),
    [{ read: 1, written: 1 }, [0xAA, 97, 0xAA, 0xAA, 0xAA], { read: 0, written: 0 }],
  );
});

Deno.test("TextDecoder strips one BOM unless ignoreBOM, and replaces bad bytes unless fatal", async () => {
  assert.deepEqual(
    await guest(`const bom = new Uint8Array([0xEF, 0xBB, 0xBF, 0x68, 0x69]);
let fatal; try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0x68, 0xFF])); }
catch (e) { fatal = e instanceof TypeError; }
[new TextDecoder().decode(bom), new TextDecoder("utf-8", { ignoreBOM: true }).decode(bom).length,
 new TextDecoder().decode(new Uint8Array([0x68, 0xFF, 0xC3])), fatal,
 new TextDecoder().decode(), new TextDecoder().decode(new Uint16Array([0x6968]).buffer),
 new TextDecoder().decode(new DataView(bom.buffer, 3))]`),
    ["hi", 3, "h\uFFFD\uFFFD", true, "", "hi", "hi"],
  );
});

Deno.test("TextDecoder with stream: true joins characters split across chunks", async () => {
  assert.deepEqual(
    await guest(`const bytes = new TextEncoder().encode("€ and \\u{1F600}!");
const d = new TextDecoder();
let out = "";
for (const byte of bytes) out += d.decode(new Uint8Array([byte]), { stream: true });
out += d.decode();
const cut = new TextDecoder();
const partial = cut.decode(new Uint8Array([0xE2, 0x82]), { stream: true });
[out, partial, cut.decode()]`),
    ["€ and \u{1F600}!", "", "\uFFFD"],
  );
});

Deno.test("TextDecoder knows the standard's labels and refuses unknown ones with a RangeError", async () => {
  assert.deepEqual(
    await guest(
      `let error; try { new TextDecoder("no-such-encoding"); } catch (e) { error = e instanceof RangeError; }
[new TextDecoder(" UTF8 ").encoding, new TextDecoder("latin1").encoding,
 new TextDecoder("utf-16le").decode(new Uint8Array([0x68, 0, 0x69, 0])),
 new TextDecoder("windows-1252").decode(new Uint8Array([0x80])), error,
 new TextDecoder("utf-8", { fatal: true }).fatal, new TextDecoder().ignoreBOM]`,
    ),
    ["utf-8", "windows-1252", "hi", "€", true, true, false],
  );
});

Deno.test("atob and btoa follow forgiving-base64 and throw InvalidCharacterError", async () => {
  assert.deepEqual(
    await guest(
      `const name = (f) => { try { f(); return "none"; } catch (e) { return [e.name, e instanceof DOMException, e.code]; } };
[btoa("hi\\0\\xFF"), atob(" aGkA/w== "), atob("aGk"), name(() => atob("a")), name(() => atob("*")),
 name(() => btoa("€")), btoa(undefined), atob(null) === atob("null"), name(() => atob())]`,
    ),
    [
      "aGkA/w==",
      "hi\0\xFF",
      "hi",
      ["InvalidCharacterError", true, 5],
      ["InvalidCharacterError", true, 5],
      ["InvalidCharacterError", true, 5],
      "dW5kZWZpbmVk",
      true,
      ["TypeError", false, null],
    ],
  );
});
