/**
 * A local upstream for the real-process tests: an HTTP server on 127.0.0.1 that the
 * FlowState server under test fetches from. It records every request it receives (with its
 * headers and body) and serves these routes:
 *
 * - `/echo` (any method): `{ count, method, path, query, body }`, `count` counting the
 *   echo requests served so far (from 1).
 * - `/number/<n>`: `{ value: n }`.
 * - `/delay/<ms>`: answers `{ delayed: ms }` after `ms` milliseconds.
 * - `/hold/<key>`: answers `{ key, value }` only once the test calls `release(key, value)`;
 *   later requests for a released key answer at once. Keeps a fetch in flight.
 * - `/redirect?to=<url>[&status=302]`: a redirect to `to`.
 * - `/status/<code>`: `{ status: code }` with that HTTP status.
 *
 * Anything else is a 404 `{ error }`.
 *
 * @module
 */
import { waitFor } from "./server_process.ts";

/** One request the upstream received. */
export interface UpstreamRequest {
  /** Order of arrival, from 1. */
  seq: number;
  method: string;
  /** Path without the query. */
  path: string;
  query: Record<string, string>;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: string;
  /** Set once the upstream has written its answer (or given up on the client). */
  answered: boolean;
}

/** A running upstream. */
export interface Upstream {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly port: number;
  /** Every request received, in order of arrival. */
  readonly requests: readonly UpstreamRequest[];
  /** `origin + path`. */
  url(path: string): string;
  /** The requests received for `path` (without query). */
  requestsTo(path: string): UpstreamRequest[];
  /** Waits until at least `count` requests for `path` have arrived; returns them. */
  waitForRequests(path: string, count?: number, timeoutMs?: number): Promise<UpstreamRequest[]>;
  /** Answers every held and future request of `/hold/<key>` with `{ key, value }`. */
  release(key: string, value?: unknown): void;
  /** Answers every held request with 503, then stops the server. */
  close(): Promise<void>;
}

interface Hold {
  released: boolean;
  value: unknown;
  waiters: Set<() => void>;
}

const JSON_HEADERS = { "content-type": "application/json" };

function json(status: number, body: unknown): Response {
  const nullBody = status === 204 || status === 304;
  return new Response(nullBody ? null : JSON.stringify(body), {
    status,
    headers: JSON_HEADERS,
  });
}

/** Starts an upstream on a free port of 127.0.0.1. */
export function startUpstream(): Upstream {
  const requests: UpstreamRequest[] = [];
  const holds = new Map<string, Hold>();
  /** Ends each pending `/delay` wait early (on close). */
  const sleepers = new Set<() => void>();
  let echoCount = 0;
  let closing = false;

  const hold = (key: string): Hold => {
    let entry = holds.get(key);
    if (!entry) {
      entry = { released: false, value: undefined, waiters: new Set() };
      holds.set(key, entry);
    }
    return entry;
  };

  /**
   * Resolves when the hold is released or the upstream closes. A client that goes away
   * (a killed server) leaves its handler waiting; its late answer is simply dropped.
   */
  const waitForRelease = (entry: Hold): Promise<void> =>
    new Promise((resolve) => {
      if (entry.released || closing) return resolve();
      const done = () => {
        entry.waiters.delete(done);
        resolve();
      };
      entry.waiters.add(done);
    });

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      sleepers.add(done);
    });

  const route = async (req: Request, url: URL, record: UpstreamRequest): Promise<Response> => {
    const segments = url.pathname.split("/").filter((s) => s !== "");
    const [head, arg] = segments;
    if (head === "echo" && segments.length === 1) {
      echoCount++;
      return json(200, {
        count: echoCount,
        method: req.method,
        path: url.pathname,
        query: record.query,
        body: record.body,
      });
    }
    if (head === "number" && arg !== undefined && segments.length === 2) {
      return json(200, { value: Number(arg) });
    }
    if (head === "delay" && arg !== undefined && segments.length === 2) {
      const ms = Number(arg);
      await sleep(ms);
      return json(200, { delayed: ms });
    }
    if (head === "hold" && arg !== undefined && segments.length === 2) {
      const entry = hold(arg);
      await waitForRelease(entry);
      if (!entry.released) return json(503, { error: "upstream closing" });
      return json(200, { key: arg, value: entry.value });
    }
    if (head === "redirect" && segments.length === 1) {
      const to = url.searchParams.get("to") ?? "/";
      const status = Number(url.searchParams.get("status") ?? "302");
      return new Response(null, { status, headers: { location: to } });
    }
    if (head === "status" && arg !== undefined && segments.length === 2) {
      const status = Number(arg);
      return json(status, { status });
    }
    return json(404, { error: `no route ${url.pathname}` });
  };

  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    onError: (error) => json(500, { error: String(error) }),
  }, async (req) => {
    const url = new URL(req.url);
    const headers: Record<string, string> = {};
    for (const [name, value] of req.headers) headers[name] = value;
    const record: UpstreamRequest = {
      seq: requests.length + 1,
      method: req.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      body: "",
      answered: false,
    };
    requests.push(record);
    try {
      record.body = await req.text();
      return await route(req, url, record);
    } finally {
      record.answered = true;
    }
  });

  const port = server.addr.port;
  const origin = `http://127.0.0.1:${port}`;
  const requestsTo = (path: string) => requests.filter((r) => r.path === path);

  return {
    origin,
    port,
    requests,
    url: (path) => `${origin}${path}`,
    requestsTo,
    async waitForRequests(path, count = 1, timeoutMs = 15_000) {
      await waitFor(() => requestsTo(path).length >= count, {
        timeoutMs,
        message: () =>
          `upstream: expected ${count} request(s) for ${path}, got ${requestsTo(path).length}`,
      });
      return requestsTo(path);
    },
    release(key, value = null) {
      const entry = hold(key);
      entry.released = true;
      entry.value = value;
      for (const wake of [...entry.waiters]) wake();
    },
    async close() {
      closing = true;
      for (const entry of holds.values()) {
        for (const wake of [...entry.waiters]) wake();
      }
      for (const wake of [...sleepers]) wake();
      await server.shutdown();
      await server.finished;
    },
  };
}
