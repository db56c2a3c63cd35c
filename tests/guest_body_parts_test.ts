/**
 * A response whose body arrives in parts (`bodyPending`), in the engine: `fetch()` resolves
 * with the first part, a reader loop sees each part as it is delivered, `text()` waits for
 * the last, a failed part errors the body with a TypeError, an abort or a cancel of the
 * stream aborts the request (journaled, so the host closes the connection), parts are
 * counted so a repeat is refused, and a replay after a restart reads the same bytes.
 */
import assert from "node:assert/strict";
import { type ExecutionResult, type FetchResponse, FetchVM, type VMState } from "../lib/mod.ts";
import { rejectsWithKind, VARIANTS, viaJson } from "../testing/engine_driver.ts";

/** A part of the response to `id`: `body` text, more to come unless `last`. */
function part(id: string, index: number, body: string, last = false): FetchResponse {
  const response: FetchResponse = { id, success: true, part: index, body };
  if (index === 0) Object.assign(response, { status: 200, statusText: "OK", headers: {} });
  if (!last) response.bodyPending = true;
  return response;
}

/** Resumes `state` with `response` in a fresh VM, through JSON as after a restart. */
async function coldResume(state: VMState, response: FetchResponse): Promise<ExecutionResult> {
  using vm = new FetchVM({ variant: state.variant });
  return await vm.resume(viaJson(state), response);
}

const READER_LOOP = `const response = await fetch("https://stream.example/");
const seen = [response.status];
const reader = response.body.getReader();
const decoder = new TextDecoder();
for (;;) {
  const { done, value } = await reader.read();
  if (done) break;
  seen.push(decoder.decode(value));
}
seen`;

for (const variant of VARIANTS) {
  Deno.test(`[${variant}] a reader loop sees each part of a body as it is delivered`, async () => {
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(READER_LOOP);
    const id = paused.fetchRequest!.id;
    const first = await vm.deliver(part(id, 0, "ab"));
    assert.equal(first.type, "paused");
    assert.deepEqual(first.fetchRequests!.map((r) => [r.id, r.receivedParts]), [[id, 1]]);
    assert.deepEqual(first.state!.pending, [id]);
    const second = await vm.deliver(part(id, 1, "cd"));
    assert.equal(second.fetchRequest!.receivedParts, 2);
    const done = await vm.deliver(part(id, 2, "", true));
    assert.equal(done.type, "completed");
    assert.deepEqual(done.result, [200, "ab", "cd"]);
  });

  Deno.test(`[${variant}] text() of a body in parts waits for the last part, and a replay reads the same bytes`, async () => {
    const code = `const r = await fetch("https://s.example/");
const head = [r.status, r.headers.get("x-part")];
[head, await r.text()]`;
    const paused = await new FetchVM({ variant }).execute(code);
    const id = paused.fetchRequest!.id;
    const first = await coldResume(paused.state!, {
      ...part(id, 0, "héllo "),
      headers: { "x-part": "yes" },
    });
    assert.equal(first.type, "paused");
    const binary: FetchResponse = {
      id,
      success: true,
      part: 1,
      bodyBase64: btoa(String.fromCharCode(0xe2, 0x82)),
      bodyPending: true,
    };
    const second = await coldResume(first.state!, binary);
    const done = await coldResume(second.state!, {
      id,
      success: true,
      part: 2,
      bodyBase64: btoa(String.fromCharCode(0xac)),
    });
    assert.equal(done.type, "completed");
    assert.deepEqual(done.result, [[200, "yes"], "héllo €"]);
    using vm = new FetchVM({ variant });
    const replayed = await vm.restore(viaJson(done.state!));
    assert.deepEqual(replayed.result, done.result);
  });

  Deno.test(`[${variant}] a failed part errors the body with a TypeError that says why`, async () => {
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(`const r = await fetch("https://s.example/");
try { await r.text(); } catch (error) { [error.name, error.message] }`);
    const id = paused.fetchRequest!.id;
    await vm.deliver(part(id, 0, "partial"));
    const done = await vm.deliver({ id, success: false, part: 1, error: "connection reset" });
    assert.equal(done.type, "completed");
    assert.deepEqual(done.result, ["TypeError", "fetch failed: connection reset"]);
  });

  Deno.test(`[${variant}] a part delivered twice, or out of turn, is refused as stale and changes nothing`, async () => {
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(READER_LOOP);
    const id = paused.fetchRequest!.id;
    const first = await vm.deliver(part(id, 0, "ab"));
    const error = await rejectsWithKind(vm.deliver(part(id, 0, "ab")), "stale");
    assert.match(error.message, /part 0 is not the one awaited \(part 1\)/);
    await rejectsWithKind(vm.deliver(part(id, 2, "zz")), "stale");
    const done = await vm.deliver(part(id, 1, "cd", true));
    assert.deepEqual(done.result, [200, "ab", "cd"]);
    assert.equal(first.state!.journal.filter((e) => e.type === "response").length, 1);
  });

  Deno.test(`[${variant}] aborting while the body arrives errors the reader with the reason and journals the abort`, async () => {
    const code = `const controller = new AbortController();
const r = await fetch("https://s.example/", { signal: controller.signal });
const reader = r.body.getReader();
const first = new TextDecoder().decode((await reader.read()).value);
controller.abort();
const outcome = (p) => p.then(() => "resolved", (e) => e.name);
[first, await outcome(reader.read()), await outcome(reader.closed)]`;
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(code);
    const id = paused.fetchRequest!.id;
    const done = await vm.deliver(part(id, 0, "dots"));
    assert.equal(done.type, "completed");
    assert.deepEqual(done.result, ["dots", "AbortError", "AbortError"]);
    const aborts = done.state!.journal.filter((e) => e.type === "abort");
    assert.deepEqual(aborts.map((e) => e.type === "abort" && e.id), [id]);
    using again = new FetchVM({ variant });
    assert.deepEqual((await again.restore(viaJson(done.state!))).result, done.result);
  });

  Deno.test(`[${variant}] cancelling the body stream aborts the request, and a later part is stale`, async () => {
    using vm = new FetchVM({ variant });
    const paused = await vm.execute(`const r = await fetch("https://s.example/");
await r.body.cancel("enough");
const after = await fetch("https://next.example/");
r.bodyUsed`);
    const id = paused.fetchRequest!.id;
    const next = await vm.deliver(part(id, 0, "x"));
    assert.deepEqual(next.fetchRequests!.map((r) => r.url), ["https://next.example/"]);
    assert.equal(next.state!.journal.filter((e) => e.type === "abort").length, 1);
    await rejectsWithKind(vm.deliver(part(id, 1, "late")), "stale");
    const done = await vm.deliver({
      id: next.fetchRequest!.id,
      success: true,
      status: 200,
      body: "",
    });
    assert.deepEqual(done.result, true);
  });
}
