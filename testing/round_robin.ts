/**
 * A small round-robin HTTP proxy in front of a cluster's replicas, the load balancer of
 * `deno task cluster` and of the cluster tests: each request goes to the next replica; a
 * replica that refuses the connection (it is down) is skipped for that request, which is
 * sent to the next one. Request bodies are read whole first (so that they can be sent
 * again), and so are the answers.
 *
 * @module
 */

/** A running proxy. */
export interface RoundRobinProxy {
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  /** Requests answered by each backend, by origin. */
  served: Map<string, number>;
  /** Stops listening. */
  close(): Promise<void>;
}

/** Headers not passed on. */
const HOP_HEADERS = ["host", "connection", "keep-alive", "content-length", "transfer-encoding"];

/** Starts a proxy on `port` (0 for a free one) to the origins `backends` returns. */
export function startRoundRobin(
  backends: () => readonly string[],
  port = 0,
): RoundRobinProxy {
  let next = 0;
  const served = new Map<string, number>();
  const server = Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const body = req.body ? await req.arrayBuffer() : undefined;
    const headers = new Headers(req.headers);
    for (const name of HOP_HEADERS) headers.delete(name);
    const origins = backends();
    let lastError: unknown = null;
    for (let tried = 0; tried < origins.length; tried++) {
      const origin = origins[next++ % origins.length]!;
      try {
        const response = await fetch(origin + url.pathname + url.search, {
          method: req.method,
          headers,
          body,
          redirect: "manual",
        });
        const answer = await response.arrayBuffer();
        served.set(origin, (served.get(origin) ?? 0) + 1);
        const answerHeaders = new Headers(response.headers);
        for (const name of [...HOP_HEADERS, "content-encoding"]) answerHeaders.delete(name);
        return new Response(answer, { status: response.status, headers: answerHeaders });
      } catch (error) {
        lastError = error;
      }
    }
    return Response.json(
      { success: false, error: `No replica answered: ${String(lastError)}` },
      { status: 502 },
    );
  });
  const actual = server.addr.port;
  return {
    port: actual,
    origin: `http://127.0.0.1:${actual}`,
    served,
    close: () => server.shutdown(),
  };
}
