/**
 * A local upstream for the chaos suite, on 127.0.0.1, written on raw TCP so it can break
 * HTTP on purpose. Every request is counted by its `Idempotency-Key`.
 *
 * Routes (by path prefix):
 *
 * - `/v/<anything>`: after a random delay, `{"path": ..., "value": valueFor(path)}` (JSON),
 *   a value that depends on the path only, so a task's result is known in advance.
 * - `/never-start`: reads the request, never answers.
 * - `/never-end`: headers and part of the body, then nothing, forever.
 * - `/slow-drip`: a chunked body of one byte every 200 ms, forever.
 * - `/lie-longer`: `Content-Length: 1000`, 20 bytes, then the connection closes.
 * - `/lie-shorter`: `Content-Length: 5` before a longer JSON body.
 * - `/huge-declared`: `Content-Length` of 4 GiB, streamed.
 * - `/huge-chunked`: a chunked body of up to 4 GiB, streamed.
 * - `/huge-eof`: a body of up to 4 GiB ended by closing the connection, streamed.
 * - `/invalid-json`: `Content-Type: application/json` and a body that is not JSON.
 * - `/close-mid-body`: one chunk of a chunked body, then the connection closes.
 * - `/reset`: the connection closes without an answer.
 * - `/garbage`: a reply that is not HTTP.
 * - `/redirect?to=<url>`: `302` to `<url>`.
 *
 * Huge bodies are written 64 KiB at a time with backpressure and never held in memory;
 * {@link Upstream.streamed} counts what was written.
 *
 * @module
 */
import { sleep } from "./server_process.ts";

/** Largest request head accepted. */
const MAX_HEAD_BYTES = 64 * 1024;
/** Size of the body of the huge routes. */
const HUGE_BYTES = 4 * 1024 * 1024 * 1024;
const CHUNK = new Uint8Array(64 * 1024).fill(0x61);
const encoder = new TextEncoder();

/** Options of {@link Upstream.start}. */
export interface UpstreamOptions {
  /** Shortest delay of `/v/` answers, ms. */
  minDelayMs?: number;
  /** Longest delay of `/v/` answers, ms. */
  maxDelayMs?: number;
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

/** One request as the upstream saw it. */
interface Head {
  method: string;
  target: string;
  headers: Map<string, string>;
}

/** The upstream server. */
export class Upstream {
  readonly port: number;
  readonly origin: string;
  /** Requests seen per `Idempotency-Key`. */
  readonly keys = new Map<string, number>();
  /** Requests seen per route (first path segment). */
  readonly routes = new Map<string, number>();
  /** Body bytes written by the huge routes, per route. */
  readonly streamed = new Map<string, number>();
  /** Requests received. */
  requests = 0;
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #handlers = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  readonly #minDelay: number;
  readonly #maxDelay: number;
  readonly #accepting: Promise<void>;

  private constructor(options: UpstreamOptions) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.origin = `http://127.0.0.1:${this.port}`;
    this.#minDelay = options.minDelayMs ?? 0;
    this.#maxDelay = options.maxDelayMs ?? 0;
    this.#accepting = this.#accept();
  }

  /** Starts an upstream on a free port of 127.0.0.1. */
  static start(options: UpstreamOptions = {}): Upstream {
    return new Upstream(options);
  }

