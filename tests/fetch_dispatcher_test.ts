import { assertEquals } from "@std/assert";
import { createEgressPolicy } from "../lib/outbound/egress_policy.ts";
import { FetchDispatcher } from "../lib/outbound/fetch_dispatcher.ts";
import { performFetch } from "../lib/outbound/outbound_fetch.ts";
import { createLogger } from "../lib/log.ts";
import type { FetchRequest, FetchResponse } from "../lib/engine/types.ts";

/** Upper bound on waiting for something that must happen; only guards against a hang. */
const LIVENESS_MS = 10_000;

/** An upstream whose `/hold/<key>` answers when released, and which sees clients leave. */
function startHoldingUpstream() {
  const released = new Map<string, PromiseWithResolvers<void>>();
  const arrived = new Map<string, PromiseWithResolvers<void>>();
  const left = new Map<string, PromiseWithResolvers<void>>();
  const slot = (map: Map<string, PromiseWithResolvers<void>>, key: string) => {
    let entry = map.get(key);
    if (!entry) map.set(key, entry = Promise.withResolvers<void>());
    return entry;
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const key = new URL(req.url).pathname.split("/").at(-1)!;
    const onLeave = () => slot(left, key).resolve();
    req.signal.addEventListener("abort", onLeave, { once: true });
    slot(arrived, key).resolve();
    await slot(released, key).promise;
    req.signal.removeEventListener("abort", onLeave);
    return new Response(`answer ${key}`);
  });
  return {
    url: (key: string) => `http://127.0.0.1:${server.addr.port}/hold/${key}`,
    arrived: (key: string) => slot(arrived, key).promise,
    left: (key: string) => slot(left, key).promise,
    release: (key: string) => slot(released, key).resolve(),
    async close() {
      for (const entry of released.values()) entry.resolve();
      await server.shutdown();
    },
  };
}

async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen`)), LIVENESS_MS);
  });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

function request(id: string, url: string): FetchRequest {
  return { id, url, options: { method: "GET" }, timestamp: Date.now() };
}

Deno.test("dispatch cancels the task's requests in flight that it no longer waits for", async () => {
  const upstream = startHoldingUpstream();
  const policy = createEgressPolicy({
    allow: [],
    denyPrivate: false,
    selfOrigins: [],
    localAddresses: () => [],
  });
  const delivered: FetchResponse[] = [];
  const gotB = Promise.withResolvers<void>();
  const dispatcher = new FetchDispatcher({
    perform: (req, signal) =>
      performFetch(req, { timeoutMs: LIVENESS_MS, maxBytes: 1024, policy, signal }),
    post: (_taskId, response) => {
      delivered.push(response);
      if (response.id === "b") gotB.resolve();
      return Promise.resolve("delivered");
    },
    deliverDirect: () => Promise.resolve("delivered"),
    isPending: () => true,
    logger: createLogger({ level: "silent" }),
    postAttempts: 1,
    concurrency: 8,
  });
  try {
    const a = request("a", upstream.url("a"));
    const b = request("b", upstream.url("b"));
    const other = request("c", upstream.url("c"));
    dispatcher.dispatch("t1", [a, b]);
    dispatcher.dispatch("t2", [other]);
    await within(Promise.all([upstream.arrived("a"), upstream.arrived("b")]), "both requests");
    await within(upstream.arrived("c"), "the other task's request");
    dispatcher.dispatch("t1", [b]);
    await within(upstream.left("a"), "the cancelled request closing its connection");
    upstream.release("b");
    await within(gotB.promise, "the kept request being delivered");
    dispatcher.dispatch("t2", []);
    await within(upstream.left("c"), "the ended task's request closing its connection");
    assertEquals(delivered.map((response) => [response.id, response.body]), [["b", "answer b"]]);
  } finally {
    await dispatcher.close();
    await upstream.close();
  }
});

Deno.test("tasks holding many slow requests leave room for another task's single fetch", async () => {
  const upstream = startHoldingUpstream();
  const policy = createEgressPolicy({
    allow: [],
    denyPrivate: false,
    selfOrigins: [],
    localAddresses: () => [],
  });
  const delivered = Promise.withResolvers<FetchResponse>();
  const dispatcher = new FetchDispatcher({
    perform: (req, signal) =>
      performFetch(req, { timeoutMs: LIVENESS_MS, maxBytes: 1024, policy, signal }),
    post: (taskId, response) => {
      if (taskId === "fast") delivered.resolve(response);
      return Promise.resolve("delivered");
    },
    deliverDirect: () => Promise.resolve("delivered"),
    isPending: () => true,
    logger: createLogger({ level: "silent" }),
    postAttempts: 1,
    concurrency: 8,
  });
  try {
    // Three tasks ask for 3 × 8 held requests, more than the 8 performed at once: each one
    // gets some of the turns (first come does not take them all), and room stays free.
    for (const task of ["slow-a", "slow-b", "slow-c"]) {
      const requests = Array.from({ length: 8 }, (_, i) => `${task}-${i}`);
      dispatcher.dispatch(task, requests.map((id) => request(id, upstream.url(id))));
      await within(upstream.arrived(`${task}-0`), `the first request of ${task}`);
    }
    upstream.release("fast");
    dispatcher.dispatch("fast", [request("fast", upstream.url("fast"))]);
    const response = await within(delivered.promise, "the fast task's response");
    assertEquals(response.body, "answer fast");
  } finally {
    await dispatcher.close();
    await upstream.close();
  }
});

Deno.test("a request wanted again while its cancelled response is still being posted is sent again and delivered", async () => {
  const upstream = startHoldingUpstream();
  const policy = createEgressPolicy({
    allow: [],
    denyPrivate: false,
    selfOrigins: [],
    localAddresses: () => [],
  });
  const firstPost = Promise.withResolvers<void>();
  const firstAnswer = Promise.withResolvers<"retry">();
  const delivered = Promise.withResolvers<FetchResponse>();
  let posts = 0;
  const dispatcher = new FetchDispatcher({
    perform: (req, signal) =>
      performFetch(req, { timeoutMs: LIVENESS_MS, maxBytes: 1024, policy, signal }),
    post: (_taskId, response) => {
      if (++posts > 1) {
        delivered.resolve(response);
        return Promise.resolve("delivered");
      }
      firstPost.resolve();
      return firstAnswer.promise;
    },
    deliverDirect: () => Promise.resolve("delivered"),
    isPending: () => true,
    logger: createLogger({ level: "silent" }),
    postAttempts: 5,
    concurrency: 8,
  });
  try {
    const fetch = request("f", upstream.url("f"));
    upstream.release("f");
    dispatcher.dispatch("t", [fetch]);
    await within(firstPost.promise, "the response being posted");
    // The task is released (another replica took it) and taken back while that post is
    // under way; the post then fails.
    dispatcher.dispatch("t", []);
    dispatcher.dispatch("t", [fetch]);
    firstAnswer.resolve("retry");
    const response = await within(delivered.promise, "the request sent again being delivered");
    assertEquals([response.id, response.body], ["f", "answer f"]);
  } finally {
    await dispatcher.close();
    await upstream.close();
  }
});
