/**
 * The guest world, for both QuickJS builds: what `fetch()` records, what a `Response` and
 * its `Headers` look like, how `console` is captured, and what the guest cannot reach.
 */
import assert from "node:assert/strict";
import {
  executeCode,
  type FetchRequest,
  FetchVM,
  resumeExecution,
  type Variant,
} from "../lib/mod.ts";
import {
  type Answer,
  driveCold,
  driveLive,
  ok,
  rejectsWithKind,
  VARIANTS,
  viaJson,
} from "../testing/engine_driver.ts";

/** Runs `code`, which must pause once on one request, and returns that request. */
async function onlyRequest(variant: Variant, code: string): Promise<FetchRequest> {
  const paused = await executeCode(code, { variant });
  assert.equal(paused.type, "paused", code);
  assert.equal(paused.fetchRequests?.length, 1, code);
  const request = paused.fetchRequest!;
  assert.deepEqual(Object.keys(request).sort(), ["id", "options", "timestamp", "url"]);
  assert.equal(typeof request.id, "string");
  assert.equal(typeof request.timestamp, "number");
  return request;
}

/** Runs `code` that pauses once, answers with `answer` (cold), and returns the result. */
async function answered(variant: Variant, code: string, answer: Answer): Promise<unknown> {
  const run = await driveCold(code, () => answer, { variant });
  assert.equal(run.pauses.length, 1, code);
  return run.result;
}

