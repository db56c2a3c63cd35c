import { assert, assertEquals, assertMatch } from "@std/assert";
import { createEgressPolicy, type EgressPolicy } from "../lib/outbound/egress_policy.ts";
import {
  MAX_REDIRECTS,
  performFetch,
  type PerformFetchOptions,
} from "../lib/outbound/outbound_fetch.ts";
import type { FetchRequest, FetchResponse } from "../lib/engine/types.ts";

const KIB = 1024;
/** Upper bound on waiting for something that must happen; only guards against a hang. */
const LIVENESS_MS = 10_000;

const openPolicy: EgressPolicy = createEgressPolicy({
  allow: [],
  denyPrivate: false,
  selfOrigins: [],
  localAddresses: () => [],
});

function request(url: string, options: FetchRequest["options"] = {}): FetchRequest {
  return { id: `req-${crypto.randomUUID()}`, url, options, timestamp: Date.now() };
}

function options(overrides: Partial<PerformFetchOptions> = {}): PerformFetchOptions {
  return { timeoutMs: LIVENESS_MS, maxBytes: 64 * KIB, policy: openPolicy, ...overrides };
}

/** The response body parsed as JSON. */
function jsonBody(response: FetchResponse): unknown {
  assertEquals(typeof response.body, "string", "a text body");
  return JSON.parse(response.body!);
}

/** Resolves when `promise` does, fails the test if it takes longer than LIVENESS_MS. */
async function eventually<T>(promise: Promise<T>, what: string): Promise<T> {
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

interface Upstream {
  origin: string;
  /** Requests received, by path. */
  seen: { method: string; path: string; headers: Record<string, string>; body: string }[];
  /** Resolves when the client went away from a streaming or hanging response. */
  streamCancelled: Promise<void>;
  /** Bytes the streaming endpoint produced. */
  streamed: () => number;
  close(): Promise<void>;
}

/** A local upstream with one endpoint per behaviour under test. */
function startUpstream(): Upstream {
  const seen: Upstream["seen"] = [];
  const mirrored: Uint8Array<ArrayBuffer>[] = [];
  const release = Promise.withResolvers<void>();
  const streamCancelled = Promise.withResolvers<void>();
  const controllers = new Set<ReadableStreamDefaultController<Uint8Array>>();
  let streamed = 0;
  const chunk = new Uint8Array(16 * KIB).fill(0x61);
  let origin = "";

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const path = url.pathname;
    const bytes = new Uint8Array(await req.arrayBuffer());
    mirrored.push(bytes);
    seen.push({
      method: req.method,
      path,
      headers: Object.fromEntries(req.headers),
      body: new TextDecoder().decode(bytes),
    });
    const json = (value: unknown, init: ResponseInit = {}) =>
      new Response(JSON.stringify(value), {
        ...init,
        headers: { "content-type": "application/json; charset=utf-8", ...init.headers },
      });
    const redirect = (status: number, location: string) =>
      new Response(null, { status, headers: { location } });

    if (path === "/json") return json({ a: 1, list: [true, null] });
    if (path === "/text") {
      return new Response("hello", { headers: { "content-type": "text/plain" } });
    }
    if (path === "/missing") {
      return json({ error: "nope" }, { status: 404, statusText: "Not Found" });
    }
    if (path === "/bad-json") {
      return new Response("{not json", { headers: { "content-type": "application/json" } });
    }
    if (path === "/string-json") {
      return new Response('"hi"', { headers: { "content-type": "application/json" } });
    }
    if (path === "/problem") {
      return new Response('{"title":"x"}', {
        headers: { "content-type": "application/problem+json" },
      });
    }
    if (path === "/binary") {
      return new Response(new Uint8Array([0xff, 0xfe, 0x41]), {
        headers: { "content-type": "application/octet-stream", "x-multi": "a" },
      });
    }
    if (path === "/echo") return json(seen.at(-1));
    if (path === "/mirror") {
      return new Response(await mirrored.at(-1)!, {
        headers: { "content-type": req.headers.get("content-type") ?? "application/octet-stream" },
      });
    }
    if (path === "/exact") {
      return new Response('{ "price": 1.50, "big": 12345678901234567890 }', {
        headers: { "content-type": "application/json" },
      });
    }
    if (path.startsWith("/chain/")) {
      const n = Number(path.slice("/chain/".length));
      return n === 0 ? json({ done: true }) : redirect(302, `/chain/${n - 1}`);
    }
    if (path === "/loop") return redirect(302, "/loop");
    if (path === "/to-metadata") return redirect(302, "http://169.254.169.254/latest/meta-data");
    if (path === "/to") {
      return redirect(Number(url.searchParams.get("status")), url.searchParams.get("location")!);
    }
    if (path === "/big-known") return new Response("x".repeat(200 * KIB));
    if (path === "/stall" || path === "/endless") {
      const endless = path === "/endless";
      let sentFirst = false;
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controllers.add(controller);
        },
        pull(controller) {
          if (endless || !sentFirst) {
            sentFirst = true;
            streamed += chunk.byteLength;
            controller.enqueue(chunk);
            return;
          }
          // Stall: never enqueue more until cancelled or released.
          return release.promise;
        },
        cancel() {
          controllers.delete(body as unknown as ReadableStreamDefaultController<Uint8Array>);
          streamCancelled.resolve();
        },
      }, { highWaterMark: 0 });
      return new Response(body, { headers: { "content-type": "text/plain" } });
    }
    return new Response("no such endpoint", { status: 500 });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
  origin = `http://127.0.0.1:${server.addr.port}`;
  return {
    origin,
    seen,
    streamCancelled: streamCancelled.promise,
    streamed: () => streamed,
    async close() {
      release.resolve();
      for (const controller of controllers) {
        try {
          controller.close();
        } catch {
          // Already closed or errored.
        }
      }
      await server.shutdown();
    },
  };
}

