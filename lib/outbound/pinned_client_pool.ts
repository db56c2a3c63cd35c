/**
 * Pinned clients kept for reuse: one per scheme, address and port, so consecutive requests
 * to one upstream share its kept-alive connections instead of opening a connection (and,
 * for `https:`, a tunnel and a TLS handshake) per request. A client pinned to an address
 * serves every host name that resolved to it: the request's URL still gives the `Host`
 * header, the SNI name and the certificate check. A client unused for `idleMs` is closed,
 * and beyond `maxClients` the least recently used idle one is.
 *
 * @module
 */
import { type PinnedClient, pinnedClient, type PinnedClientOptions } from "./pinned_client.ts";

/** Options of {@link PinnedClientPool}. */
export interface PinnedClientPoolOptions {
  /** A client unused this long is closed, ms. Default 30 s. */
  idleMs?: number;
  /** Clients kept at most (those in use are never closed). Default 256. */
  maxClients?: number;
  /** Root certificates (PEM) the clients trust besides the default ones. */
  caCerts?: string[];
}

interface Entry {
  pinned: PinnedClient;
  users: number;
  lastUsed: number;
}

/** Lends pinned clients, keeping each for reuse until it idles out. */
export class PinnedClientPool {
  readonly #entries = new Map<string, Entry>();
  readonly #idleMs: number;
  readonly #maxClients: number;
  readonly #client: PinnedClientOptions;
  #sweep: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: PinnedClientPoolOptions = {}) {
    this.#idleMs = options.idleMs ?? 30_000;
    this.#maxClients = options.maxClients ?? 256;
    this.#client = { caCerts: options.caCerts };
  }

  /** Clients kept now, in use or idle. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * A client for `url` connecting to `address`; its `close()` gives it back. After
   * {@link close}, every client is a new one, closed when given back.
   */
  acquire(url: URL, address: string): PinnedClient {
    if (this.#closed) return pinnedClient(url, address, this.#client);
    const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
    const key = `${url.protocol}//${address}:${port}`;
    let entry = this.#entries.get(key);
    if (entry) this.#entries.delete(key); // Re-inserted last: the map is in order of use.
    entry ??= { pinned: pinnedClient(url, address, this.#client), users: 0, lastUsed: 0 };
    this.#entries.set(key, entry);
    entry.users++;
    this.#evict();
    let returned = false;
    return {
      client: entry.pinned.client,
      close: () => {
        if (returned) return;
        returned = true;
        entry.users--;
        entry.lastUsed = performance.now();
        if (this.#closed && entry.users === 0) entry.pinned.close();
        else this.#schedule();
      },
    };
  }

  /** Closes every idle client now and each one in use when it is given back. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#sweep);
    for (const [key, entry] of this.#entries) {
      if (entry.users === 0) entry.pinned.close();
      this.#entries.delete(key);
    }
  }

  /** Closes idle clients beyond `maxClients`, least recently used first. */
  #evict(): void {
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= this.#maxClients) return;
      if (entry.users > 0) continue;
      entry.pinned.close();
      this.#entries.delete(key);
    }
  }

  /** Arms the sweep of idle clients, unless armed. */
  #schedule(): void {
    if (this.#sweep !== undefined) return;
    const sweep = setTimeout(() => {
      this.#sweep = undefined;
      const now = performance.now();
      for (const [key, entry] of this.#entries) {
        if (entry.users === 0 && now - entry.lastUsed >= this.#idleMs) {
          entry.pinned.close();
          this.#entries.delete(key);
        }
      }
      if (this.#entries.size > 0) this.#schedule();
    }, this.#idleMs);
    Deno.unrefTimer(sweep);
    this.#sweep = sweep;
  }
}
