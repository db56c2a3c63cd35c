/**
 * HTTP clients that connect to one given address whatever the URL's host name resolves to,
 * so that a request goes to the address the egress policy checked (no second lookup, no DNS
 * rebinding between check and connect).
 *
 * Deno's `fetch` has no resolver hook; `Deno.createHttpClient` has proxies:
 *
 * - `http:` uses the `tcp` transport: the client sends the request, unchanged (same
 *   `Host`), over a TCP connection to the address.
 * - `https:` cannot: the `tcp` transport speaks plain HTTP. It uses an HTTP proxy instead, a
 *   one-request `CONNECT` tunnel on a loopback port that connects to the address whatever
 *   host the `CONNECT` names. TLS runs end to end through the tunnel, with the URL's host
 *   name for SNI and certificate checks, exactly as without it. The tunnel takes only the
 *   client that holds its random credential.
 *
 * @module
 */
/** Largest `CONNECT` request head the tunnel reads. */
const MAX_CONNECT_HEAD_BYTES = 8 * 1024;

/** A client bound to one address; `close()` releases it and everything it opened. */
export interface PinnedClient {
  client: Deno.HttpClient;
  close(): void;
}

/** Options of {@link pinnedClient}. */
export interface PinnedClientOptions {
  /** Root certificates (PEM) trusted besides the default ones. */
  caCerts?: string[];
}

/** A client for `url` that connects to `address` (an IP address, IPv6 without brackets). */
export function pinnedClient(
  url: URL,
  address: string,
  options: PinnedClientOptions = {},
): PinnedClient {
  const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
  if (url.protocol !== "https:") {
    // The tcp transport parses its host as a URI authority: IPv6 goes in brackets.
    const hostname = address.includes(":") ? `[${address}]` : address;
    const client = Deno.createHttpClient({ proxy: { transport: "tcp", hostname, port } });
    return { client, close: () => client.close() };
  }
  const tunnel = new ConnectTunnel(address, port);
  const client = Deno.createHttpClient({
    caCerts: options.caCerts,
    proxy: {
      url: `http://127.0.0.1:${tunnel.port}`,
      basicAuth: { username: tunnel.credential, password: "" },
    },
  });
  return {
    client,
    close: () => {
      client.close();
      tunnel.close();
    },
  };
}

/** A loopback `CONNECT` proxy whose every tunnel goes to one address. */
class ConnectTunnel {
  readonly credential = crypto.randomUUID();
  readonly #listener: Deno.Listener;
  readonly #conns = new Set<Deno.Conn>();
  readonly #authorization: string;
  #closed = false;

  constructor(readonly address: string, readonly targetPort: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#authorization = `basic ${btoa(`${this.credential}:`)}`;
    void this.#accept();
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    for (const conn of this.#conns) closeQuietly(conn);
    this.#conns.clear();
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#closed) {
          closeQuietly(conn);
          break;
        }
        void this.#tunnel(conn);
      }
    } catch {
      // The listener was closed.
    }
  }

  async #tunnel(client: Deno.Conn): Promise<void> {
    this.#conns.add(client);
    let upstream: Deno.Conn | undefined;
    try {
      const { head, rest } = await readHead(client);
      const authorized = head.split("\r\n").some((line) => {
        const colon = line.indexOf(":");
        return colon > 0 && line.slice(0, colon).trim().toLowerCase() === "proxy-authorization" &&
          line.slice(colon + 1).trim().toLowerCase() === this.#authorization.toLowerCase();
      });
      if (!head.startsWith("CONNECT ") || !authorized) {
        await client.write(
          new TextEncoder().encode("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"),
        );
        return;
      }
      try {
        upstream = await Deno.connect({ hostname: this.address, port: this.targetPort });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        await client.write(
          new TextEncoder().encode(`HTTP/1.1 502 ${reason.replace(/[\r\n]/g, " ")}\r\n\r\n`),
        );
        return;
      }
      if (this.#closed) return;
      this.#conns.add(upstream);
      await client.write(new TextEncoder().encode("HTTP/1.1 200 Connection established\r\n\r\n"));
      if (rest.byteLength > 0) await upstream.write(rest);
      await Promise.allSettled([
        client.readable.pipeTo(upstream.writable),
        upstream.readable.pipeTo(client.writable),
      ]);
    } catch {
      // A broken tunnel fails the request; fetch reports it.
    } finally {
      closeQuietly(client);
      this.#conns.delete(client);
      if (upstream) {
        closeQuietly(upstream);
        this.#conns.delete(upstream);
      }
    }
  }
}

/** Reads up to the end of a request head; what follows it is returned as `rest`. */
async function readHead(conn: Deno.Conn): Promise<{ head: string; rest: Uint8Array }> {
  const buffer = new Uint8Array(MAX_CONNECT_HEAD_BYTES);
  let length = 0;
  while (length < buffer.byteLength) {
    const n = await conn.read(buffer.subarray(length));
    if (n === null) break;
    length += n;
    const text = new TextDecoder("latin1").decode(buffer.subarray(0, length));
    const end = text.indexOf("\r\n\r\n");
    if (end >= 0) return { head: text.slice(0, end), rest: buffer.slice(end + 4, length) };
  }
  throw new Error("Cannot read the CONNECT request head");
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
