/**
 * Bodies are bytes through the engine, for both QuickJS builds: `text()` is exactly the body
 * the host delivered, request bodies of bytes are recorded as base64 of those bytes, the
 * redirect mode reaches the host, and a response without a status is a network failure.
 */
import assert from "node:assert/strict";
import { executeCode, type FetchRequest, type Variant } from "../lib/mod.ts";
import { type Answer, driveCold, driveLive, VARIANTS } from "../testing/engine_driver.ts";

async function onlyRequest(variant: Variant, code: string): Promise<FetchRequest> {
  const paused = await executeCode(code, { variant });
  assert.equal(paused.type, "paused", code);
  return paused.fetchRequest!;
}

for (const variant of VARIANTS) {
  Deno.test(`[${variant}] text() is the exact body, json() parses it, live and after replays`, async () => {
    const exact = '{ "price": 1.50, "big": 12345678901234567890 }';
    const answer: Answer = { success: true, status: 200, data: { price: 1.5 }, body: exact };
    const code = `const r1 = await fetch("https://x.example/a");
const text = await r1.text();
const r2 = await fetch("https://x.example/b");
[text, (await r2.json()).price]`;
    for (const drive of [driveLive, driveCold]) {
      const run = await drive(code, () => answer, { variant });
      assert.deepEqual(run.result, [exact, 1.5]);
    }
  });

  Deno.test(`[${variant}] a body nested too deeply for json() rejects catchably; text() reads it`, async () => {
    const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);
    const code = `const results = [];
for (const path of ["deep", "limit"]) {
  const response = await fetch("https://x.example/" + path);
  try {
    await response.clone().json();
    results.push("parsed");
  } catch (error) {
    results.push(error.name + ": " + error.message);
  }
  results.push((await response.text()).length);
}
results`;
    const answer = (request: FetchRequest): Answer => {
      const depth = request.url.endsWith("/deep") ? 100_000 : 1000;
      return { success: true, status: 200, data: nested(depth), body: nested(depth) };
    };
    for (const drive of [driveLive, driveCold]) {
      const run = await drive(code, answer, { variant });
      assert.deepEqual(run.result, [
        "SyntaxError: Cannot parse the response body as JSON: nested deeper than 1000 levels",
        200_000,
        "parsed",
        2000,
      ]);
    }
  });

  Deno.test(`[${variant}] a base64 body reaches text() decoded as UTF-8`, async () => {
    const run = await driveCold(
      `await (await fetch("https://x.example/")).text()`,
      () => ({
        success: true,
        status: 200,
        bodyBase64: new TextEncoder().encode("héllo").toBase64(),
      }),
      { variant },
    );
    assert.equal(run.result, "héllo");
  });

  Deno.test(`[${variant}] a Uint8Array or ArrayBuffer body is recorded as base64 of its bytes`, async () => {
    const view = await onlyRequest(
      variant,
      `await fetch("https://x.example/", { method: "POST", body: new Uint8Array([0, 255, 104, 105]).subarray(1) })`,
    );
    assert.deepEqual(view.options, {
      method: "POST",
      headers: {},
      bodyBase64: new Uint8Array([255, 104, 105]).toBase64(),
    });
    const buffer = await onlyRequest(
      variant,
      `await fetch("https://x.example/", { method: "PUT", body: new Uint8Array([1, 2, 3, 4, 5]).buffer })`,
    );
    assert.equal(buffer.options.bodyBase64, new Uint8Array([1, 2, 3, 4, 5]).toBase64());
    assert.equal(buffer.options.body, undefined);
  });

  Deno.test(`[${variant}] a bytes body replays to the same request`, async () => {
    const code =
      `const a = await fetch("https://x.example/", { method: "POST", body: new Uint8Array([7, 8, 9]) });
const b = await fetch("https://x.example/", { method: "POST", body: new Uint8Array([10]) });
[a.status, b.status]`;
    const run = await driveCold(code, () => ({ success: true, status: 201 }), { variant });
    assert.deepEqual(run.result, [201, 201]);
  });

  Deno.test(`[${variant}] init.redirect is recorded for the host; an unknown mode is a TypeError`, async () => {
    const manual = await onlyRequest(
      variant,
      `await fetch("https://x.example/", { redirect: "manual" })`,
    );
    assert.equal(manual.options.redirect, "manual");
    const run = await driveCold(
      `try { await fetch("https://x.example/", { redirect: "sideways" }) } catch (e) { [e.name, e.message] }`,
      () => ({ success: true, status: 200 }),
      { variant },
    );
    assert.deepEqual(run.result, [
      "TypeError",
      'fetch: redirect must be "follow", "manual" or "error", got "sideways"',
    ]);
  });

  Deno.test(`[${variant}] a status-0 or status-less failed response rejects fetch() with a TypeError naming the reason`, async () => {
    const code =
      `try { await fetch("https://x.example/"); "resolved" } catch (e) { [e instanceof TypeError, e.message] }`;
    for (
      const answer of [
        { success: false, status: 0, error: "Connection refused" },
        { success: false, error: "Connection refused" },
      ] as Answer[]
    ) {
      const run = await driveCold(code, () => answer, { variant });
      assert.deepEqual(run.result, [true, "fetch failed: Connection refused"]);
    }
    const notFound = await driveCold(
      `(await fetch("https://x.example/")).status`,
      () => ({ success: false, status: 404 }),
      { variant },
    );
    assert.equal(notFound.result, 404);
  });
}
