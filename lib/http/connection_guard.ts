/**
 * The front door: a TCP listener in front of the HTTP server that bounds what a slow or
 * greedy client can hold. `Deno.serve` has no header or body read timeout and no limit on
 * connections (a client sending one byte a second keeps its connection, and a worker of the
 * server's attention, forever), so the guard accepts the connections itself, passes their
 * bytes unchanged to the server listening on a loopback port, and:
 *
 * - closes a connection whose request head (request line and headers) is not complete
 *   within `headersTimeoutMs` of its first byte (of the connection's opening, for the first
 *   request), answering `408`;
 * - closes a connection whose request body (by `Content-Length` or chunked) is not complete
 *   within `bodyTimeoutMs` of the end of its head;
 * - answers `503` and closes a connection beyond `maxConnections` open at once.
 *
 * It reads the client's bytes only to find where requests begin and end (HTTP/1.1
 * framing); responses, upgrades and HTTP/2 pass through untouched and untimed, so long
 * responses (event streams, waits) are not cut.
 *
 * @module
 */

/** Options of {@link startConnectionGuard}. */
export interface ConnectionGuardOptions {
  /** Interface and port to listen on (0 picks a free port). */
  hostname: string;
  port: number;
  /** The HTTP server's loopback port. */
  upstreamPort: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  maxConnections: number;
  /** Told of each connection closed by a limit. */
  onRefused?: (reason: "headers timeout" | "body timeout" | "too many connections") => void;
}

/** A running guard. */
export interface ConnectionGuard {
  /** The address it listens on. */
  addr: Deno.NetAddr;
  /** Connections open now. */
  readonly size: number;
  /** Stops accepting connections. */
  stopAccepting(): void;
  /** Stops accepting and closes every connection. */
  close(): void;
}

/** Largest request head read, bytes (the server's own limit is lower). */
const MAX_HEAD_BYTES = 256 * 1024;
const READ_CHUNK = 64 * 1024;
const encoder = new TextEncoder();

/** Starts the guard; it listens when this returns. */
export function startConnectionGuard(options: ConnectionGuardOptions): ConnectionGuard {
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const open = new Set<GuardedConnection>();
  let accepting = true;
  void (async () => {
    try {
      for await (const conn of listener) {
        if (!accepting) {
          closeQuietly(conn);
          continue;
        }
        if (open.size >= options.maxConnections) {
          options.onRefused?.("too many connections");
          void refuse(conn, 503, "Too many connections; retry later");
          continue;
        }
        const guarded = new GuardedConnection(conn, options, () => open.delete(guarded));
        open.add(guarded);
        void guarded.run();
      }
    } catch {
      // The listener was closed.
    }
  })();
  const stopAccepting = () => {
    if (!accepting) return;
    accepting = false;
    try {
      listener.close();
    } catch {
      // Already closed.
    }
  };
  return {
    addr: listener.addr as Deno.NetAddr,
    get size() {
      return open.size;
    },
    stopAccepting,
    close() {
      stopAccepting();
      for (const connection of open) connection.close();
    },
  };
}

/** Writes a small JSON error response and closes the connection. */
async function refuse(conn: Deno.Conn, status: 408 | 503, error: string): Promise<void> {
  const body = JSON.stringify({ success: false, error });
  const reason = status === 408 ? "Request Timeout" : "Service Unavailable";
  const head = `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\n` +
    `content-length: ${encoder.encode(body).length}\r\nconnection: close\r\n\r\n`;
  try {
    await conn.write(encoder.encode(head + body));
  } catch {
    // The client is gone.
  } finally {
    closeQuietly(conn);
  }
}

/** Where the reader is in the client's byte stream. */
type Phase =
  | { kind: "head"; text: string; matched: number }
  | { kind: "body"; remaining: number }
  | { kind: "chunk-size"; line: string }
  | { kind: "chunk-data"; remaining: number }
  | { kind: "chunk-end"; seen: number }
  | { kind: "trailer"; line: string; empty: boolean }
  | { kind: "opaque" };

class GuardedConnection {
  #client: Deno.Conn;
  #upstream: Deno.Conn | undefined;
  #options: ConnectionGuardOptions;
  #onClose: () => void;
  #phase: Phase = { kind: "head", text: "", matched: 0 };
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether a request head was complete: then a response may be in flight, and no 408. */
  #answered = false;
  #closed = false;

  constructor(client: Deno.Conn, options: ConnectionGuardOptions, onClose: () => void) {
    this.#client = client;
    this.#options = options;
    this.#onClose = onClose;
  }

