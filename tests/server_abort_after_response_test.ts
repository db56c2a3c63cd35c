/**
 * Aborting a fetch on the real server with a real upstream, as the Fetch standard's "abort
 * the fetch() call" says: after the response came, a body still readable (not read, bytes
 * left in its stream) errors with the signal's reason, while a body already read or empty
 * does not; before or while a request body stream is read, that stream is cancelled with
 * the reason and nothing is sent. The abort is journaled, so a task killed with SIGKILL at
 * every pause errors the body at the same point and ends with the same result.
 */
import { assertEquals } from "@std/assert";
import { startServer } from "../testing/server_process.ts";
import {
  type HeldUpstream,
  runKilledAtEveryPause,
  runUninterrupted,
  startHeldUpstream,
} from "../testing/kill_at_every_pause.ts";

const lit = (value: unknown) => JSON.stringify(value);

/** `/data`: ten digits; `/empty`: an empty 200; `/echo`: the request body. */
function startApi(): HeldUpstream {
  return startHeldUpstream((_req, url, body) => {
    if (url.pathname === "/data") return new Response("0123456789");
    if (url.pathname === "/empty") return new Response("");
    if (url.pathname === "/echo") return new Response(body);
    if (url.pathname === "/meta") return Response.json({ rows: 10 });
    return new Response("no route", { status: 404 });
  });
}

/** Runs `code` to its end on a fresh server and returns its result. */
async function run(code: string): Promise<unknown> {
  await using server = await startServer();
  const task = await server.createTask({ code });
  const done = await server.waitForTask(task.id);
  assertEquals(done.error, undefined);
  assertEquals(done.status, "completed");
  return done.result;
}

Deno.test("aborted after the response, a body stream taken before rejects read() and closed with the reason, and one taken after is an errored stream", async () => {
  const api = startApi();
  try {
    const result = await run(`const controller = new AbortController();
const reason = new Error("stop");
const early = await fetch(${lit(api.url("/data"))}, { signal: controller.signal });
const late = await fetch(${lit(api.url("/data"))}, { signal: controller.signal });
const reader = early.body.getReader();
controller.abort(reason);
const read = await reader.read().then(() => "read", (e) => e === reason);
const closed = await reader.closed.then(() => "closed", (e) => e === reason);
const lateRead = await late.body.getReader().read().then(() => "read", (e) => e === reason);
[read, closed, lateRead]`);
    assertEquals(result, [true, true, true]);
  } finally {
    await api.close();
  }
});

Deno.test("an abort after the body was read to its end, or of an empty body, changes nothing: the stream is closed, not errored", async () => {
  const api = startApi();
  try {
    const result = await run(`const controller = new AbortController();
const signal = controller.signal;
const streamed = await fetch(${lit(api.url("/data"))}, { signal });
const reader = streamed.body.getReader();
const first = new TextDecoder().decode((await reader.read()).value);
const read = await fetch(${lit(api.url("/data"))}, { signal });
const text = read.text();
const empty = await fetch(${lit(api.url("/empty"))}, { signal });
const emptyReader = empty.body.getReader();
controller.abort();
const rest = await reader.read();
[first, rest.done, await text, (await emptyReader.read()).done]`);
    assertEquals(result, ["0123456789", true, "0123456789", true]);
  } finally {
    await api.close();
  }
});

Deno.test("a clone taken before the abort keeps its bytes, the original and a clone taken after reject with the reason", async () => {
  const api = startApi();
  try {
    const result = await run(`const controller = new AbortController();
const response = await fetch(${lit(api.url("/data"))}, { signal: controller.signal });
const before = response.clone();
const streamed = await fetch(${lit(api.url("/data"))}, { signal: controller.signal });
streamed.body;
const teed = streamed.clone();
controller.abort("gone");
const after = response.clone();
const outcome = (p) => p.then((text) => text, (e) => "rejected: " + e);
[await outcome(before.text()), await outcome(response.text()), await outcome(after.text()),
 await outcome(teed.text()), await outcome(streamed.text())]`);
    assertEquals(result, [
      "0123456789",
      "rejected: gone",
      "rejected: gone",
      "0123456789",
      "rejected: gone",
    ]);
  } finally {
    await api.close();
  }
});