  /** The absolute URL of `path`. */
  url(path: string): string {
    return this.origin + path;
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

  /** Stops: closes the listener and every connection, and waits for the handlers. */
  async close(): Promise<void> {
    this.#abort.abort();
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    await this.#accepting;
    for (const conn of this.#conns) closeQuietly(conn);
    await Promise.allSettled([...this.#handlers]);
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
      const handler = this.#serve(conn).finally(() => {
        this.#conns.delete(conn);
        closeQuietly(conn);
        this.#handlers.delete(handler);
      });
      this.#handlers.add(handler);
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const request = await readHead(conn).catch(() => null);
    if (!request) return;
    this.requests++;
    const key = request.headers.get("idempotency-key");
    if (key !== undefined) this.keys.set(key, (this.keys.get(key) ?? 0) + 1);
    const url = new URL(request.target, this.origin);
    const route = url.pathname.split("/")[1] ?? "";
    this.routes.set(route, (this.routes.get(route) ?? 0) + 1);
    try {
      await this.#respond(conn, route, url);
    } catch {
      // the peer went away
    }
  }

  async #respond(conn: Deno.Conn, route: string, url: URL): Promise<void> {
    const signal = this.#abort.signal;
    const send = (text: string) => writeAll(conn, encoder.encode(text));
    switch (route) {
      case "v": {
        const delay = this.#minDelay + Math.random() * (this.#maxDelay - this.#minDelay);
        await sleep(delay, signal);
        const body = JSON.stringify({ path: url.pathname, value: valueFor(url.pathname) });
        return await send(reply(200, { "content-type": "application/json" }, body));
      }
      case "never-start":
        return await sleep(10 * 60_000, signal);
      case "never-end":
        await send(head(200, { "content-type": "text/plain", "content-length": "1000" }));
        await send("0123456789");
        return await sleep(10 * 60_000, signal);
      case "slow-drip":
        await send(head(200, { "content-type": "text/plain", "transfer-encoding": "chunked" }));
        while (!signal.aborted) {
          await send("1\r\nx\r\n");
          await sleep(200, signal);
        }
        return;
      case "lie-longer":
        await send(head(200, { "content-type": "application/json", "content-length": "1000" }));
        return await send('{"value": 1, "pad": "');
      case "lie-shorter":
        await send(head(200, { "content-type": "application/json", "content-length": "5" }));
        return await send('{"value": 12345}');
      case "huge-declared":
        await send(
          head(200, { "content-type": "text/plain", "content-length": String(HUGE_BYTES) }),
        );
        return await this.#stream(conn, route, false);
      case "huge-chunked":
        await send(head(200, { "content-type": "text/plain", "transfer-encoding": "chunked" }));
        return await this.#stream(conn, route, true);
      case "huge-eof":
        await send(head(200, { "content-type": "text/plain" }));
        return await this.#stream(conn, route, false);
      case "invalid-json":
        return await send(
          reply(200, { "content-type": "application/json" }, '{"broken": [1, 2,'),
        );
      case "close-mid-body":
        await send(
          head(200, { "content-type": "application/json", "transfer-encoding": "chunked" }),
        );
        return await send('a\r\n{"value": \r\n');
      case "reset":
        return;
      case "garbage":
        return await send("THIS IS NOT HTTP\r\n\u0000\u0001\u0002\r\n\r\n");
      case "redirect": {
        const to = url.searchParams.get("to") ?? "/";
        return await send(reply(302, { location: to, "content-type": "text/plain" }, "moved"));
      }
      default:
        return await send(reply(404, { "content-type": "text/plain" }, "no such route"));
    }
  }

  /** Writes up to {@link HUGE_BYTES} of body, 64 KiB at a time, until the peer goes away. */
  async #stream(conn: Deno.Conn, route: string, chunked: boolean): Promise<void> {
    const chunkHead = encoder.encode(`${CHUNK.length.toString(16)}\r\n`);
    const crlf = encoder.encode("\r\n");
    let sent = 0;
    try {
      while (sent < HUGE_BYTES && !this.#abort.signal.aborted) {
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

function head(status: number, headers: Record<string, string>): string {
  const lines = [`HTTP/1.1 ${status} ${status === 200 ? "OK" : status === 302 ? "Found" : "X"}`];
  for (const [name, value] of Object.entries({ ...headers, connection: "close" })) {
    lines.push(`${name}: ${value}`);
  }
  return lines.join("\r\n") + "\r\n\r\n";
}

function reply(status: number, headers: Record<string, string>, body: string): string {
  const bytes = encoder.encode(body).length;
  return head(status, { ...headers, "content-length": String(bytes) }) + body;
}

/** Reads the request head, and skips a body announced by `Content-Length`. */
async function readHead(conn: Deno.Conn): Promise<Head | null> {
  const buffer = new Uint8Array(MAX_HEAD_BYTES);
  let filled = 0;
  let end = -1;
  while (end < 0) {
    if (filled === buffer.length) return null;
    const read = await conn.read(buffer.subarray(filled));
    if (read === null) return null;
    filled += read;
    end = indexOfHeadEnd(buffer, filled);
  }
  const text = new TextDecoder().decode(buffer.subarray(0, end));
  const [requestLine = "", ...lines] = text.split("\r\n");
  const [method = "", target = "/"] = requestLine.split(" ");
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  let remaining = Number(headers.get("content-length") ?? 0) - (filled - end - 4);
  const sink = new Uint8Array(16 * 1024);
  while (remaining > 0) {
    const read = await conn.read(sink);
    if (read === null) break;
    remaining -= read;
  }
  return { method, target, headers };
}

function indexOfHeadEnd(bytes: Uint8Array, length: number): number {
  for (let i = 0; i + 3 < length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}
