/**
 * The local upstream that the FlowState server under test fetches from, shared by the tests,
 * the benchmarks and the chaos suite: an HTTP/1.1 server on 127.0.0.1, written on plain TCP
 * so that it can also break HTTP on purpose. It records every request it receives (with its
 * headers and body, counted by `Idempotency-Key`) and serves these routes:
 *
 * Well-behaved (keep-alive):
 * - `/echo` (any method): `{ count, method, path, query, body }`, `count` counting the echo
 *   requests served so far (from 1).
 * - `/number/<n>`: `{ value: n }`.
 * - `/delay/<ms>`: answers `{ delayed: ms }` after `ms` milliseconds.
 * - `/hold/<key>`: answers `{ key, value }` only once `release(key, value)` is called; later
 *   requests for a released key answer at once. Keeps a fetch in flight; a client that
 *   closes the connection meanwhile (a cancelled fetch) is noted (`clientLeft`).
 * - `/redirect?to=<url>[&status=302]`: a redirect to `to`.
 * - `/status/<code>`: `{ status: code }` with that HTTP status.
 * - `/limited/<key>?fail=<n>&retryAfter=<s>`: the first `n` requests for `key` answer 429
 *   with `Retry-After: <s>`; later ones `{ key, attempt }` (`attempt` counts from 1).
 * - `/job/<key>?after=<n>`: `{ key, attempt, done }`, `done` from the `n`th poll of `key` on.
 * - `/v/<anything>`: after a random delay between the `minDelayMs` and `maxDelayMs` options,
 *   `{ path, value: valueFor(path) }`, a value that depends on the path only, so a task's
 *   result is known in advance.
 * - `/x?k=<key>&i=<n>`: `{ n, ok: true, ... }` (about 100 bytes), recording the arrival time
 *   under `key`; `/arrivals?prefix=<p>` returns and forgets the arrival times of the keys
 *   starting with `p` (`{ "<key>": [ms, ...] }`, this process's clock). The benchmarks
 *   measure the time between two fetches of one task where the fetches land.
 *
 * Hostile (the connection closes after them):
 * - `/never-start` reads the request and never answers; `/never-end` sends headers and part
 *   of the body, then nothing; `/slow-drip` a chunked body of one byte every 200 ms, forever.
 * - `/lie-longer` (`Content-Length: 1000`, 20 bytes, close), `/lie-shorter`
 *   (`Content-Length: 5` before a longer body), `/close-mid-body`, `/reset` (close without
 *   an answer), `/garbage` (not HTTP), `/invalid-json`.
 * - `/huge-declared`, `/huge-chunked`, `/huge-eof`: up to 4 GiB, written 64 KiB at a time
 *   with backpressure and never held in memory; {@link Upstream.streamed} counts them.
 *
 * Anything else is a 404 `{ error }`. {@link startUpstream} runs it in this process;
 * {@link spawnUpstream} runs it in a child process (the benchmarks, so that neither the
 * server under test nor a baseline shares its event loop); `deno task upstream` runs it on
 * 127.0.0.1:8090 for trying FlowState without internet.
 *
 * @module
 */
import { fromFileUrl } from "@std/path";
import { delay, waitFor } from "./wait.ts";

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
  /** When it arrived (ms since the epoch). */
  receivedAt: number;
  /** Set once the upstream has written its answer (or given up on the client). */
  answered: boolean;
  /** Set when the client closed the connection while a `/hold/` answer was held. */
  clientLeft?: boolean;
}

/** Options of {@link startUpstream}. */
export interface UpstreamOptions {
  /** Shortest delay of `/v/` answers, ms. Default 0. */
  minDelayMs?: number;
  /** Longest delay of `/v/` answers, ms. Default 0. */
  maxDelayMs?: number;
  /** Keep every request in {@link Upstream.requests}. Default true. */
  record?: boolean;
  /** Port to listen on. Default a free one. */
  port?: number;
}

/** The deterministic value `/v/` answers for `path` (FNV-1a of the path, below 1e6). */
export function valueFor(path: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) {
    hash ^= path.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % 1_000_000;
}

/** Largest request head accepted. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Size of the body of the huge routes. */
const HUGE_BYTES = 4 * 1024 * 1024 * 1024;
const CHUNK = new Uint8Array(64 * 1024).fill(0x61);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** The body every `/x` answer carries besides `n`: a realistic small JSON document. */
const FILLER = { ok: true, source: "upstream", tags: ["a", "b", "c"], note: "x".repeat(40) };
const REASONS: Record<number, string> = {
  200: "OK",
  302: "Found",
  404: "Not Found",
  429: "Too Many Requests",
};