for (const variant of VARIANTS) {
  // --- fetch(input, init) ---------------------------------------------------------------

  Deno.test(`[${variant}] fetch(string) records the URL, GET and no headers or body`, async () => {
    const request = await onlyRequest(variant, `await fetch("https://api.example/a?b=1#c")`);
    assert.equal(request.url, "https://api.example/a?b=1#c");
    assert.deepEqual(request.options, { method: "GET", headers: {} });
  });

  Deno.test(`[${variant}] fetch({ url }) records the object's url`, async () => {
    const request = await onlyRequest(
      variant,
      `await fetch({ url: "https://api.example/from-object" })`,
    );
    assert.equal(request.url, "https://api.example/from-object");
    assert.deepEqual(request.options, { method: "GET", headers: {} });
  });

  Deno.test(`[${variant}] fetch({ toString() }) records the string it converts to`, async () => {
    const request = await onlyRequest(
      variant,
      `await fetch({ toString() { return "https://api.example/" + "stringified"; } })`,
    );
    assert.equal(request.url, "https://api.example/stringified");
  });

  Deno.test(`[${variant}] fetch upper-cases a standard method and records a string body as text/plain`, async () => {
    const request = await onlyRequest(
      variant,
      `await fetch("https://api.example/items", { method: "post", body: JSON.stringify({ a: 1 }) })`,
    );
    assert.deepEqual(request.options, {
      method: "POST",
      headers: { "content-type": "text/plain;charset=UTF-8" },
      body: '{"a":1}',
    });
    const patch = await onlyRequest(
      variant,
      `await fetch("https://api.example/i", { method: "PaTcH" })`,
    );
    // The Fetch standard normalises only DELETE, GET, HEAD, OPTIONS, POST and PUT.
    assert.deepEqual(patch.options, { method: "PaTcH", headers: {} });
  });

  Deno.test(`[${variant}] fetch records headers given as an object, lower-casing names`, async () => {
    const request = await onlyRequest(
      variant,
      `await fetch("https://api.example/h", {
  method: "put",
  headers: { "X-Api-Key": "k1", "Content-Type": "application/json", count: 3 },
  body: "[1]",
})`,
    );
    assert.deepEqual(request.options, {
      method: "PUT",
      headers: { "x-api-key": "k1", "content-type": "application/json", count: "3" },
      body: "[1]",
    });
  });

  Deno.test(`[${variant}] fetch records headers given as an array of pairs, joining repeats`, async () => {
    const request = await onlyRequest(
      variant,
      `await fetch("https://api.example/h", {
  headers: [["Accept", "text/plain"], ["X-Tag", "a"], ["x-tag", "b"]],
})`,
    );
    assert.deepEqual(request.options, {
      method: "GET",
      headers: { accept: "text/plain", "x-tag": "a, b" },
    });
  });

  Deno.test(`[${variant}] fetch records headers given as a Headers object`, async () => {
    const request = await onlyRequest(
      variant,
      `const h = new Headers({ Accept: "application/json" });
h.append("X-Trace", "1");
h.append("x-trace", "2");
h.set("Authorization", "Bearer t");
h.delete("accept");
await fetch("https://api.example/h", { method: "delete", headers: h })`,
    );
    assert.deepEqual(request.options, {
      method: "DELETE",
      headers: { "x-trace": "1, 2", authorization: "Bearer t" },
    });
  });

  Deno.test(`[${variant}] a malformed header list is a TypeError the guest can catch`, async () => {
    const done = await executeCode(
      `try { await fetch("https://x.example/", { headers: [["only-name"]] }); "sent" }
catch (e) { e.name }`,
      { variant },
    );
    assert.equal(done.type, "completed");
    assert.equal(done.result, "TypeError");
  });

  // --- Response ---------------------------------------------------------------------------

  Deno.test(`[${variant}] Response exposes ok, status, statusText, url, headers and the body`, async () => {
    const result = await answered(
      variant,
      `const r = await fetch("https://api.example/thing");
const seen = [];
r.headers.forEach((value, name) => seen.push(name + "=" + value));
({
  ok: r.ok, status: r.status, statusText: r.statusText, url: r.url,
  type: r.headers.get("Content-Type"), upper: r.headers.get("X-REQUEST-ID"),
  missing: r.headers.get("x-none"), has: r.headers.has("X-Request-Id"), hasNot: r.headers.has("nope"),
  seen, entries: [...r.headers.entries()], bodyUsedBefore: r.bodyUsed,
  body: await r.json(), bodyUsedAfter: r.bodyUsed,
})`,
      ok({ id: 9 }, {
        statusText: "OK",
        headers: { "content-type": "application/json", "x-request-id": "r-1" },
      }),
    );
    assert.deepEqual(result, {
      ok: true,
      status: 200,
      statusText: "OK",
      url: "https://api.example/thing",
      type: "application/json",
      upper: "r-1",
      missing: null,
      has: true,
      hasNot: false,
      seen: ["content-type=application/json", "x-request-id=r-1"],
      entries: [["content-type", "application/json"], ["x-request-id", "r-1"]],
      bodyUsedBefore: false,
      body: { id: 9 },
      bodyUsedAfter: true,
    });
  });

  Deno.test(`[${variant}] Response.url is the final URL when the host reports a redirect`, async () => {
    const result = await answered(
      variant,
      `const r = await fetch("https://api.example/old"); [r.url, r.redirected]`,
      ok("moved", { url: "https://api.example/new" }),
    );
    assert.deepEqual(result, ["https://api.example/new", true]);
  });

  for (
    const [status, statusText] of [[404, "Not Found"], [500, "Internal Server Error"]] as const
  ) {
    Deno.test(`[${variant}] a ${status} response resolves with ok false instead of rejecting`, async () => {
      const result = await answered(
        variant,
        `let outcome;
try {
  const r = await fetch("https://api.example/x");
  outcome = { ok: r.ok, status: r.status, statusText: r.statusText, body: await r.json() };
} catch (e) {
  outcome = "rejected: " + e.message;
}
outcome`,
        { success: false, status, statusText, data: { error: statusText } },
      );
      assert.deepEqual(result, { ok: false, status, statusText, body: { error: statusText } });
    });
  }

  Deno.test(`[${variant}] text() of a JSON body gives its JSON text; json() of a text body parses it`, async () => {
    const asText = await answered(
      variant,
      `await (await fetch("https://x.example/")).text()`,
      ok({ a: 1, b: [true, null] }),
    );
    assert.equal(asText, '{"a":1,"b":[true,null]}');
    const textual = await answered(
      variant,
      `await (await fetch("https://x.example/")).text()`,
      ok("plain body"),
    );
    assert.equal(textual, "plain body");
    const parsed = await answered(
      variant,
      `await (await fetch("https://x.example/")).json()`,
      ok('{"from":"text"}'),
    );
    assert.deepEqual(parsed, { from: "text" });
  });

  Deno.test(`[${variant}] json() of a body that is not JSON rejects with a SyntaxError`, async () => {
    const result = await answered(
      variant,
      `const r = await fetch("https://x.example/");
try { await r.json(); "parsed" } catch (e) { [e instanceof SyntaxError, e.name] }`,
      ok("<html>not json</html>"),
    );
    assert.deepEqual(result, [true, "SyntaxError"]);
  });

  Deno.test(`[${variant}] a body can be read only once`, async () => {
    const result = await answered(
      variant,
      `const r = await fetch("https://x.example/");
await r.text();
try { await r.json(); "read twice" } catch (e) { e.name }`,
      ok({ a: 1 }),
    );
    assert.equal(result, "TypeError");
  });

  Deno.test(`[${variant}] json() gives the guest its own copy of the data`, async () => {
    const result = await answered(
      variant,
      `const r = await fetch("https://x.example/");
const c = r.clone();
const a = await r.json();
a.list.push("mutated");
const b = await c.json();
[a.list.length, b.list.length]`,
      ok({ list: [1] }),
    );
    assert.deepEqual(result, [2, 1]);
  });

  // --- console --------------------------------------------------------------------------

  Deno.test(`[${variant}] console.log/info/warn/error/debug are captured with level and time`, async () => {
    const before = Date.now();
    const done = await executeCode(
      `console.log("plain", 1, { b: 2 }, [3], null, undefined);
console.info("info line");
console.warn("warn line");
console.error(new TypeError("bad thing"));
console.debug("debug", true);
"done"`,
      { variant },
    );
    const after = Date.now();
    assert.equal(done.result, "done");
    assert.deepEqual(done.logs.map((l) => l.level), ["log", "info", "warn", "error", "debug"]);
    assert.equal(done.logs[0]!.message, 'plain 1 {"b":2} [3] null undefined');
    assert.equal(done.logs[1]!.message, "info line");
    assert.equal(done.logs[2]!.message, "warn line");
    assert.match(done.logs[3]!.message, /^TypeError: bad thing/);
    assert.equal(done.logs[4]!.message, "debug true");
    for (const line of done.logs) {
      assert.equal(typeof line.time, "number");
      assert.ok(line.time >= before && line.time <= after, "time is the host's clock");
    }
    assert.deepEqual(done.state?.logs, done.logs);
  });

  Deno.test(`[${variant}] each console line appears once across pauses, live and after cold resumes`, async () => {
    const code = `console.log("start");
for (let i = 0; i < 3; i++) {
  console.info("asking " + i);
  await fetch("https://x.example/" + i);
  console.warn("got " + i);
}
console.log("end");
"ok"`;
    const expected = [
      "start",
      "asking 0",
      "got 0",
      "asking 1",
      "got 1",
      "asking 2",
      "got 2",
      "end",
    ];
    for (
      const run of [
        await driveLive(code, () => ok(null), { variant }),
        await driveCold(code, () => ok(null), { variant }),
      ]
    ) {
      assert.deepEqual(run.final.state?.logs.map((l) => l.message), expected);
      assert.deepEqual(run.logs.map((l) => l.message), expected, "segments' logs, concatenated");
      assert.deepEqual(run.pauses[0]!.logs.map((l) => l.message), ["start", "asking 0"]);
      assert.deepEqual(run.pauses[1]!.logs.map((l) => l.message), ["got 0", "asking 1"]);
      assert.deepEqual(run.final.logs.map((l) => l.message), ["got 2", "end"]);
      assert.deepEqual(run.pauses[1]!.state?.logs.map((l) => l.message), expected.slice(0, 4));
    }
  });

  Deno.test(`[${variant}] restoring a state reports no old console lines as new`, async () => {
    const paused = await executeCode(
      `console.log("once"); await fetch("https://x.example/"); console.log("twice")`,
      { variant },
    );
    using vm = new FetchVM({ variant });
    const restored = await vm.restore(viaJson(paused.state!));
    assert.equal(restored.type, "paused");
    assert.deepEqual(restored.logs, []);
    assert.deepEqual(restored.state?.logs.map((l) => l.message), ["once"]);
    const done = await vm.resume(restored.state!, { ...ok(1), id: paused.fetchRequest!.id });
    assert.deepEqual(done.logs.map((l) => l.message), ["twice"]);
    assert.deepEqual(done.state?.logs.map((l) => l.message), ["once", "twice"]);
  });

  Deno.test(`[${variant}] the state keeps the newest console lines up to maxLogEntries`, async () => {
    const done = await executeCode(`for (let i = 0; i < 10; i++) console.log("line " + i);`, {
      variant,
      maxLogEntries: 4,
    });
    assert.deepEqual(done.state?.logs.map((l) => l.message), [
      "line 6",
      "line 7",
      "line 8",
      "line 9",
    ]);
    assert.ok(done.state!.droppedLogs > 0);
  });

  // --- what the guest cannot reach --------------------------------------------------------

  Deno.test(`[${variant}] the guest has no Deno, require, process or host bridge`, async () => {
    const done = await executeCode(
      `[typeof Deno, typeof require, typeof process, typeof __flowstateHost,
  typeof globalThis.Deno, Object.getOwnPropertyNames(globalThis).filter((n) => /host|deno/i.test(n))]`,
      { variant },
    );
    assert.deepEqual(done.result, [
      "undefined",
      "undefined",
      "undefined",
      "undefined",
      "undefined",
      [],
    ]);
  });

  Deno.test(`[${variant}] import("x") rejects and static import is a syntax error`, async () => {
    const dynamic = await executeCode(
      `let outcome;
try { await import("x"); outcome = "loaded"; } catch (e) { outcome = "refused"; }
outcome`,
      { variant },
    );
    assert.equal(dynamic.result, "refused");
    await rejectsWithKind(executeCode(`import x from "x";\nx`, { variant }), "syntax");
  });

  Deno.test(`[${variant}] the Function constructor reached through this.constructor sees no Deno`, async () => {
    const done = await executeCode(
      `[this.constructor.constructor("return typeof Deno")(),
  (() => {}).constructor("return typeof process")(),
  (async () => {}).constructor === Function]`,
      { variant },
    );
    assert.deepEqual(done.result, ["undefined", "undefined", false]);
  });

  Deno.test(`[${variant}] a guest that overrides JSON and Promise.prototype.then cannot break the host`, async () => {
    const code = `JSON.stringify = () => "hijacked";
JSON.parse = () => ({ hijacked: true });
Promise.prototype.then = function () { throw new Error("hijacked then"); };
const r = await fetch("https://x.example/", { method: "post", body: "b" });
[r.status, await r.json()]`;
    const paused = await executeCode(code, { variant });
    assert.equal(paused.fetchRequest?.url, "https://x.example/");
    assert.deepEqual(paused.fetchRequest?.options, {
      method: "POST",
      headers: { "content-type": "text/plain;charset=UTF-8" },
      body: "b",
    });
    const done = await resumeExecution(viaJson(paused.state!), {
      ...ok({ a: 1 }),
      id: paused.fetchRequest!.id,
    });
    assert.deepEqual(done.result, [200, { a: 1 }]);
  });

  // BUG: the prelude wraps host messages with the guest-visible JSON.stringify semantics, so an
  // `Object.prototype.toJSON` defined by the guest replaces the whole request message: the
  // recorded FetchRequest has no url and no method (`options: {}`), and a cold restore of that
  // state reports "completed" with nothing pending instead of paused.
  Deno.test({
    name:
      `[${variant}] a guest Object.prototype.toJSON does not change the request the host records`,

    fn: async () => {
      const code = `Object.prototype.toJSON = function () { return "hijacked"; };
const r = await fetch("https://x.example/", { method: "post", body: "b" });
delete Object.prototype.toJSON;
r.status`;
      const paused = await executeCode(code, { variant });
      assert.equal(paused.fetchRequest?.url, "https://x.example/");
      assert.deepEqual(paused.fetchRequest?.options, {
        method: "POST",
        headers: { "content-type": "text/plain;charset=UTF-8" },
        body: "b",
      });
      const done = await resumeExecution(viaJson(paused.state!), {
        ...ok({ a: 1 }),
        id: paused.fetchRequest!.id,
      });
      assert.equal(done.result, 200);
    },
  });

  // BUG: with a guest `Object.prototype.toJSON`, the prelude's outcome message
  // `JSON.stringify({ done: true, error })` becomes `"hijacked"`, so the host sees no error and
  // no result: an uncaught exception (or a BigInt result) completes "successfully" with no result.
  Deno.test({
    name: `[${variant}] a guest Object.prototype.toJSON cannot hide an uncaught exception`,

    fn: async () => {
      const error = await rejectsWithKind(
        executeCode(
          `Object.prototype.toJSON = function () { return "hijacked"; };\nthrow new Error("lost");`,
          { variant },
        ),
        "exception",
      );
      assert.equal(error.message, "lost");
    },
  });
}
