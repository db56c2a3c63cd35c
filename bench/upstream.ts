/**
 * The local upstream HTTP server every benchmark fetch goes to, run as its own process so
 * that neither the server under test nor the direct-fetch baseline shares its event loop.
 *
 * - `GET /x?k=<key>&i=<n>` answers `{"n": n, "ok": true, ...}` (JSON, about 100 bytes) and
 *   records the arrival time under `key`, so the time between two fetches of one task can
 *   be measured where the fetches land, the same way for the server and for the baseline.
 * - `GET /arrivals?prefix=<p>` returns and forgets the arrival times of the keys starting
 *   with `p`: `{ "<key>": [ms, ...] }` (milliseconds on this process's clock).
 *
 * Run as a script it listens on 127.0.0.1, a free port, and prints `{"port": <port>}`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** A running upstream process. */
export interface Upstream {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  base: string;
  /** The process id of the upstream. */
  pid: number;
  /** Returns and forgets the arrival times of the keys starting with `prefix`. */
  arrivals(prefix: string): Promise<Record<string, number[]>>;
  /** Stops the process. */
  stop(): Promise<void>;
}

/** The body every `/x` answer carries besides `n`: a realistic small JSON document. */
const FILLER = { ok: true, source: "upstream", tags: ["a", "b", "c"], note: "x".repeat(40) };

/** Starts the upstream in a child process and waits until it listens. */
export async function startUpstream(): Promise<Upstream> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", fileURLToPath(import.meta.url)],
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
  const base = `http://127.0.0.1:${port}`;
  return {
    base,
    pid: child.pid,
    async arrivals(prefix) {
      const response = await fetch(`${base}/arrivals?prefix=${encodeURIComponent(prefix)}`);
      return await response.json() as Record<string, number[]>;
    },
    async stop() {
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

/** Serves the upstream on 127.0.0.1 (a free port); returns the server. */
export function serveUpstream(onListen: (port: number) => void): Deno.HttpServer {
  const arrivals = new Map<string, number[]>();
  return Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => onListen(port),
  }, (req) => {
    const now = performance.now();
    const url = new URL(req.url);
    if (url.pathname === "/x") {
      const key = url.searchParams.get("k");
      if (key !== null) {
        let list = arrivals.get(key);
        if (!list) arrivals.set(key, list = []);
        list.push(now);
      }
      return Response.json({ n: Number(url.searchParams.get("i") ?? 0), ...FILLER });
    }
    if (url.pathname === "/arrivals") {
      const prefix = url.searchParams.get("prefix") ?? "";
      const out: Record<string, number[]> = {};
      for (const [key, list] of arrivals) {
        if (!key.startsWith(prefix)) continue;
        out[key] = list;
        arrivals.delete(key);
      }
      return Response.json(out);
    }
    return new Response("not found", { status: 404 });
  });
}

if (import.meta.main) {
  const server = serveUpstream((port) => console.log(JSON.stringify({ port })));
  Deno.addSignalListener("SIGTERM", () => {
    void server.shutdown().then(() => Deno.exit(0));
  });
}
