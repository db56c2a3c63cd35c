/**
 * Responses whose body is slow to come, on the real server with a real upstream: the task
 * gets the status, headers and first bytes before the body is complete, and the rest in
 * parts (`FETCH_BODY_PART_MS`); aborting, or cancelling the body, closes the upstream
 * connection; a server killed with SIGKILL while a body arrives fails that body with a
 * readable error after the restart instead of sending the request again; `GET /status`
 * shows the response as one, with its parts counted. A real-world event-stream reader
 * (`fixtures/stream_events.js`) reads events as they come and, killed mid-stream, takes the
 * stream up again with `Last-Event-ID` to the same result.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { freePort, startServer } from "../testing/server_process.ts";
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
    // A response in parts is one fetch in the metrics: two fetches, both answered.
    const metrics = (await server.request("/metrics")).text;
    assertMatch(metrics, /^flowstate_fetches_total\{outcome="ok"\} 2$/m);
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
/** The upstream's count of closed connections, once it reaches n (100 tries). */
async function closedReaching(n) {
  let closed = 0;
  for (let i = 0; i < 100 && closed < n; i++) {
    closed = (await (await fetch(${lit(api.url("/state"))})).json()).closed;
  }
  return closed;
}
await closedReaching(1);
const cancelled = await fetch(${lit(api.url("/endless"))});
await cancelled.body.cancel();
[first, read, await closedReaching(2)]`,
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

/**
 * `/events`: server-sent events `id: n`, `data: {"token":"w<n> "}` for n = 1..20 (after the
 * `Last-Event-ID` asked for), one every 40 ms, then `event: done`. Records the
 * `last-event-id` of every request.
 */
function startEventStream() {
  const asked: (string | null)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const last = req.headers.get("last-event-id");
    asked.push(last);
    let n = last === null ? 0 : Number(last);
    let timer: ReturnType<typeof setInterval> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        timer = setInterval(() => {
          if (++n > 20) {
            clearInterval(timer);
            controller.enqueue(encoder.encode("event: done\ndata: {}\n\n"));
            controller.close();
            return;
          }
          controller.enqueue(encoder.encode(`id: ${n}\ndata: {"token":"w${n} "}\n\n`));
        }, 40);
      },
      cancel() {
        clearInterval(timer);
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/events`,
    asked,
    close: () => server.shutdown(),
  };
}

const EXPECTED_TEXT = Array.from({ length: 20 }, (_, i) => `w${i + 1} `).join("");

Deno.test("an event stream is read event by event as it arrives, and killed mid-stream the script takes it up with Last-Event-ID to the same result", async () => {
  const code = await Deno.readTextFile(new URL("fixtures/stream_events.js", import.meta.url));
  const stream = startEventStream();
  try {
    const env = { FETCH_BODY_PART_MS: "100" };
    {
      await using server = await startServer({ env });
      const task = await server.createTask({ code, input: { url: stream.url } });
      const done = await server.waitForTask(task.id);
      assertEquals(done.error, undefined);
      assertEquals(done.result, { text: EXPECTED_TEXT, count: 20, reconnects: 0 });
      assert((done.fetches[0]!.parts ?? 0) >= 3, `parts: ${done.fetches[0]!.parts}`);
    }
    stream.asked.length = 0;
    const dir = await Deno.makeTempDir({ prefix: "flowstate-events-" });
    try {
      const port = freePort();
      let server = await startServer({ env, statesDir: dir, port });
      try {
        const task = await server.createTask({ code, input: { url: stream.url } });
        await waitFor(async () => {
          const view = await server.task(task.id);
          return (view.fetchRequests?.[0]?.receivedParts ?? 0) >= 2;
        }, { timeoutMs: 15_000, message: "the stream's second part" });
        await server.kill();
        await server.close();
        server = await startServer({ env, statesDir: dir, port });
        const done = await server.waitForTask(task.id);
        assertEquals(done.error, undefined);
        assertEquals(done.result, { text: EXPECTED_TEXT, count: 20, reconnects: 1 });
        assertEquals(stream.asked.length, 2);
        assertEquals(stream.asked[0], null);
        assert(Number(stream.asked[1]) >= 1, `resumed after event ${stream.asked[1]}`);
        assertMatch(done.logs.map((line) => line.message).join("\n"), /stream cut after event/);
      } finally {
        await server.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  } finally {
    await stream.close();
  }
});
