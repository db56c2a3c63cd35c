/**
 * Starts the real FlowState server (`server.ts`) as a child process on a free loopback
 * port, waits until `/health` answers, reads its resident memory, and stops it (SIGTERM,
 * then SIGKILL).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { rssOf } from "./proc.ts";

/** The repository root (where `server.ts` is). */
export const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Variables passed through from the benchmark's environment (Deno needs its cache). */
const PASSED_ENV = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "NO_COLOR"];

/** Options of {@link startServer}. */
export interface ServerOptions {
  /** The states directory (`STATES_DIR`). */
  statesDir: string;
  /** Further configuration variables (`FSYNC`, `AUTO_FETCH`, ...). */
  env?: Record<string, string>;
  /** Receives every line the server writes to stdout; stdout is discarded when absent. */
  onLine?: (line: string) => void;
  /** How long to wait for `/health`, ms. Default 120,000. */
  readyTimeoutMs?: number;
}

/** A running server process. */
export interface ServerProcess {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  pid: number;
  /** Time from spawning the process to the first `/health` answer with status 200, ms. */
  readyMs: number;
  /** Current resident set size of the process (VmRSS), bytes. */
  rss(): number;
  /** The last lines the server wrote to stderr. */
  stderrTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs` (default 10,000). */
  stop(graceMs?: number): Promise<void>;
}

/** A free TCP port on 127.0.0.1: listen on port 0, note the port, close. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The environment of a child process: a clean one with Deno's own variables. */
export function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PASSED_ENV) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

/** Starts `server.ts` and resolves once `/health` answers 200. */
export async function startServer(options: ServerOptions): Promise<ServerProcess> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = childEnv({
    PORT: String(port),
    HOST: "127.0.0.1",
    CALL_ENDPOINT: `${url}/call`,
    STATES_DIR: options.statesDir,
    ...options.env,
  });
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "server.ts"],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: options.onLine ? "piped" : "null",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const stderrLines: string[] = [];
  const pumps: Promise<void>[] = [
    pumpLines(child.stderr, (line) => {
      stderrLines.push(line);
      if (stderrLines.length > 40) stderrLines.shift();
    }),
  ];
  if (options.onLine) pumps.push(pumpLines(child.stdout!, options.onLine));

  const stop = async (graceMs = 10_000) => {
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already gone.
        }
      }, graceMs);
      await status;
      clearTimeout(timer);
    }
    await Promise.all(pumps);
  };

  const deadline = started + (options.readyTimeoutMs ?? 120_000);
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`The server exited before serving:\n${stderrLines.join("\n")}`);
    }
    if (performance.now() > deadline) {
      await stop(0);
      throw new Error(`The server did not answer /health in time:\n${stderrLines.join("\n")}`);
    }
    try {
      const response = await fetch(`${url}/health`);
      await response.body?.cancel();
      if (response.status === 200) break;
    } catch {
      // Not listening yet.
    }
    await sleep(5);
  }
  const readyMs = performance.now() - started;
  return {
    url,
    pid: child.pid,
    readyMs,
    rss: () => rssOf(child.pid),
    stderrTail: () => stderrLines.join("\n"),
    stop,
  };
}

/** Calls `onLine` with every line of `stream` until it ends. */
async function pumpLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let newline: number;
      while ((newline = rest.indexOf("\n")) >= 0) {
        onLine(rest.slice(0, newline));
        rest = rest.slice(newline + 1);
      }
    }
  } catch {
    // The process went away.
  }
  if (rest) onLine(rest);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** GETs `url` and parses the JSON answer; throws on a non-2xx status. */
export async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${JSON.stringify(body)}`);
  return body as T;
}

/** POSTs `body` as JSON to `url` and parses the JSON answer; throws on a non-2xx status. */
export async function postJson<T>(url: string, body: unknown): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) {
    throw new Error(`POST ${url}: ${response.status} ${JSON.stringify(answer)}`);
  }
  return answer as T;
}

/** What `GET /health` answers. */
export interface Health {
  success: boolean;
  status: string;
  version: string;
  tasks: { running: number; paused: number; completed: number; error: number };
}

/** A task view as the HTTP API returns it (the fields the benchmark reads). */
export interface TaskViewLite {
  id: string;
  status: "running" | "paused" | "completed" | "error";
  pauseCount: number;
  createdAt: string;
  updatedAt: string;
  result?: unknown;
  error?: { name: string; message: string; kind: string };
}