/**
 * A raw TCP server. With a `response`, it answers every request with it written verbatim
 * and closes the connection (for bodies that end early or lie about their length).
 * Without one, it never answers and reports when the client goes away.
 */
function startRawServer(response?: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const handlers = new Set<Promise<void>>();
  const requested = Promise.withResolvers<void>();
  const clientGone = Promise.withResolvers<void>();
  const serve = async (conn: Deno.Conn) => {
    try {
      const buffer = new Uint8Array(16 * KIB);
      let text = "";
      while (!text.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) return;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
      requested.resolve();
      if (response !== undefined) {
        await conn.write(new TextEncoder().encode(response));
        return;
      }
      while (await conn.read(buffer) !== null) {
        // Discard until the client closes the connection.
      }
      clientGone.resolve();
    } catch {
      clientGone.resolve();
    } finally {
      conn.close();
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const handling = serve(conn);
        handlers.add(handling);
        handling.finally(() => handlers.delete(handling));
      }
    } catch {
      // Listener closed.
    }
  })();
  return {
    origin: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    requested: requested.promise,
    clientGone: clientGone.promise,
    async close() {
      listener.close();
      await accepting;
      await Promise.all(handlers);
    },
  };
}

async function withRawServer(
  response: string | undefined,
  fn: (server: ReturnType<typeof startRawServer>) => Promise<void>,
): Promise<void> {
  const server = startRawServer(response);
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

async function withUpstream(fn: (upstream: Upstream) => Promise<void>): Promise<void> {
  const upstream = startUpstream();
  try {
    await fn(upstream);
  } finally {
    await upstream.close();
  }
}

Deno.test("a JSON response arrives as its exact text with status, headers and final URL", async () => {
  await withUpstream(async ({ origin }) => {
    const req = request(`${origin}/json`);
    const before = Date.now();
    const response = await performFetch(req, options());
    assertEquals(response.id, req.id);
    assertEquals(response.success, true);
    assertEquals(response.status, 200);
    assertEquals(response.statusText, "OK");
    assertEquals(response.body, '{"a":1,"list":[true,null]}');
    assertEquals(response.data, { a: 1, list: [true, null] });
    assertEquals(response.url, `${origin}/json`);
    assertEquals(response.headers?.["content-type"], "application/json; charset=utf-8");
    assertEquals(response.error, undefined);
    assert(response.timestamp! >= before);
  });
});

Deno.test("a text response arrives as text", async () => {
  await withUpstream(async ({ origin }) => {
    const response = await performFetch(request(`${origin}/text`), options());
    assertEquals([response.success, response.status, response.body], [true, 200, "hello"]);
  });
});

Deno.test("a 404 is a response with success false and its status, not an error", async () => {
  await withUpstream(async ({ origin }) => {
    const response = await performFetch(request(`${origin}/missing`), options());
    assertEquals(response.success, false);
    assertEquals(response.status, 404);
    assertEquals(response.statusText, "Not Found");
    assertEquals(jsonBody(response), { error: "nope" });
    assertEquals(response.error, undefined);
  });
});

Deno.test("a body arrives byte for byte: numbers, big integers, spacing and invalid JSON untouched", async () => {
  await withUpstream(async ({ origin }) => {
    const exact = await performFetch(request(`${origin}/exact`), options());
    assertEquals(exact.body, '{ "price": 1.50, "big": 12345678901234567890 }');
    const bad = await performFetch(request(`${origin}/bad-json`), options());
    assertEquals([bad.success, bad.body], [true, "{not json"]);
    const literal = await performFetch(request(`${origin}/string-json`), options());
    assertEquals(literal.body, '"hi"');
  });
});

Deno.test("a body that is not UTF-8 arrives as base64 of its exact bytes", async () => {
  await withUpstream(async ({ origin }) => {
    const response = await performFetch(request(`${origin}/binary`), options());
    assertEquals(response.body, undefined);
    assertEquals(response.bodyBase64, new Uint8Array([0xff, 0xfe, 0x41]).toBase64());
    assertEquals(response.headers?.["x-multi"], "a");
  });
});

Deno.test("an empty body carries neither body field", async () => {
  await withUpstream(async ({ origin }) => {
    const response = await performFetch(
      request(`${origin}/to?status=302&location=/x`, { redirect: "manual" }),
      options(),
    );
    assertEquals([response.body, response.bodyBase64], [undefined, undefined]);
  });
});

Deno.test("a request body is sent as its exact bytes, text or base64", async () => {
  await withUpstream(async ({ origin }) => {
    const bytes = new Uint8Array([0, 0xff, 0x80, 0x41, 0xc3]);
    const binary = await performFetch(
      request(`${origin}/mirror`, { method: "POST", bodyBase64: bytes.toBase64() }),
      options(),
    );
    assertEquals(binary.bodyBase64, bytes.toBase64());
    const text = await performFetch(
      request(`${origin}/mirror`, { method: "POST", body: "\ufeffhé 1.50" }),
      options(),
    );
    assertEquals(text.body, "\ufeffhé 1.50");
  });
});

Deno.test("redirect manual answers with the 3xx and its location, without following", async () => {
  await withUpstream(async ({ origin, seen }) => {
    const url = `${origin}/to?status=301&location=/json`;
    const response = await performFetch(request(url, { redirect: "manual" }), options());
    assertEquals([response.success, response.status], [false, 301]);
    assertEquals(response.headers?.location, "/json");
    assertEquals(response.url, url);
    assertEquals(seen.map((s) => s.path), ["/to"]);
  });
});

Deno.test("redirect error makes a redirect a network failure", async () => {
  await withUpstream(async ({ origin, seen }) => {
    const url = `${origin}/to?status=307&location=/json`;
    const response = await performFetch(request(url, { redirect: "error" }), options());
    assertEquals([response.success, response.status], [false, undefined]);
    assertEquals(
      response.error,
      `Request to ${url} failed: redirected with 307 while its redirect mode is "error"`,
    );
    assertEquals(seen.map((s) => s.path), ["/to"]);
    const plain = await performFetch(request(`${origin}/json`, { redirect: "error" }), options());
    assertEquals(plain.status, 200);
  });
});

Deno.test("method, headers and body are forwarded with an Idempotency-Key and without hop-by-hop headers", async () => {
  await withUpstream(async ({ origin, seen }) => {
    const req = request(`${origin}/echo`, {
      method: "post",
      headers: {
        "Content-Type": "application/json",
        "X-Custom": "yes",
        "Connection": "x-drop-me",
        "X-Drop-Me": "1",
        "Keep-Alive": "timeout=5",
        "Host": "evil.test",
        "Upgrade": "websocket",
      },
      body: '{"n":1}',
    });
    const response = await performFetch(req, options());
    assertEquals(response.status, 200);
    const got = seen.at(-1)!;
    assertEquals(got.method, "POST");
    assertEquals(got.body, '{"n":1}');
    assertEquals(got.headers["content-type"], "application/json");
    assertEquals(got.headers["x-custom"], "yes");
    assertEquals(got.headers["idempotency-key"], req.id);
    assertEquals(got.headers.host, new URL(origin).host);
    for (const name of ["x-drop-me", "keep-alive", "upgrade"]) {
      assertEquals(got.headers[name], undefined, name);
    }
  });
});

Deno.test("an Idempotency-Key set by the guest is kept", async () => {
  await withUpstream(async ({ origin, seen }) => {
    const req = request(`${origin}/echo`, { headers: { "Idempotency-Key": "mine" } });
    await performFetch(req, options());
    assertEquals(seen.at(-1)!.headers["idempotency-key"], "mine");
  });
});

Deno.test("a redirect chain is followed and the final URL reported", async () => {
  await withUpstream(async ({ origin, seen }) => {
    const response = await performFetch(request(`${origin}/chain/${MAX_REDIRECTS}`), options());
    assertEquals(response.success, true);
    assertEquals(jsonBody(response), { done: true });
    assertEquals(response.url, `${origin}/chain/0`);
    assertEquals(seen.length, MAX_REDIRECTS + 1);
  });
});

Deno.test("more than the maximum number of redirects is an error", async () => {
  await withUpstream(async ({ origin, seen }) => {
    const url = `${origin}/loop`;
    const response = await performFetch(request(url), options());
    assertEquals(response.success, false);
    assertEquals(response.status, undefined);
    assertEquals(response.error, `Request to ${url} failed: more than ${MAX_REDIRECTS} redirects`);
    assertEquals(seen.length, MAX_REDIRECTS + 1);
  });
});

Deno.test("a redirect to a refused address is refused before connecting", async () => {
  await withUpstream(async ({ origin }) => {
    const response = await performFetch(request(`${origin}/to-metadata`), options());
    assertEquals(response.success, false);
    assertEquals(response.status, undefined);
    assertEquals(
      response.error,
      `Fetch to "http://169.254.169.254/latest/meta-data" refused: 169.254.169.254 is a link-local address`,
    );
  });
});

Deno.test("the policy is checked before connecting", async () => {
  await withUpstream(async ({ origin, seen }) => {
    const policy = createEgressPolicy({ allow: [], denyPrivate: true, selfOrigins: [] });
    const response = await performFetch(request(`${origin}/json`), options({ policy }));
    assertMatch(response.error!, /refused: 127\.0\.0\.1 is a loopback address$/);
    assertEquals(seen, []);
  });
});

Deno.test("the connection goes to the address the policy checked, not to a second lookup", async () => {
  await withUpstream(async ({ origin, seen }) => {
    const port = new URL(origin).port;
    const checked: string[] = [];
    // The name resolves nowhere; only the checked address can reach the upstream.
    const policy: EgressPolicy = {
      check: (url) => {
        checked.push(url.href);
        return Promise.resolve({ address: "127.0.0.1" });
      },
    };
    const url = `http://rebinding.invalid:${port}/json`;
    const response = await performFetch(request(url), options({ policy }));
    assertEquals(response.status, 200, response.error);
    assertEquals(checked, [url]);
    assertEquals(seen.map((r) => [r.path, r.headers.host]), [[
      "/json",
      `rebinding.invalid:${port}`,
    ]]);
  });
});

Deno.test("a name the policy cannot resolve is refused before connecting (fail closed)", async () => {
  const policy = createEgressPolicy({ allow: [], denyPrivate: false, selfOrigins: [] });
  const response = await performFetch(
    request("http://no-such-host.invalid/x"),
    options({ policy }),
  );
  assertEquals(response.success, false);
  assertMatch(response.error!, /refused: cannot resolve no-such-host\.invalid/);
});

Deno.test("every request carries the self mark, replacing one the guest set", async () => {
  await withUpstream(async ({ origin, seen }) => {
    const selfMark = { header: "flowstate-loop", value: "mark-1" };
    const req = request(`${origin}/json`, { headers: { "flowstate-loop": "forged" } });
    const response = await performFetch(req, options({ selfMark }));
    assertEquals(response.status, 200);
    assertEquals(seen[0]?.headers["flowstate-loop"], "mark-1");
  });
});

Deno.test("303 and 302 turn a POST into a GET without body; 307 and 308 keep both", async () => {
  await withUpstream(async ({ origin, seen }) => {
    const post = (status: number) =>
      request(`${origin}/to?status=${status}&location=/echo`, {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "payload",
      });
    for (const status of [301, 302, 303]) {
      const response = await performFetch(post(status), options());
      const echoed = jsonBody(response) as {
        method: string;
        body: string;
        headers: Record<string, string>;
      };
      assertEquals([echoed.method, echoed.body], ["GET", ""], `${status}`);
      assertEquals(echoed.headers["content-type"], undefined);
    }
    for (const status of [307, 308]) {
      const response = await performFetch(post(status), options());
      const echoed = jsonBody(response) as {
        method: string;
        body: string;
        headers: Record<string, string>;
      };
      assertEquals([echoed.method, echoed.body], ["POST", "payload"], `${status}`);
      assertEquals(echoed.headers["content-type"], "text/plain");
    }
    assertEquals(seen.filter((s) => s.path === "/echo").length, 5);
  });
});

Deno.test("a redirect to another origin drops Authorization and Cookie", async () => {
  await withUpstream(async (first) => {
    await withUpstream(async (second) => {
      const headers = { authorization: "Bearer t", cookie: "a=b", "x-keep": "1" };
      const same = await performFetch(
        request(`${first.origin}/to?status=302&location=/echo`, { headers }),
        options(),
      );
      const sameHeaders = (jsonBody(same) as { headers: Record<string, string> }).headers;
      assertEquals([sameHeaders.authorization, sameHeaders.cookie], ["Bearer t", "a=b"]);
      const location = encodeURIComponent(`${second.origin}/echo`);
      const other = await performFetch(
        request(`${first.origin}/to?status=307&location=${location}`, { headers }),
        options(),
      );
      assertEquals(other.url, `${second.origin}/echo`);
      const otherHeaders = (jsonBody(other) as { headers: Record<string, string> }).headers;
      assertEquals([otherHeaders.authorization, otherHeaders.cookie], [undefined, undefined]);
      assertEquals(otherHeaders["x-keep"], "1");
    });
  });
});

Deno.test("a server that never answers times out", async () => {
  await withRawServer(undefined, async ({ origin, clientGone }) => {
    const url = `${origin}/never`;
    const response = await performFetch(request(url), options({ timeoutMs: 200 }));
    assertEquals(response.success, false);
    assertEquals(response.status, undefined);
    assertEquals(response.error, `Request to ${url} timed out after 200 ms`);
    await eventually(clientGone, "the client closing the connection");
  });
});

Deno.test("a server that stalls mid-body times out", async () => {
  await withUpstream(async ({ origin, streamCancelled }) => {
    const url = `${origin}/stall`;
    const response = await performFetch(request(url), options({ timeoutMs: 300 }));
    assertEquals(response.error, `Request to ${url} timed out after 300 ms`);
    assertEquals(response.status, undefined);
    await eventually(streamCancelled, "the upstream stream being cancelled");
  });
});

Deno.test("a streamed body over maxBytes is cut off and the upstream stops streaming", async () => {
  await withUpstream(async ({ origin, streamCancelled, streamed }) => {
    const url = `${origin}/endless`;
    const maxBytes = 100 * KIB;
    const response = await performFetch(request(url), options({ maxBytes }));
    assertEquals(response.success, false);
    assertEquals(response.status, undefined);
    assertEquals(response.error, `Response body from ${url} exceeds ${maxBytes} bytes`);
    await eventually(streamCancelled, "the upstream stream being cancelled");
    assert(streamed() < 100 * maxBytes, `upstream produced ${streamed()} bytes`);
  });
});

Deno.test("a declared Content-Length over maxBytes is refused", async () => {
  await withUpstream(async ({ origin }) => {
    const url = `${origin}/big-known`;
    const response = await performFetch(request(url), options({ maxBytes: 100 * KIB }));
    assertEquals(response.error, `Response body from ${url} exceeds ${100 * KIB} bytes`);
  });
});

Deno.test("a body cut short or shorter than its Content-Length is a network error", async () => {
  const responses = [
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly ten b",
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
  ];
  for (const raw of responses) {
    await withRawServer(raw, async ({ origin }) => {
      const url = `${origin}/cut`;
      const response = await performFetch(request(url), options());
      assertEquals(response.success, false);
      assertEquals(response.status, undefined);
      assert(response.error!.startsWith(`Request to ${url} failed: `), response.error);
    });
  }
});

Deno.test("a refused connection is an error response", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const url = `http://127.0.0.1:${port}/x`;
  const response = await performFetch(request(url), options());
  assertEquals(response.success, false);
  assertEquals(response.status, undefined);
  assert(response.error!.startsWith(`Request to ${url} failed: `), response.error);
  assert(typeof response.timestamp === "number");
});

