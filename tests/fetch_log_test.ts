/**
 * What `GET /status?id=` shows of a task's fetches (status, headers, size, a body preview)
 * and `GET /status?id=&fetch=<n>` in full, against a real server and a real upstream.
 */
import { assert, assertEquals } from "@std/assert";
import { BODY_PREVIEW_CHARS } from "../lib/service/fetch_log.ts";
import type { FetchDetailView, FetchLogView } from "../lib/service/task_types.ts";
import { assertErrorResponse, startServer, stepper } from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";

const lit = (value: unknown) => JSON.stringify(value);
const LONG = "x".repeat(1000);

Deno.test("GET /status lists every fetch with what came back; fetch=<n> shows it in full", async (t) => {
  const upstream = startUpstream();
  const server = await startServer();
  const step = stepper(t, server);
  try {
    const code = `const a = await fetch(${lit(upstream.url("/number/4"))});
await a.json();
const b = await fetch(${lit(upstream.url("/echo"))}, {
  method: "POST",
  headers: { "content-type": "text/plain", "x-trace": "t-1" },
  body: ${lit(LONG)},
});
(await b.json()).body.length`;
    const res = await server.request("/task", { body: { id: "logged", code, wait: 20_000 } });
    assertEquals((res.body as { task: { result: unknown } }).task.result, LONG.length);

    await step("the list has index, status, headers, size and a bounded preview", async () => {
      const task = await server.task("logged");
      const fetches = task.fetches as FetchLogView[];
      assertEquals(fetches.map((f) => [f.index, f.method, f.url, f.status]), [
        [0, "GET", upstream.url("/number/4"), 200],
        [1, "POST", upstream.url("/echo"), 200],
      ]);
      const [first, second] = fetches as [FetchLogView, FetchLogView];
      assertEquals(first.headers?.["content-type"], "application/json");
      assertEquals(first.bodyPreview, `{"value":4}`);
      assertEquals(first.size, `{"value":4}`.length);
      assert(second.size! > LONG.length, "size counts the whole body");
      assertEquals(second.bodyPreview!.length, BODY_PREVIEW_CHARS + 1, "preview plus an ellipsis");
      assert(second.bodyPreview!.endsWith("…"));
      assert(!("body" in second) && !("request" in second), "no full body in the list");
    });

    await step(
      "fetch=<index> and fetch=<fetch id> give the request sent and the whole body",
      async () => {
        const byIndex = await server.request("/status?id=logged&fetch=1");
        assertEquals(byIndex.status, 200);
        const detail = (byIndex.body as { fetch: FetchDetailView }).fetch;
        assertEquals(detail.request.headers?.["x-trace"], "t-1");
        assertEquals(detail.request.body, LONG);
        assertEquals(JSON.parse(detail.body!).body, LONG);
        assertEquals(detail.size, new TextEncoder().encode(detail.body!).byteLength);
        const byId = await server.request(`/status?id=logged&fetch=${detail.id}`);
        assertEquals((byId.body as { fetch: FetchDetailView }).fetch, detail);
      },
    );

    await step("an unknown fetch or task is 404", async () => {
      assertErrorResponse(await server.request("/status?id=logged&fetch=2"), 404);
      assertErrorResponse(await server.request("/status?id=nobody&fetch=0"), 404);
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});

Deno.test("credential headers are redacted in the fetch views, except a pending request's", async () => {
  const upstream = startUpstream();
  const server = await startServer();
  try {
    const secrets = {
      authorization: "Bearer sk-live-1",
      cookie: "session=abc",
      "x-api-key": "key-2",
      "x-session-token": "tok-3",
    };
    const code = `const a = await fetch(${lit(upstream.url("/number/1"))}, { headers: ${
      lit(secrets)
    } });
await a.json();
const b = await fetch(${lit(upstream.url("/number/2"))}, { headers: ${
      lit({ ...secrets, "x-trace": "t-2" })
    } });
(await b.json()).value`;
    const created = await server.request("/task", {
      body: { id: "secretive", code, autoFetch: false },
    });
    assertEquals(created.status, 200, created.text);
    const detail = async (n: number) =>
      ((await server.request(`/status?id=secretive&fetch=${n}`)).body as { fetch: FetchDetailView })
        .fetch;
    // Pending: the worker that performs it gets the headers as the task gave them.
    assertEquals((await detail(0)).request.headers, secrets);
    const first = (await detail(0)).id;
    const answer = {
      id: first,
      success: true,
      status: 200,
      headers: { "set-cookie": "sid=upstream-secret", "content-type": "application/json" },
      body: '{"value":1}',
    };
    assertEquals((await server.call("secretive", answer)).status, 200);
    const answered = await detail(0);
    assertEquals(answered.request.headers, {
      authorization: "[redacted]",
      cookie: "[redacted]",
      "x-api-key": "[redacted]",
      "x-session-token": "[redacted]",
    });
    assertEquals(answered.headers, {
      "set-cookie": "[redacted]",
      "content-type": "application/json",
    });
    const second = await detail(1);
    assertEquals(second.request.headers?.authorization, "Bearer sk-live-1", "still pending");
    assertEquals(second.request.headers?.["x-trace"], "t-2");
    const list = (await server.request("/status?id=secretive")).body as {
      task: { fetches: FetchLogView[] };
    };
    const text = JSON.stringify(list);
    for (const value of ["sid=upstream-secret"]) assert(!text.includes(value), value);
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    await server.close();
    await upstream.close();
  }
});