  async run(): Promise<void> {
    // The first request's head is timed from the connection's opening.
    this.#arm(this.#options.headersTimeoutMs, "headers timeout");
    try {
      this.#upstream = await Deno.connect({
        hostname: "127.0.0.1",
        port: this.#options.upstreamPort,
      });
    } catch {
      this.close();
      return;
    }
    const upstream = this.#upstream;
    // When the server closes the connection, the client's side is closed too.
    const back = upstream.readable.pipeTo(this.#client.writable).catch(() => {}).finally(() =>
      this.close()
    );
    const buffer = new Uint8Array(READ_CHUNK);
    try {
      for (;;) {
        const n = await this.#client.read(buffer);
        if (n === null) break;
        const chunk = buffer.subarray(0, n);
        if (!this.#advance(chunk)) return;
        await writeAll(upstream, chunk);
      }
      await upstream.closeWrite().catch(() => {});
      await back;
    } catch {
      // Either side went away.
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    closeQuietly(this.#client);
    if (this.#upstream) closeQuietly(this.#upstream);
    this.#onClose();
  }

  #arm(ms: number, reason: "headers timeout" | "body timeout"): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      if (this.#closed) return;
      this.#options.onRefused?.(reason);
      if (reason === "headers timeout" && !this.#answered) {
        this.#closed = true;
        if (this.#upstream) closeQuietly(this.#upstream);
        this.#onClose();
        void refuse(this.#client, 408, "Request headers not received in time");
      } else {
        this.close();
      }
    }, ms);
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Follows the framing over `chunk`; false when the connection must be dropped. */
  #advance(chunk: Uint8Array): boolean {
    let i = 0;
    while (i < chunk.length) {
      const phase = this.#phase;
      switch (phase.kind) {
        case "opaque":
          return true;
        case "head": {
          if (phase.text === "" && this.#timer === undefined) {
            this.#arm(this.#options.headersTimeoutMs, "headers timeout");
          }
          // Find CR LF CR LF, possibly split across reads.
          let j = i;
          let matched = phase.matched;
          while (j < chunk.length && matched < 4) {
            const byte = chunk[j++];
            const want = matched % 2 === 0 ? 0x0d : 0x0a;
            matched = byte === want ? matched + 1 : byte === 0x0d ? 1 : 0;
          }
          phase.text += latin1(chunk.subarray(i, j));
          i = j;
          if (matched < 4) {
            phase.matched = matched;
            if (phase.text.length > MAX_HEAD_BYTES) return false;
            break;
          }
          this.#disarm();
          this.#answered = true;
          this.#startBody(phase.text);
          break;
        }
        case "body": {
          const take = Math.min(phase.remaining, chunk.length - i);
          phase.remaining -= take;
          i += take;
          if (phase.remaining === 0) this.#nextRequest();
          break;
        }
        case "chunk-size": {
          const byte = chunk[i++]!;
          if (byte !== 0x0a) {
            phase.line += String.fromCharCode(byte);
            if (phase.line.length > 1024) return false;
            break;
          }
          const size = parseInt(phase.line.split(";")[0]!.trim(), 16);
          if (!Number.isFinite(size) || size < 0) return false;
          this.#phase = size === 0
            ? { kind: "trailer", line: "", empty: true }
            : { kind: "chunk-data", remaining: size };
          break;
        }
        case "chunk-data": {
          const take = Math.min(phase.remaining, chunk.length - i);
          phase.remaining -= take;
          i += take;
          if (phase.remaining === 0) this.#phase = { kind: "chunk-end", seen: 0 };
          break;
        }
        case "chunk-end": {
          i++;
          if (++phase.seen === 2) this.#phase = { kind: "chunk-size", line: "" };
          break;
        }
        case "trailer": {
          const byte = chunk[i++]!;
          if (byte === 0x0a) {
            if (phase.line.replace(/\r$/, "") === "") {
              this.#nextRequest();
            } else {
              phase.line = "";
            }
          } else {
            phase.line += String.fromCharCode(byte);
            if (phase.line.length > 8192) return false;
          }
          break;
        }
      }
    }
    return true;
  }

  /** After a request head: time its body, or wait for the next request. */
  #startBody(head: string): void {
    const lines = head.split("\r\n");
    const requestLine = lines[0] ?? "";
    if (requestLine.startsWith("PRI * HTTP/2")) {
      this.#phase = { kind: "opaque" };
      return;
    }
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) {
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
    }
    if (headers.has("upgrade")) {
      this.#phase = { kind: "opaque" };
      return;
    }
    const encoding = headers.get("transfer-encoding")?.toLowerCase() ?? "";
    if (encoding.split(",").map((s) => s.trim()).includes("chunked")) {
      this.#phase = { kind: "chunk-size", line: "" };
      this.#arm(this.#options.bodyTimeoutMs, "body timeout");
      return;
    }
    const length = Number(headers.get("content-length") ?? "0");
    if (Number.isSafeInteger(length) && length > 0) {
      this.#phase = { kind: "body", remaining: length };
      this.#arm(this.#options.bodyTimeoutMs, "body timeout");
      return;
    }
    // No body, or a length the server itself refuses.
    this.#nextRequest();
  }

  #nextRequest(): void {
    this.#disarm();
    this.#phase = { kind: "head", text: "", matched: 0 };
  }
}

function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return text;
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
