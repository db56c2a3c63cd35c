/**
 * Responses whose body is slow to come, on the real server with a real upstream: the task
 * gets the status, headers and first bytes before the body is complete, and the rest in
 * parts (`FETCH_BODY_PART_MS`); aborting, or cancelling the body, closes the upstream
 * connection; a server killed with SIGKILL while a body arrives fails that body with a
 * readable error after the restart instead of sending the request again; `GET /status`
 * shows the response as one, with its parts counted.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { startServer } from "../testing/server_process.ts";
import { waitFor } from "../testing/wait.ts";

const lit = (value: unknown) => JSON.stringify(value);
const encoder = new TextEncoder();

/**
 * An upstream of slow bodies. `/trickle` sends "first", then "second" once `/release` was
 * asked for; `/endless` sends dots every 10 ms until the client goes away, noted in
 * `closed` (and by `/state`); `/count` says how many times `/endless` was asked for.
 */
function startSlowUpstream() {
  const release = Promise.withResolvers<void>();
  let endless = 0;
  let closed = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/release") {
      release.resolve();
      return new Response("released");
    }
    if (path === "/state") return Response.json({ closed });
    if (path === "/count") return Response.json({ endless });
    if (path === "/trickle") {
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(encoder.encode("first"));
          await release.promise;
          controller.enqueue(encoder.encode("second"));
          controller.close();
        },
      });
      return new Response(body, { headers: { "x-slow": "yes" } });
    }
    if (path === "/endless") {
      endless++;
      let timer: ReturnType<typeof setInterval> | undefined;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(encoder.encode(".".repeat(2048)));
          timer = setInterval(() => controller.enqueue(encoder.encode(".")), 10);
        },
        cancel() {
          clearInterval(timer);
          closed++;
        },
      });
      return new Response(body, { headers: { "content-type": "text/plain" } });
    }
    return new Response("no route", { status: 404 });
  });
  return {
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    closed: () => closed,
    close: () => server.shutdown(),
  };
}

Deno.test("a body slow to come reaches the task in parts: fetch resolves with the first bytes before the rest exist", async () => {
  const api = startSlowUpstream();
  try {
    await using server = await startServer({ env: { FETCH_BODY_PART_MS: "100" } });
    // The upstream sends "second" only after the task asked for /release, which the task
    // does only once it read "first": a response delivered whole would never come.
    const task = await server.createTask({
      code: `const r = await fetch(${lit(api.url("/trickle"))});
const reader = r.body.getReader();
const decoder = new TextDecoder();
const first = decoder.decode((await reader.read()).value);
await fetch(${lit(api.url("/release"))});
let rest = "";
for (;;) {
  const { done, value } = await reader.read();
  if (done) break;
  rest += decoder.decode(value);
}
[r.status, r.headers.get("x-slow"), first, rest]`,
    });
    const done = await server.waitForTask(task.id);
    assertEquals(done.error, undefined);
    assertEquals(done.result, [200, "yes", "first", "second"]);
    const trickle = done.fetches.find((fetch) => fetch.url.endsWith("/trickle"))!;
    assertEquals(trickle.status, 200);
    assertEquals(trickle.bodyPreview, "firstsecond");
    assertEquals(trickle.size, 11);
    assert(trickle.parts !== undefined && trickle.parts >= 2, `parts: ${trickle.parts}`);
    assertEquals(trickle.receiving, undefined);
  } finally {
    await api.close();
  }
});

Deno.test("aborting while a body arrives rejects its reads with an AbortError and closes the upstream connection", async () => {
  const api = startSlowUpstream();
  try {
    await using server = await startServer({ env: { FETCH_BODY_PART_MS: "100" } });
    const task = await server.createTask({
      code: `const controller = new AbortController();
const r = await fetch(${lit(api.url("/endless"))}, { signal: controller.signal });
const reader = r.body.getReader();
const first = (await reader.read()).value.length > 0;
controller.abort();
const outcome = (p) => p.then(() => "resolved", (e) => e.name);
const read = await outcome(reader.read());
let closed = 0;
for (let i = 0; i < 100 && closed === 0; i++) {
  closed = (await (await fetch(${lit(api.url("/state"))})).json()).closed;
}
const cancelled = await fetch(${lit(api.url("/endless"))});
await cancelled.body.cancel();
for (let i = 0; i < 100 && closed < 2; i++) {
  closed = (await (await fetch(${lit(api.url("/state"))})).json()).closed;
}
[first, read, closed]`,
    });
    const done = await server.waitForTask(task.id);
    assertEquals(done.error, undefined);
    assertEquals(done.result, [true, "AbortError", 2]);
    const endless = done.fetches.filter((fetch) => fetch.url.endsWith("/endless"));
    assertEquals(endless.map((fetch) => fetch.aborted), [true, true]);
  } finally {
    await api.close();
  }
});

Deno.test("killed with SIGKILL while a body arrives, the restarted server fails that body with a readable error and does not send the request again", async () => {
  const api = startSlowUpstream();
  try {
    await using server = await startServer({ env: { FETCH_BODY_PART_MS: "50" } });
    const task = await server.createTask({
      code: `const r = await fetch(${lit(api.url("/endless"))});
let error;
try { await r.text(); } catch (e) { error = [e.name, e.message]; }
[r.status, error]`,
    });
    await waitFor(async () => {
      const view = await server.task(task.id);
      return view.fetchRequests?.[0]?.receivedParts !== undefined;
    }, { timeoutMs: 15_000 });
    await server.kill();
    await server.restart();
    const done = await server.waitForTask(task.id);
    assertEquals(done.status, "completed");
    const [status, error] = done.result as [number, [string, string]];
    assertEquals(status, 200);
    assertEquals(error[0], "TypeError");
    assertMatch(error[1], /lost its connection before the response body was complete/);
    const count = await (await fetch(api.url("/count"))).json();
    assertEquals(count.endless, 1);
    const [endless] = done.fetches;
    assertEquals(endless!.receiving, undefined);
    assertMatch(endless!.error ?? "", /lost its connection/);
  } finally {
    await api.close();
  }
});
