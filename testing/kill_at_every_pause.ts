/**
 * Durability checks for real-world scripts: an upstream whose answers can be held, a run of
 * a script on a real server uninterrupted, and the same run killed with SIGKILL at every
 * pause (its fetch in flight) and restarted on the same states, so a test can compare the
 * two results.
 *
 * @module
 */
import type { TaskDetailView } from "../lib/service/task_types.ts";
import { freePort, startServer, waitFor } from "./server_process.ts";

/** A request the held upstream received. */
export interface SeenRequest {
  path: string;
  query: string;
  headers: Record<string, string>;
  body: string;
}

/** An upstream on 127.0.0.1 that can hold its answers. */
export interface HeldUpstream {
  /** Every request received, in order. */
  seen: SeenRequest[];
  /** An absolute URL of this upstream. */
  url(path: string): string;
  /** Holds every request from now on until `open()`. */
  hold(): void;
  /** Answers the requests held so far; later ones wait for the next `open()`. */
  open(): void;
  close(): Promise<void>;
}

/**
 * Serves `handler` on a free loopback port; while held, each request (its body read and
 * recorded first) waits until `open()` is called after it arrived.
 */
export function startHeldUpstream(
  handler: (req: Request, url: URL, body: string) => Response | Promise<Response>,
): HeldUpstream {
  const seen: SeenRequest[] = [];
  let gated = false;
  let gate = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const body = await req.text();
    seen.push({
      path: url.pathname,
      query: url.search,
      headers: Object.fromEntries(req.headers),
      body,
    });
    if (gated) await gate.promise;
    return await handler(req, url, body);
  });
  return {
    seen,
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    hold() {
      gated = true;
    },
    open() {
      const old = gate;
      gate = Promise.withResolvers<void>();
      old.resolve();
    },
    async close() {
      gated = false;
      gate.resolve();
      await server.shutdown();
    },
  };
}

/** Runs `code` on a fresh server, uninterrupted, and returns the finished task. */
export async function runUninterrupted(code: string, input: unknown): Promise<TaskDetailView> {
  const server = await startServer();
  try {
    const task = await server.createTask({ code, input });
    return await server.waitForTask(task.id);
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    await server.close();
  }
}

/**
 * Runs `code` with the upstream holding every request, and at each pause (the request has
 * reached the upstream) kills the server with SIGKILL, restarts it on the same states and
 * port, waits for the request to be sent again, then lets the upstream answer. Returns the
 * finished task and how many kills it took.
 */
export async function runKilledAtEveryPause(
  api: HeldUpstream,
  code: string,
  input: unknown,
  id: string,
): Promise<{ done: TaskDetailView; kills: number }> {
  const dir = await Deno.makeTempDir({ prefix: "flowstate-killed-" });
  const port = freePort();
  api.hold();
  let server = await startServer({ statesDir: dir, port });
  let kills = 0;
  try {
    await server.createTask({ id, code, input });
    // Requests the upstream has seen once the task's next fetch has reached it.
    let expected = 1;
    for (;;) {
      const next = await waitFor(async () => {
        if (api.seen.length >= expected) return "requested";
        const task = await server.task(id);
        return task.status === "completed" || task.status === "error" ? "ended" : false;
      }, { timeoutMs: 60_000, message: "the next fetch or the end of the task" });
      if (next === "ended") break;
      await server.kill();
      await server.close();
      kills++;
      server = await startServer({ statesDir: dir, port });
      await waitFor(() => api.seen.length > expected, {
        timeoutMs: 30_000,
        message: "the request to be sent again after the restart",
      });
      api.open();
      expected += 2;
    }
    return { done: await server.task(id), kills };
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
