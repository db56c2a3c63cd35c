/**
 * The guest's `crypto`: random values from the task's secret entropy stream (the same bytes on
 * replay, different for every task), and `crypto.subtle` digests and HMAC matching the host's
 * Web Crypto results.
 */
import assert from "node:assert/strict";
import { executeCode, FetchVM, resumeExecution } from "../lib/mod.ts";
import { driveCold, ok } from "../testing/engine_driver.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

const hex = (bytes: ArrayBuffer) =>
  Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");

Deno.test("crypto.subtle.digest gives the SHA digests of the bytes", async () => {
  const data = new TextEncoder().encode("abc\0é");
  const expected = [];
  for (const name of ["SHA-1", "SHA-256", "SHA-384", "SHA-512"]) {
    expected.push(hex(await crypto.subtle.digest(name, data)));
  }
  assert.deepEqual(
    await guest(`const data = new TextEncoder().encode("abc\\0é");
const hex = (b) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");
const out = [];
for (const name of ["SHA-1", "sha-256", { name: "SHA-384" }, "SHA-512"]) out.push(hex(await crypto.subtle.digest(name, data)));
out`),
    expected,
  );
});

Deno.test("HMAC sign and verify match Web Crypto, and a wrong signature does not verify", async () => {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode("whsec_test"),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const expected = hex(
    await crypto.subtle.sign("HMAC", key, new TextEncoder().encode('{"a":1.50}')),
  );
  assert.deepEqual(
    await guest(`const enc = new TextEncoder();
const key = await crypto.subtle.importKey("raw", enc.encode("whsec_test"), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
const sig = await crypto.subtle.sign("HMAC", key, enc.encode('{"a":1.50}'));
const hex = Array.from(new Uint8Array(sig), (x) => x.toString(16).padStart(2, "0")).join("");
const bad = new Uint8Array(sig).slice(); bad[0] ^= 1;
[hex, await crypto.subtle.verify("HMAC", key, sig, enc.encode('{"a":1.50}')),
 await crypto.subtle.verify("HMAC", key, bad, enc.encode('{"a":1.50}')),
 key.type, key.extractable, key.algorithm, key.usages]`),
    [expected, true, false, "secret", false, {
      name: "HMAC",
      hash: { name: "SHA-256" },
      length: 80,
    }, [
      "sign",
      "verify",
    ]],
  );
});

Deno.test("HMAC keys import and export as JWK, and misuse rejects with the standard errors", async () => {
  assert.deepEqual(
    await guest(
      `const key = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-512" }, true, ["sign"]);
const jwk = await crypto.subtle.exportKey("jwk", key);
const back = await crypto.subtle.importKey("jwk", jwk, { name: "HMAC", hash: "SHA-512" }, false, ["sign"]);
const reject = async (p) => { try { await p; return "resolved"; } catch (e) { return e.name; } };
[jwk.kty, jwk.alg, (await crypto.subtle.exportKey("raw", key)).byteLength, back.algorithm.length,
 await reject(crypto.subtle.exportKey("raw", back)),
 await reject(crypto.subtle.verify("HMAC", back, new Uint8Array(64), new Uint8Array(1))),
 await reject(crypto.subtle.digest("MD5", new Uint8Array(1))),
 await reject(crypto.subtle.importKey("raw", new Uint8Array(4), { name: "HMAC", hash: "SHA-256" }, false, [])),
 await reject(crypto.subtle.sign("RSASSA-PKCS1-v1_5", back, new Uint8Array(1)))]`,
    ),
    [
      "oct",
      "HS512",
      128,
      1024,
      "InvalidAccessError",
      "InvalidAccessError",
      "NotSupportedError",
      "SyntaxError",
      "NotSupportedError",
    ],
  );
});

Deno.test("getRandomValues fills integer arrays, refuses floats and more than 65536 bytes", async () => {
  assert.deepEqual(
    await guest(`const a = new Uint32Array(8); const same = crypto.getRandomValues(a) === a;
const name = (f) => { try { f(); return "none"; } catch (e) { return e.name; } };
const uuid = crypto.randomUUID();
[same, a.some((x) => x !== 0), name(() => crypto.getRandomValues(new Float64Array(1))),
 name(() => crypto.getRandomValues(new Uint8Array(65537))), crypto.getRandomValues(new Uint8Array(65536)).length,
 /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid), uuid !== crypto.randomUUID()]`),
    [true, true, "TypeMismatchError", "QuotaExceededError", 65536, true, true],
  );
});

Deno.test("random values are the same after a replay from JSON and differ between tasks", async () => {
  const code =
    `const before = crypto.randomUUID() + [...crypto.getRandomValues(new Uint8Array(40))];
const r = await fetch("https://api.example/");
[before, crypto.randomUUID()]`;
  const cold = await driveCold(code, () => ok({}));
  const vm = new FetchVM();
  try {
    const paused = await vm.execute(code);
    const live = await vm.deliver({
      id: paused.fetchRequest!.id,
      success: true,
      status: 200,
      data: {},
    });
    const [b1, a1] = live.result as string[];
    const replayed = await resumeExecution(JSON.parse(JSON.stringify(paused.state)), {
      id: paused.fetchRequest!.id,
      success: true,
      status: 200,
      data: {},
    });
    assert.deepEqual(replayed.result, [b1, a1]);
    assert.notEqual((cold.result as string[])[0], b1);
    assert.equal(typeof paused.state!.entropy, "string");
    assert.notEqual(paused.state!.entropy, cold.final.state!.entropy);
  } finally {
    vm.dispose();
  }
});

Deno.test("a state saved without an entropy key replays with one derived from its seed", async () => {
  const code =
    `const a = crypto.randomUUID(); await fetch("https://api.example/"); [a, crypto.randomUUID()]`;
  const vm = new FetchVM();
  try {
    const paused = await vm.execute(code);
    const { entropy: _dropped, ...old } = paused.state!;
    const response = { id: paused.fetchRequest!.id, success: true, status: 200, data: {} };
    const one = await resumeExecution(structuredClone(old), response);
    const two = await resumeExecution(structuredClone(old), response);
    assert.deepEqual(one.result, two.result);
  } finally {
    vm.dispose();
  }
});