/** A well-formed answer. */
interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

interface Hold {
  released: boolean;
  value: unknown;
  waiters: Set<() => void>;
}

/** Reads a connection through a buffer: request heads, sized and chunked bodies. */
class ConnReader {
  #buffer = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;
  constructor(readonly conn: Deno.Conn) {}

  /** The read in progress: one at a time, shared by whoever waits for bytes. */
  #filling: Promise<boolean> | null = null;

  /** Reads more bytes into the buffer; false at the end of the stream. */
  #fill(): Promise<boolean> {
    this.#filling ??= this.#read().finally(() => this.#filling = null);
    return this.#filling;
  }

  /**
   * Resolves `true` when the client closes (or resets) the connection, reading ahead what
   * it sends meanwhile; `false` once `stop` aborts first.
   */
  async closed(stop: AbortSignal): Promise<boolean> {
    const stopped = new Promise<false>((resolve) => {
      if (stop.aborted) resolve(false);
      stop.addEventListener("abort", () => resolve(false), { once: true });
    });
    while (!stop.aborted) {
      const more = await Promise.race([this.#fill().catch(() => false), stopped]);
      if (!more) return !stop.aborted;
    }
    return false;
  }

  async #read(): Promise<boolean> {
    if (this.#start > 0) {
      this.#buffer.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end === this.#buffer.length) {
      const bigger = new Uint8Array(this.#buffer.length * 2);
      bigger.set(this.#buffer);
      this.#buffer = bigger;
    }
    const read = await this.conn.read(this.#buffer.subarray(this.#end));
    if (read === null) return false;
    this.#end += read;
    return true;
  }

  /** The bytes up to (without) `delimiter`, consumed with it; null at the end. */
  async readUntil(delimiter: string, limit: number): Promise<string | null> {
    const bytes = encoder.encode(delimiter);
    for (;;) {
      const at = indexOf(this.#buffer, bytes, this.#start, this.#end);
      if (at >= 0) {
        const text = decoder.decode(this.#buffer.subarray(this.#start, at));
        this.#start = at + bytes.length;
        return text;
      }
      if (this.#end - this.#start > limit) return null;
      if (!await this.#fill()) return null;
    }
  }

  /** Exactly `count` bytes; null when the stream ends first. */
  async readExactly(count: number): Promise<Uint8Array | null> {
    while (this.#end - this.#start < count) {
      if (!await this.#fill()) return null;
    }
    const out = this.#buffer.slice(this.#start, this.#start + count);
    this.#start += count;
    return out;
  }
}

function indexOf(haystack: Uint8Array, needle: Uint8Array, from: number, end: number): number {
  outer: for (let i = from; i + needle.length <= end; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** A request head and body as read from the wire. */
interface WireRequest {
  method: string;
  target: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

async function readRequest(reader: ConnReader): Promise<WireRequest | null> {
  const head = await reader.readUntil("\r\n\r\n", MAX_HEAD_BYTES);
  if (head === null) return null;
  const [requestLine = "", ...lines] = head.split("\r\n");
  const [method = "", target = "/"] = requestLine.split(" ");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
  }
  let body: Uint8Array = new Uint8Array(0);
  if (headers["transfer-encoding"]?.toLowerCase().includes("chunked")) {
    const parts: Uint8Array[] = [];
    for (;;) {
      const sizeLine = await reader.readUntil("\r\n", 1024);
      if (sizeLine === null) return null;
      const size = parseInt(sizeLine, 16);
      if (!Number.isFinite(size)) return null;
      if (size === 0) {
        while ((await reader.readUntil("\r\n", MAX_HEAD_BYTES)) !== "") { /* trailers */ }
        break;
      }
      const part = await reader.readExactly(size);
      if (part === null || await reader.readUntil("\r\n", 2) === null) return null;
      parts.push(part);
    }
    body = concat(parts);
  } else {
    const length = Number(headers["content-length"] ?? 0);
    if (length > 0) {
      const read = await reader.readExactly(length);
      if (read === null) return null;
      body = read;
    }
  }
  return { method, target, headers, body };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function headText(status: number, headers: Record<string, string>): string {
  const lines = [`HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}`];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  return lines.join("\r\n") + "\r\n\r\n";
}

function json(status: number, body: unknown): Reply {
  const nullBody = status === 204 || status === 304;
  return {
    status,
    headers: { "content-type": "application/json" },
    body: nullBody ? undefined : JSON.stringify(body),
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** A running upstream in this process. */
export class Upstream {
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  /** Every request received, in order of arrival (empty with `record: false`). */
  readonly requests: UpstreamRequest[] = [];
  /** Requests received in all. */
  received = 0;
  /** Requests seen per `Idempotency-Key`. */
  readonly keys = new Map<string, number>();
  /** Requests seen per route (first path segment). */
  readonly routes = new Map<string, number>();
  /** Body bytes written by the huge routes, per route. */
  readonly streamed = new Map<string, number>();
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #handlers = new Set<Promise<void>>();
  readonly #closing = new AbortController();
  readonly #holds = new Map<string, Hold>();
  readonly #arrivals = new Map<string, number[]>();
  readonly #options: UpstreamOptions;
  readonly #accepting: Promise<void>;
  #echoCount = 0;
  /** Requests served so far by `/limited/<key>` and `/job/<key>`, by route and key. */
  readonly #attempts = new Map<string, number>();

  constructor(options: UpstreamOptions = {}) {
    this.#options = options;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.origin = `http://127.0.0.1:${this.port}`;
    this.#accepting = this.#accept();
  }

  /** `origin + path` (a bound function, so it can be passed around). */
  readonly url = (path: string): string => this.origin + path;

  /** The requests received for `path` (without query). */
  readonly requestsTo = (path: string): UpstreamRequest[] =>
    this.requests.filter((r) => r.path === path);

  /** Waits until at least `count` requests for `path` have arrived; returns them. */
  async waitForRequests(path: string, count = 1, timeoutMs = 15_000): Promise<UpstreamRequest[]> {
    await waitFor(() => this.requestsTo(path).length >= count, {
      timeoutMs,
      message: () =>
        `upstream: expected ${count} request(s) for ${path}, got ${this.requestsTo(path).length}`,
    });
    return this.requestsTo(path);
  }

  /** Answers every held and future request of `/hold/<key>` with `{ key, value }`. */
  release(key: string, value: unknown = null): void {
    const entry = this.#hold(key);
    entry.released = true;
    entry.value = value;
    for (const wake of [...entry.waiters]) wake();
  }

  /** Idempotency keys seen more than once, and the requests sent beyond the first. */
  duplicates(): { keys: number; extraRequests: number } {
    let keys = 0;
    let extraRequests = 0;
    for (const count of this.keys.values()) {
      if (count > 1) {
        keys++;
        extraRequests += count - 1;
      }
    }
    return { keys, extraRequests };
  }

  /** Returns and forgets the arrival times of `/x` keys starting with `prefix`. */
  arrivals(prefix: string): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    for (const [key, list] of this.#arrivals) {
      if (!key.startsWith(prefix)) continue;
      out[key] = list;
      this.#arrivals.delete(key);
    }
    return out;
  }

  /** Stops: held requests answer 503, the listener and every connection close. */
  async close(): Promise<void> {
    this.#closing.abort();
    for (const entry of this.#holds.values()) {
      for (const wake of [...entry.waiters]) wake();
    }
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    await this.#accepting;
    // Let answers already due (503s of held requests) be written, then cut the rest.
    const grace = new AbortController();
    await Promise.race([Promise.allSettled([...this.#handlers]), delay(200, grace.signal)]);
    grace.abort();
    for (const conn of this.#conns) closeQuietly(conn);
    await Promise.allSettled([...this.#handlers]);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #hold(key: string): Hold {
    let entry = this.#holds.get(key);
    if (!entry) {
      entry = { released: false, value: undefined, waiters: new Set() };
      this.#holds.set(key, entry);
    }
    return entry;
  }

  /** Resolves when the hold is released or the upstream closes. */
  #waitForRelease(entry: Hold): Promise<void> {
    return new Promise((resolve) => {
      if (entry.released || this.#closing.signal.aborted) return resolve();
      const done = () => {
        entry.waiters.delete(done);
        resolve();
      };
      entry.waiters.add(done);
    });
  }

  async #accept(): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return;
      }
      this.#conns.add(conn);
      const handler = this.#serve(conn).catch(() => {}).finally(() => {
        this.#conns.delete(conn);
        closeQuietly(conn);
        this.#handlers.delete(handler);
      });
      this.#handlers.add(handler);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const reader = new ConnReader(conn);
    for (;;) {
      const wire = await readRequest(reader);
      if (!wire) return;
      const arrived = performance.now();
      const url = new URL(wire.target, this.origin);
      const record: UpstreamRequest = {
        seq: ++this.received,
        method: wire.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        headers: wire.headers,
        body: decoder.decode(wire.body),
        receivedAt: Date.now(),
        answered: false,
      };
      if (this.#options.record !== false) this.requests.push(record);
      const key = wire.headers["idempotency-key"];
      if (key !== undefined) this.keys.set(key, (this.keys.get(key) ?? 0) + 1);
      const route = url.pathname.split("/")[1] ?? "";
      this.routes.set(route, (this.routes.get(route) ?? 0) + 1);
      try {
        const reply = await this.#route(conn, reader, route, url, record, arrived);
        if (!reply) return; // A hostile route: the connection ends here.
        const body = reply.body === undefined ? new Uint8Array(0) : encoder.encode(reply.body);
        const headers = { ...reply.headers, "content-length": String(body.length) };
        await writeAll(conn, concat([encoder.encode(headText(reply.status, headers)), body]));
      } finally {
        record.answered = true;
      }
      if (wire.headers.connection?.toLowerCase() === "close") return;
    }
  }

  /** Counts one more request for `key` and returns the count (from 1). */
  #attempt(key: string): number {
    const n = (this.#attempts.get(key) ?? 0) + 1;
    this.#attempts.set(key, n);
    return n;
  }

  /** The answer to a well-formed route, or `null` after a hostile one wrote what it wanted. */
  async #route(
    conn: Deno.Conn,
    reader: ConnReader,
    route: string,
    url: URL,
    record: UpstreamRequest,
    arrived: number,
  ): Promise<Reply | null> {
    const segments = url.pathname.split("/").filter((s) => s !== "");
    const arg = segments[1];
    const signal = this.#closing.signal;
    const send = (text: string) => writeAll(conn, encoder.encode(text));
    const closingHead = (status: number, headers: Record<string, string>) =>
      send(headText(status, { ...headers, connection: "close" }));
    switch (route) {
      case "echo":
        if (segments.length !== 1) break;
        return json(200, {
          count: ++this.#echoCount,
          method: record.method,
          path: url.pathname,
          query: record.query,
          body: record.body,
        });
      case "number":
        if (arg === undefined || segments.length !== 2) break;
        return json(200, { value: Number(arg) });
      case "delay": {
        if (arg === undefined || segments.length !== 2) break;
        const ms = Number(arg);
        await delay(ms, signal);
        return json(200, { delayed: ms });
      }
      case "hold": {
        if (arg === undefined || segments.length !== 2) break;
        const entry = this.#hold(arg);
        const stop = new AbortController();
        const left = reader.closed(stop.signal);
        await Promise.race([this.#waitForRelease(entry), left]);
        stop.abort();
        if (await left) {
          record.clientLeft = true;
          return null;
        }
        if (!entry.released) return json(503, { error: "upstream closing" });
        return json(200, { key: arg, value: entry.value });
      }
      case "redirect": {
        const to = url.searchParams.get("to") ?? "/";
        const status = Number(url.searchParams.get("status") ?? "302");
        return { status, headers: { location: to, "content-type": "text/plain" }, body: "moved" };
      }
      case "status": {
        if (arg === undefined || segments.length !== 2) break;
        const status = Number(arg);
        return json(status, { status });
      }
      case "limited": {
        if (arg === undefined || segments.length !== 2) break;
        const n = this.#attempt(`limited/${arg}`);
        if (n <= Number(url.searchParams.get("fail") ?? "0")) {
          return {
            status: 429,
            headers: {
              "content-type": "application/json",
              "retry-after": url.searchParams.get("retryAfter") ?? "1",
            },
            body: JSON.stringify({ error: "slow down", attempt: n }),
          };
        }
        return json(200, { key: arg, attempt: n });
      }
      case "job": {
        if (arg === undefined || segments.length !== 2) break;
        const n = this.#attempt(`job/${arg}`);
        return json(200, {
          key: arg,
          attempt: n,
          done: n >= Number(url.searchParams.get("after")),
        });
      }
      case "v": {
        const min = this.#options.minDelayMs ?? 0;
        const max = this.#options.maxDelayMs ?? min;
        if (max > 0) await delay(min + Math.random() * (max - min), signal);
        return json(200, { path: url.pathname, value: valueFor(url.pathname) });
      }
      case "x": {
        const key = url.searchParams.get("k");
        if (key !== null) {
          let list = this.#arrivals.get(key);
          if (!list) this.#arrivals.set(key, list = []);
          list.push(arrived);
        }
        return json(200, { n: Number(url.searchParams.get("i") ?? 0), ...FILLER });
      }
      case "arrivals":
        return json(200, this.arrivals(url.searchParams.get("prefix") ?? ""));
      case "never-start":
        await delay(10 * 60_000, signal);
        return null;
      case "never-end":
        await closingHead(200, { "content-type": "text/plain", "content-length": "1000" });
        await send("0123456789");
        await delay(10 * 60_000, signal);
        return null;
      case "slow-drip":
        await closingHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" });
        while (!signal.aborted) {
          await send("1\r\nx\r\n");
          await delay(200, signal);
        }
        return null;
      case "lie-longer":
        await closingHead(200, { "content-type": "application/json", "content-length": "1000" });
        await send('{"value": 1, "pad": "');
        return null;
      case "lie-shorter":
        await closingHead(200, { "content-type": "application/json", "content-length": "5" });
        await send('{"value": 12345}');
        return null;
      case "huge-declared":
        await closingHead(200, {
          "content-type": "text/plain",
          "content-length": String(HUGE_BYTES),
        });
        await this.#stream(conn, route, false);
        return null;
      case "huge-chunked":
        await closingHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" });
        await this.#stream(conn, route, true);
        return null;
      case "huge-eof":
        await closingHead(200, { "content-type": "text/plain" });
        await this.#stream(conn, route, false);
        return null;
      case "invalid-json": {
        const body = '{"broken": [1, 2,';
        await closingHead(200, {
          "content-type": "application/json",
          "content-length": String(body.length),
        });
        await send(body);
        return null;
      }
      case "close-mid-body":
        await closingHead(200, {
          "content-type": "application/json",
          "transfer-encoding": "chunked",
        });
        await send('a\r\n{"value": \r\n');
        return null;
      case "reset":
        return null;
      case "garbage":
        await send("THIS IS NOT HTTP\r\n\u0000\u0001\u0002\r\n\r\n");
        return null;
    }
    return json(404, { error: `no route ${url.pathname}` });
  }

  /** Writes up to {@link HUGE_BYTES} of body, 64 KiB at a time, until the peer goes away. */
  async #stream(conn: Deno.Conn, route: string, chunked: boolean): Promise<void> {
    const chunkHead = encoder.encode(`${CHUNK.length.toString(16)}\r\n`);
    const crlf = encoder.encode("\r\n");
    let sent = 0;
    try {
      while (sent < HUGE_BYTES && !this.#closing.signal.aborted) {
        if (chunked) await writeAll(conn, chunkHead);
        await writeAll(conn, CHUNK);
        if (chunked) await writeAll(conn, crlf);
        sent += CHUNK.length;
      }
    } finally {
      this.streamed.set(route, (this.streamed.get(route) ?? 0) + sent);
    }
  }
}

/** Starts an upstream in this process on a free port of 127.0.0.1. */
export function startUpstream(options: UpstreamOptions = {}): Upstream {
  return new Upstream(options);
}

/** An upstream running in a child process. */
export interface SpawnedUpstream {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly pid: number;
  /** Returns and forgets the arrival times of the `/x` keys starting with `prefix`. */
  arrivals(prefix: string): Promise<Record<string, number[]>>;
  /** Stops the process. */
  close(): Promise<void>;
}

/** Starts the upstream in a child process (it keeps no request records) and waits for it. */
export async function spawnUpstream(options: UpstreamOptions = {}): Promise<SpawnedUpstream> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", fromFileUrl(import.meta.url), JSON.stringify(options)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  while (!buffered.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error("The upstream process exited before listening");
    buffered += value;
  }
  const { port } = JSON.parse(buffered.slice(0, buffered.indexOf("\n"))) as { port: number };
  // Keep draining stdout so the child never blocks on a full pipe.
  const drained = (async () => {
    try {
      while (!(await reader.read()).done) { /* discard */ }
    } catch {
      // The process went away.
    }
  })();
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    pid: child.pid,
    async arrivals(prefix) {
      const response = await fetch(`${origin}/arrivals?prefix=${encodeURIComponent(prefix)}`);
      return await response.json() as Record<string, number[]>;
    },
    async close() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
      await drained;
    },
  };
}

if (import.meta.main) {
  // `deno task upstream` passes `--port <n>`; spawnUpstream passes its options as JSON.
  const [first = "{}", second] = Deno.args;
  const options: UpstreamOptions = first === "--port"
    ? { port: Number(second) }
    : JSON.parse(first);
  const upstream = new Upstream({ ...options, record: false });
  console.log(JSON.stringify({ port: upstream.port }));
  Deno.addSignalListener("SIGTERM", () => {
    void upstream.close().then(() => Deno.exit(0));
  });
}
