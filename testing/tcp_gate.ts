/**
 * A TCP relay on loopback that can hold its traffic: a server connected through it is cut
 * off from what it connects to (a replica from the database, say) while the others are
 * not, and its connections stay open, so what it sent meanwhile arrives when the gate
 * opens again.
 *
 * @module
 */

/** A running relay. */
export interface TcpGate {
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** Holds every byte, both ways, until {@link open}. */
  hold(): void;
  /**
   * Bytes that arrived while the gate held them, in all (a server cut off sending
   * something new shows here).
   */
  readonly heldBytes: number;
  /** Passes the bytes again, those held first. */
  open(): void;
  /** Stops listening and ends every connection. */
  close(): Promise<void>;
}

/** Starts a relay to `target` on a free port, open. */
export function startTcpGate(target: { hostname: string; port: number }): TcpGate {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const pipes = new Set<Promise<void>>();
  let gate: Promise<void> = Promise.resolve();
  let release: (() => void) | undefined;
  let heldBytes = 0;

  async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const read = await from.read(buffer);
        if (read === null) break;
        if (release) heldBytes += read;
        await gate;
        let written = 0;
        while (written < read) written += await to.write(buffer.subarray(written, read));
      }
    } catch {
      // A side closed: the other follows.
    }
    for (const conn of [from, to]) {
      if (!conns.delete(conn)) continue;
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }

  const accepting = (async () => {
    for await (const client of listener) {
      let server: Deno.Conn;
      try {
        server = await Deno.connect(target);
      } catch {
        client.close();
        continue;
      }
      conns.add(client);
      conns.add(server);
      for (const [from, to] of [[client, server], [server, client]] as const) {
        const run = pipe(from, to).finally(() => pipes.delete(run));
        pipes.add(run);
      }
    }
  })().catch(() => {});

  return {
    port: (listener.addr as Deno.NetAddr).port,
    get heldBytes() {
      return heldBytes;
    },
    hold() {
      if (release) return;
      gate = new Promise((resolve) => release = resolve);
    },
    open() {
      release?.();
      release = undefined;
      gate = Promise.resolve();
    },
    async close() {
      this.open();
      listener.close();
      await accepting;
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      conns.clear();
      await Promise.all(pipes);
    },
  };
}