Deno.test("fetch with an aborted signal cancels its request body stream at once with the reason and sends nothing", async () => {
  const api = startApi();
  try {
    const result = await run(`let cancelled;
const body = new ReadableStream({
  pull(controller) { controller.enqueue(new Uint8Array([42])); },
  cancel(reason) { cancelled = reason; },
});
const signal = AbortSignal.abort();
const call = fetch(${lit(api.url("/echo"))}, { method: "POST", body, duplex: "half", signal });
const atOnce = cancelled === signal.reason;
const error = await call.catch((e) => e);
const request = new Request(${lit(api.url("/echo"))}, { method: "POST", body: "kept" });
const fromRequest = await fetch(request, { signal }).catch((e) => e);
[atOnce, error === signal.reason, error.name, fromRequest === signal.reason, request.bodyUsed]`);
    assertEquals(result, [true, true, "AbortError", true, true]);
    assertEquals(api.seen, []);
  } finally {
    await api.close();
  }
});

Deno.test("an abort while fetch reads a request body stream rejects the call at once, cancels the stream and sends nothing", async () => {
  const api = startApi();
  try {
    const result = await run(`const controller = new AbortController();
let cancelled;
const body = new ReadableStream({
  start(c) { c.enqueue(new TextEncoder().encode("part")); },
  pull() { return new Promise(() => {}); },
  cancel(reason) { cancelled = reason; },
});
const order = [];
const call = fetch(${lit(api.url("/echo"))}, {
  method: "POST", body, duplex: "half", signal: controller.signal,
}).then(() => order.push("sent"), (e) => order.push(e.name));
await null; await null;
controller.abort();
Promise.resolve().then(() => order.push("next-microtask"));
const atOnce = cancelled === controller.signal.reason;
await call;
const next = await (await fetch(${lit(api.url("/echo"))}, { method: "POST", body: "next" })).text();
[atOnce, order, next]`);
    assertEquals(result, [true, ["AbortError", "next-microtask"], "next"]);
    assertEquals(api.seen.map((s) => s.body), ["next"]);
  } finally {
    await api.close();
  }
});

/** A script that gives up on a report it fetched before reading it, then falls back. */
const GIVE_UP = `const controller = new AbortController();
const report = await fetch(input.base + "/data", { signal: controller.signal });
const reader = report.body.getReader();
const meta = await (await fetch(input.base + "/meta")).json();
controller.abort(new DOMException("report not needed", "TimeoutError"));
let outcome;
try { await reader.read(); outcome = "read"; } catch (e) { outcome = [e.name, e.message]; }
const closed = await reader.closed.then(() => "closed", (e) => e.name);
const fallback = await (await fetch(input.base + "/empty")).text();
({ outcome, closed, meta, fallback })`;

Deno.test("SIGKILL at every pause of a task that aborts a fetch after its response: the replay errors the body at the same point, same result", async () => {
  const api = startApi();
  try {
    const input = { base: api.url("") };
    const reference = await runUninterrupted(GIVE_UP, input);
    assertEquals(reference.error, undefined);
    const expected = {
      outcome: ["TimeoutError", "report not needed"],
      closed: "TimeoutError",
      meta: { rows: 10 },
      fallback: "",
    };
    assertEquals(reference.result, expected);
    api.seen.length = 0;
    const { done, kills } = await runKilledAtEveryPause(api, GIVE_UP, input, "give-up");
    assertEquals(kills, 3);
    assertEquals(done.status, "completed");
    assertEquals(done.result, expected);
    assertEquals(done.pauseCount, reference.pauseCount);
  } finally {
    await api.close();
  }
});