Deno.test("relative and invalid URLs are errors without any request", async () => {
  let called = false;
  const fetchImpl: typeof fetch = () => {
    called = true;
    return Promise.reject(new Error("should not be called"));
  };
  for (const url of ["/api/items", "not a url", "http://", ""]) {
    const req = request(url);
    const response = await performFetch(req, options({ fetchImpl }));
    assertEquals(response, {
      id: req.id,
      success: false,
      error: `Invalid URL "${url}"`,
      timestamp: response.timestamp,
    });
  }
  assertEquals(called, false);
});

Deno.test("a non-http scheme is refused by the policy", async () => {
  const response = await performFetch(request("file:///etc/hosts"), options());
  assertMatch(response.error!, /refused: only http: and https: URLs are allowed, not "file:"$/);
});

Deno.test("an invalid method or header becomes an error, not an exception", async () => {
  await withUpstream(async ({ origin }) => {
    const badHeader = await performFetch(
      request(`${origin}/json`, { headers: { "bad header": "x" } }),
      options(),
    );
    assertEquals(badHeader.success, false);
    assert(badHeader.error!.startsWith(`Request to ${origin}/json failed: `), badHeader.error);
    const getWithBody = await performFetch(
      request(`${origin}/json`, { method: "GET", body: "x" }),
      options(),
    );
    assertEquals(getWithBody.success, false);
    assert(getWithBody.error!.length > 0);
  });
});

Deno.test("the caller's signal aborts the exchange", async () => {
  await withRawServer(undefined, async ({ origin, requested, clientGone }) => {
    const controller = new AbortController();
    const url = `${origin}/never`;
    const pending = performFetch(request(url), options({ signal: controller.signal }));
    await eventually(requested, "the request reaching the server");
    controller.abort();
    const response = await pending;
    assertEquals(response.error, `Request to ${url} was aborted`);
    await eventually(clientGone, "the client closing the connection");
  });
});

Deno.test("an already aborted signal fails at once without connecting", async () => {
  let called = false;
  const fetchImpl: typeof fetch = () => {
    called = true;
    return Promise.reject(new Error("should not be called"));
  };
  const url = "http://127.0.0.1:9/x";
  const response = await performFetch(
    request(url),
    options({ signal: AbortSignal.abort(), fetchImpl }),
  );
  assertEquals(response.error, `Request to ${url} was aborted`);
  assertEquals(called, false);
});
