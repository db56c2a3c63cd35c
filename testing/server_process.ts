/**
 * Runs the real FlowState server (`server.ts`) as a subprocess for the end-to-end tests.
 *
 * {@link startServer} picks a free port, creates a temporary `STATES_DIR` (unless given
 * one), starts `deno run server.ts` with a clean FlowState environment, and resolves once
 * `/health` answers. The returned {@link ServerProcess} collects every stdout and stderr line (the
 * server's JSON log), talks HTTP to the server through its own client, and is stopped with
 * {@link ServerProcess.stop} (SIGTERM) or {@link ServerProcess.kill} (SIGKILL); both wait
 * for the process and drain its pipes, so the test sanitizers find nothing open.
 *
 * @module
 */
import { fromFileUrl } from "@std/path";
import { CONFIG_DOC } from "../lib/config.ts";
import type { TaskDetailView, TaskView } from "../lib/service/task_types.ts";

/** Directory holding `server.ts`. */
export const PROJECT_ROOT: string = fromFileUrl(new URL("..", import.meta.url));

/** One JSON line of the server's log. */
export interface LogLine {
  time: string;
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** Options of {@link startServer}. */
export interface StartOptions {
  /** Extra environment variables (override the defaults below). */
  env?: Record<string, string>;
  /** States directory to use; default a new temporary one, removed by `close()`. */
  statesDir?: string;
  /** Port to listen on; default a free one. */
  port?: number;
  /** Bearer token {@link ServerProcess.request} sends by default. */
  token?: string;
  /** Time allowed to start, ms. Default 30 s. */
  startTimeoutMs?: number;
}

/** An HTTP exchange with the server, body read in full. */
export interface HttpResult {
  status: number;
  headers: Headers;
  /** The body parsed as JSON, or `undefined` when it is not JSON. */
  body: unknown;
  text: string;
}

/** Options of {@link ServerProcess.request}. */
export interface RequestOptions {
  method?: string;
  /** Sent as JSON unless it is a string (sent as is). */
  body?: unknown;
  headers?: Record<string, string>;
  /** Bearer token; `null` sends none. Default: the server's `token` option. */
  token?: string | null;
}

/** Options of {@link waitFor}. */
export interface WaitOptions {
  /** Give up after this long, ms. Default 15 s. */
  timeoutMs?: number;
  /** Delay between checks, ms. Default 25. */
  intervalMs?: number;
  /** Text of the error thrown on timeout. */
  message?: string | (() => string);
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Calls `check` until it returns a truthy value and resolves with it; throws after
 * `timeoutMs`. A bounded wait, so a test never sleeps blindly nor hangs.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (performance.now() > deadline) {
      const message = typeof options.message === "function"
        ? options.message()
        : options.message ?? "condition";
      throw new Error(`Timed out after ${timeoutMs} ms waiting for: ${message}`);
    }
    await delay(options.intervalMs ?? 25);
  }
}

/** A port of 127.0.0.1 that was free a moment ago (nothing listens on it now). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The parent environment without any FlowState variable, so the tests set them all. */
function baseEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  for (const { name } of CONFIG_DOC) delete env[name];
  env.NO_COLOR = "1";
  return env;
}

/** Reads `stream` as UTF-8 lines, calling `onLine` for each, until it ends. */
async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
      onLine(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
    }
  }
  if (buffer !== "") onLine(buffer);
}

function parseLogLine(line: string): LogLine | null {
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === "object" && value !== null && "msg" in value) return value as LogLine;
  } catch {
    // Not a log line.
  }
  return null;
}

/** A running (or exited) server subprocess. */
export class ServerProcess {
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  readonly statesDir: string;
  /** Every stdout line, in order. */
  readonly lines: string[] = [];
  /** Every line of stdout and stderr, in the order they arrived (warnings go to stderr). */
  readonly #logLines: string[] = [];
  /** Exit status, once the process has exited. */
  exitStatus: Deno.CommandStatus | undefined;

  readonly #child: Deno.ChildProcess;
  readonly #client: Deno.HttpClient;
  readonly #pipes: Promise<unknown>;
  readonly #ownsDir: boolean;
  readonly #token: string | undefined;
  #stderr = "";
  #clientClosed = false;

  constructor(
    child: Deno.ChildProcess,
    init: { port: number; statesDir: string; ownsDir: boolean; token?: string },
  ) {
    this.#child = child;
    this.port = init.port;
    this.origin = `http://127.0.0.1:${init.port}`;
    this.statesDir = init.statesDir;
    this.#ownsDir = init.ownsDir;
    this.#token = init.token;
    this.#client = Deno.createHttpClient({});
    this.#pipes = Promise.allSettled([
      readLines(child.stdout, (line) => {
        this.lines.push(line);
        this.#logLines.push(line);
      }),
      readLines(child.stderr, (line) => {
        this.#stderr += `${line}\n`;
        this.#logLines.push(line);
      }),
    ]);
    void child.status.then((status) => this.exitStatus = status);
  }

  /** Whether the process has exited. */
  get exited(): boolean {
    return this.exitStatus !== undefined;
  }

  /** Everything written to stderr so far. */
  get stderr(): string {
    return this.#stderr;
  }

  /** The lines of stdout and stderr that are JSON log lines, parsed, in arrival order. */
  logs(): LogLine[] {
    return this.#logLines.map(parseLogLine).filter((line): line is LogLine => line !== null);
  }

  /** Waits for a log line matching `predicate` and returns it. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
    return waitFor(() => this.logs().find(predicate), {
      timeoutMs,
      message: "a matching server log line",
    });
  }

  /** The last `count` stdout and stderr lines, for failure messages. */
  tail(count = 40): string {
    const stderr = this.#stderr.trimEnd();
    return [
      `--- server stdout (last ${count} lines) ---`,
      ...this.lines.slice(-count),
      ...(stderr ? ["--- server stderr ---", stderr] : []),
    ].join("\n");
  }

  /** Sends a request and reads the whole body. */
  async request(path: string, options: RequestOptions = {}): Promise<HttpResult> {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? this.#token : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (options.body !== undefined) {
      body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
      headers["content-type"] ??= "application/json";
    }
    const response = await fetch(`${this.origin}${path}`, {
      method: options.method ?? (body === undefined ? "GET" : "POST"),
      headers,
      body,
      client: this.#client,
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  }

  /** `POST /task`; throws unless it answers 200. Returns the task. */
  async createTask(body: Record<string, unknown>): Promise<TaskView> {
    const res = await this.request("/task", { body });
    if (res.status !== 200) {
      throw new Error(`POST /task answered ${res.status}: ${res.text}`);
    }
    return (res.body as { task: TaskView }).task;
  }

  /** `POST /call` with a fetch response; returns the exchange. */
  call(taskId: string, fetchResponse: Record<string, unknown>): Promise<HttpResult> {
    return this.request("/call", { body: { taskId, fetchResponse } });
  }

  /** `GET /status?id=`; throws unless it answers 200. */
  async task(id: string): Promise<TaskDetailView> {
    const res = await this.request(`/status?id=${encodeURIComponent(id)}`);
    if (res.status !== 200) {
      throw new Error(`GET /status?id=${id} answered ${res.status}: ${res.text}`);
    }
    return (res.body as { task: TaskDetailView }).task;
  }

  /**
   * Polls `GET /status?id=` until the task is in one of `statuses` (default: `completed`
   * or `error`) and returns it.
   */
  async waitForTask(
    id: string,
    statuses: readonly string[] = ["completed", "error"],
    timeoutMs = 20_000,
  ): Promise<TaskDetailView> {
    let last: TaskDetailView | undefined;
    await waitFor(async () => {
      if (this.exited) throw new Error(`server exited while waiting for task ${id}`);
      last = await this.task(id);
      return statuses.includes(last.status);
    }, {
      timeoutMs,
      message: () => `task ${id} to be ${statuses.join(" or ")}; last seen ${JSON.stringify(last)}`,
    });
    return last!;
  }

  /** Graceful stop: SIGTERM, then waits for the exit and drains the pipes. */
  stop(): Promise<Deno.CommandStatus> {
    return this.#terminate("SIGTERM");
  }

  /** Hard stop: SIGKILL, then waits for the exit and drains the pipes. */
  kill(): Promise<Deno.CommandStatus> {
    return this.#terminate("SIGKILL");
  }

  /** Kills the process if it still runs and removes the states directory it created. */
  async close(): Promise<void> {
    await this.kill();
    if (this.#ownsDir) await Deno.remove(this.statesDir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #terminate(signal: Deno.Signal): Promise<Deno.CommandStatus> {
    if (!this.exited) {
      try {
        this.#child.kill(signal);
      } catch {
        // It exited in the meantime.
      }
    }
    const status = await this.#child.status;
    await this.#pipes;
    if (!this.#clientClosed) {
      this.#clientClosed = true;
      this.#client.close();
    }
    return status;
  }
}

/** Starts `server.ts` and resolves once `/health` answers 200. */
export async function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  const ownsDir = options.statesDir === undefined;
  const statesDir = options.statesDir ?? await Deno.makeTempDir({ prefix: "flowstate-states-" });
  const port = options.port ?? freePort();
  const env: Record<string, string> = {
    ...baseEnv(),
    PORT: String(port),
    HOST: "127.0.0.1",
    STATES_DIR: statesDir,
    WORKERS: "2",
    ...options.env,
  };
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "server.ts"],
    cwd: PROJECT_ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const server = new ServerProcess(child, { port, statesDir, ownsDir, token: options.token });
  try {
    await waitFor(async () => {
      if (server.exited) {
        throw new Error(`server exited with code ${server.exitStatus?.code} while starting`);
      }
      try {
        return (await server.request("/health")).status === 200;
      } catch {
        return false; // Not listening yet.
      }
    }, { timeoutMs: options.startTimeoutMs ?? 30_000, message: "the server's /health" });
  } catch (error) {
    await server.close();
    throw new Error(`${(error as Error).message}\n${server.tail()}`, { cause: error });
  }
  return server;
}

/**
 * Asserts an error answer: the given status and a body that is exactly
 * `{ success: false, error: <non-empty string> }`.
 */
export function assertErrorResponse(res: HttpResult, status: number): void {
  const describe = () => `${res.status} ${res.text}`;
  if (res.status !== status) throw new Error(`Expected status ${status}, got ${describe()}`);
  const body = res.body as Record<string, unknown> | undefined;
  const keys = body && typeof body === "object" ? Object.keys(body).sort().join(",") : "";
  if (keys !== "error,success" || body?.success !== false) {
    throw new Error(`Expected a {success: false, error} body, got ${describe()}`);
  }
  if (typeof body.error !== "string" || body.error.trim() === "") {
    throw new Error(`Expected a non-empty error message, got ${describe()}`);
  }
}

/**
 * Returns a `t.step` runner that prints the recent output of `servers` when a step fails,
 * so a failure shows what the server logged.
 */
export function stepper(
  t: Deno.TestContext,
  ...servers: ServerProcess[]
): (name: string, fn: () => Promise<void>) => Promise<boolean> {
  return (name, fn) =>
    t.step(name, async () => {
      try {
        await fn();
      } catch (error) {
        for (const server of servers) console.error(server.tail());
        throw error;
      }
    });
}
