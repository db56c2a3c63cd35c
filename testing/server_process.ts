/**
 * Runs the real FlowState server (`server.ts`) as a subprocess, for the end-to-end tests,
 * the benchmarks and the chaos suite alike.
 *
 * {@link startServer} picks a free port, creates a temporary work directory (holding the
 * default `STATES_DIR` and, when asked, the server's log file), starts the server exactly as
 * `deno task start` does (the permission flags are read from `deno.json`'s start task) with
 * a clean FlowState environment, and resolves once `/health` answers. The returned
 * {@link ServerProcess} keeps the recent output lines, talks HTTP to the server through its
 * own client, and can be stopped ({@link ServerProcess.stop}, SIGTERM), killed
 * ({@link ServerProcess.kill}, SIGKILL) and started again on the same port and directory
 * ({@link ServerProcess.restart}); every stop waits for the process and drains its pipes,
 * so the test sanitizers find nothing open.
 *
 * @module
 */
import { fromFileUrl, join } from "@std/path";
import { CONFIG_DOC } from "../lib/config.ts";
import type { TaskDetailView, TaskView } from "../lib/service/task_types.ts";
import { delay, freePort, waitFor } from "./wait.ts";

export { delay, freePort, waitFor } from "./wait.ts";
export type { WaitOptions } from "./wait.ts";

/** Directory holding `server.ts`. */
export const PROJECT_ROOT: string = fromFileUrl(new URL("..", import.meta.url));

/** Output lines kept in memory by default (older ones are dropped). */
const DEFAULT_KEPT_LINES = 50_000;

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
  /** States directory to use; default `states/` in the server's own work directory. */
  statesDir?: string;
  /** Port to listen on; default a free one. 0 lets the server pick (read from its log). */
  port?: number;
  /** Bearer token {@link ServerProcess.request} sends by default. */
  token?: string;
  /** Time allowed to start (each start), ms. Default 30 s. */
  startTimeoutMs?: number;
  /** Word in the name of the temporary work directory. */
  label?: string;
  /** Also append everything the server prints to `server.log` in the work directory. */
  logFile?: boolean;
  /** Keep the work directory when the server is closed. */
  keep?: boolean;
  /** Output lines kept in memory (stdout and stderr). Default 50,000. */
  keptLines?: number;
  /** Receives every stdout line as it arrives. */
  onLine?: (line: string) => void;
  /** Permission flags of `deno run`; default those of `deno.json`'s start task. */
  flags?: string[];
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
  /**
   * A string, bytes or a stream is sent as it is; `null` sends no body; any other value is
   * sent as JSON (with `content-type: application/json` unless a content type is given).
   */
  body?: unknown;
  headers?: Record<string, string>;
  /** Bearer token; `null` sends none. Default: the server's `token` option. */
  token?: string | null;
  /** Give up after this long, ms. Default 60 s. */
  timeoutMs?: number;
}

/** The permission flags of `deno.json`'s start task, so tests run what users run. */
async function startTaskFlags(): Promise<string[]> {
  const manifest = JSON.parse(await Deno.readTextFile(join(PROJECT_ROOT, "deno.json")));
  const task = manifest.tasks.start;
  const command: string = typeof task === "string" ? task : task.command;
  return command.split(/\s+/).filter((word) => word.startsWith("--allow-"));
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
  onBytes?: (bytes: Uint8Array) => unknown,
): Promise<void> {
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for await (const chunk of stream) {
      await onBytes?.(chunk);
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
        onLine(buffer.slice(0, end));
        buffer = buffer.slice(end + 1);
      }
    }
  } catch {
    // The process died mid-line.
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

function isRawBody(body: unknown): body is BodyInit {
  return typeof body === "string" || body instanceof Uint8Array ||
    body instanceof ArrayBuffer || body instanceof ReadableStream || body instanceof Blob ||
    body instanceof URLSearchParams || body instanceof FormData;
}

/** A server subprocess: running, exited, or started again on the same port. */
export class ServerProcess {
  /** The port; with `port: 0` the one the server reports listening on. */
  port: number;
  /** `http://127.0.0.1:<port>`. */
  origin: string;
  readonly statesDir: string;
  /** The temporary directory of this server (default states directory, log file). */
  readonly workDir: string;
  /** `server.log` in {@link workDir} (written only with the `logFile` option). */
  readonly logPath: string;
  /** The recent stdout lines, in order (at most `keptLines`). */
  readonly lines: string[] = [];
  /** The recent lines of stdout and stderr, in arrival order (warnings go to stderr). */
  readonly #logLines: string[] = [];
  /** Exit status of the current process, once it has exited. */
  exitStatus: Deno.CommandStatus | undefined;
  /** Completed starts. */
  starts = 0;
  /** Time from spawning the current process to its first `/health` 200, ms. */
  readyMs = 0;

  readonly #options: StartOptions;
  readonly #env: Record<string, string>;
  readonly #keptLines: number;
  #child: Deno.ChildProcess | undefined;
  #client: Deno.HttpClient | undefined;
  #pipes: Promise<unknown> = Promise.resolve();
  #logFile: Deno.FsFile | undefined;
  #stderr: string[] = [];

  private constructor(
    options: StartOptions,
    init: { port: number; workDir: string; statesDir: string; env: Record<string, string> },
  ) {
    this.#options = options;
    this.port = init.port;
    this.origin = `http://127.0.0.1:${init.port}`;
    this.workDir = init.workDir;
    this.statesDir = init.statesDir;
    this.logPath = join(init.workDir, "server.log");
    this.#env = init.env;
    this.#keptLines = options.keptLines ?? DEFAULT_KEPT_LINES;
  }

  /** Starts `server.ts` and resolves once `/health` answers 200. */
  static async start(options: StartOptions = {}): Promise<ServerProcess> {
    const workDir = await Deno.makeTempDir({ prefix: `flowstate-${options.label ?? "server"}-` });
    const statesDir = options.statesDir ?? join(workDir, "states");
    const port = options.port ?? freePort();
    const env: Record<string, string> = {
      ...baseEnv(),
      PORT: String(port),
      HOST: "127.0.0.1",
      STATES_DIR: statesDir,
      WORKERS: "2",
      ...options.env,
    };
    const server = new ServerProcess(options, { port, workDir, statesDir, env });
    try {
      await server.#spawn();
    } catch (error) {
      await server.close();
      throw error;
    }
    return server;
  }

  /** Process id of the current process, or `null` once it has exited. */
  get pid(): number | null {
    return this.running ? this.#child!.pid : null;
  }

  /** Whether the current process still runs. */
  get running(): boolean {
    return this.#child !== undefined && this.exitStatus === undefined;
  }

  /** Whether the current process has exited. */
  get exited(): boolean {
    return !this.running;
  }

  /** The recent stderr output. */
  get stderr(): string {
    return this.#stderr.map((line) => `${line}\n`).join("");
  }

  /** The kept lines of stdout and stderr that are JSON log lines, parsed, in order. */
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

  /** The kept stdout and stderr lines matching `pattern`, the last `max` of them. */
  logGrep(pattern: RegExp, max = 20): string[] {
    return this.#logLines.filter((line) => pattern.test(line)).slice(-max);
  }

  /** The last `count` stdout and stderr lines, for failure messages. */
  tail(count = 40): string {
    const stderr = this.#stderr.slice(-count);
    return [
      `--- server stdout (last ${count} lines) ---`,
      ...this.lines.slice(-count),
      ...(stderr.length ? ["--- server stderr ---", ...stderr] : []),
    ].join("\n");
  }

  /** Resident set size of the current process in bytes (`/proc/<pid>/status`), or `null`. */
  async rssBytes(): Promise<number | null> {
    const pid = this.pid;
    if (pid === null) return null;
    try {
      const status = await Deno.readTextFile(`/proc/${pid}/status`);
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
      return match ? Number(match[1]) * 1024 : null;
    } catch {
      return null;
    }
  }

  /** Sends a request and reads the whole body; throws on network errors. */
  async request(path: string, options: RequestOptions = {}): Promise<HttpResult> {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? this.#options.token : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: BodyInit | undefined;
    if (options.body !== undefined && options.body !== null) {
      if (isRawBody(options.body)) {
        body = options.body;
      } else {
        body = JSON.stringify(options.body);
        if (!Object.keys(headers).some((name) => name.toLowerCase() === "content-type")) {
          headers["content-type"] = "application/json";
        }
      }
      if (typeof body === "string") headers["content-type"] ??= "application/json";
    }
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), options.timeoutMs ?? 60_000);
    const init: RequestInit & { client?: Deno.HttpClient } = {
      method: options.method ?? (body === undefined ? "GET" : "POST"),
      headers,
      body,
      signal: timeout.signal,
    };
    if (this.#client) init.client = this.#client;
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.origin}${path}`, init);
      text = await response.text();
    } finally {
      clearTimeout(timer);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  }

  /**
   * {@link request}, retried through network errors and 503s (a server being killed and
   * restarted) until `deadline` (ms since the epoch; default one minute from now).
   */
  async requestRetrying(
    path: string,
    options: RequestOptions & { deadline?: number } = {},
  ): Promise<HttpResult> {
    const deadline = options.deadline ?? Date.now() + 60_000;
    let lastError: unknown = null;
    while (Date.now() < deadline) {
      try {
        const reply = await this.request(path, { timeoutMs: 20_000, ...options });
        if (reply.status !== 503) return reply;
        lastError = new Error(`503 ${reply.text}`);
      } catch (error) {
        lastError = error;
      }
      await delay(50 + Math.random() * 100);
    }
    const method = options.method ?? (options.body === undefined ? "GET" : "POST");
    throw new Error(`${method} ${path} kept failing until its deadline: ${String(lastError)}`);
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
  call(taskId: string, fetchResponse: object): Promise<HttpResult> {
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
    return this.#end("SIGTERM");
  }

  /** SIGTERM, then SIGKILL when the process is still there after `graceMs`. */
  shutdown(graceMs = 15_000): Promise<Deno.CommandStatus> {
    return this.#end("SIGTERM", graceMs);
  }

  /** Hard stop: SIGKILL, then waits for the exit and drains the pipes. */
  kill(): Promise<Deno.CommandStatus> {
    return this.#end("SIGKILL");
  }

  /** Starts the server again (after a SIGKILL if it still runs) on the same port and dir. */
  async restart(): Promise<void> {
    if (this.#child) await this.kill();
    await this.#spawn();
  }

  /**
   * Ends the process if it still runs (SIGKILL, or SIGTERM with `graceMs` to let it shut
   * down first) and removes the work directory it created.
   */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    if (this.#child) {
      await (options.graceMs === undefined ? this.kill() : this.shutdown(options.graceMs));
    }
    this.#logFile?.close();
    this.#logFile = undefined;
    if (this.#options.keep) return;
    await Deno.remove(this.workDir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #keep(target: string[], line: string): void {
    target.push(line);
    if (target.length > this.#keptLines) target.splice(0, target.length - this.#keptLines);
  }

  async #spawn(): Promise<void> {
    if (this.#options.logFile) {
      this.#logFile ??= await Deno.open(this.logPath, { create: true, append: true });
    }
    const flags = this.#options.flags ?? await startTaskFlags();
    for (let attempt = 1;; attempt++) {
      const started = performance.now();
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", ...flags, "server.ts"],
        cwd: PROJECT_ROOT,
        env: this.#env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      this.#child = child;
      this.exitStatus = undefined;
      this.#client = Deno.createHttpClient({});
      const toLog = (bytes: Uint8Array) => this.#logFile?.write(bytes).catch(() => 0) ?? 0;
      this.#pipes = Promise.all([
        readLines(child.stdout, (line) => {
          this.#keep(this.lines, line);
          this.#keep(this.#logLines, line);
          this.#options.onLine?.(line);
        }, toLog),
        readLines(child.stderr, (line) => {
          this.#keep(this.#stderr, line);
          this.#keep(this.#logLines, line);
        }, toLog),
      ]);
      void child.status.then((status) => {
        if (this.#child === child) this.exitStatus = status;
      });
      try {
        await waitFor(async () => {
          if (this.exited) {
            throw new Error(`server exited with code ${this.exitStatus?.code} while starting`);
          }
          if (this.port === 0) {
            // PORT=0: the server picks the port and says which in its "listening" line.
            const listening = this.logs().find((line) => line.msg === "listening");
            if (!listening) return false;
            this.port = Number(listening.port);
            this.origin = `http://127.0.0.1:${this.port}`;
            this.#env.PORT = String(this.port); // A restart listens on the same port.
          }
          try {
            return (await this.request("/health", { timeoutMs: 2_000 })).status === 200;
          } catch {
            return false; // Not listening yet.
          }
        }, {
          timeoutMs: this.#options.startTimeoutMs ?? 30_000,
          intervalMs: 5,
          message: "the server's /health",
        });
        this.readyMs = performance.now() - started;
        this.starts++;
        return;
      } catch (error) {
        const tail = this.tail(15);
        if (this.#child) await this.kill();
        // A port still held by the previous process of a restart: try again a few times.
        if (this.starts > 0 && /address.*in use/i.test(tail) && attempt < 20) {
          await delay(250);
          continue;
        }
        throw new Error(`${(error as Error).message}\n${tail}`, { cause: error });
      }
    }
  }

  async #end(
    signal: Deno.Signal,
    graceMs?: number,
  ): Promise<Deno.CommandStatus> {
    const child = this.#child;
    if (!child) throw new Error("the server was never started");
    if (this.running) {
      try {
        child.kill(signal);
      } catch {
        // It exited in the meantime.
      }
    }
    const timer = graceMs === undefined ? undefined : setTimeout(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }, graceMs);
    const status = await child.status;
    clearTimeout(timer);
    this.exitStatus = status;
    await this.#pipes;
    this.#client?.close();
    this.#client = undefined;
    return status;
  }
}

/** Starts `server.ts` and resolves once `/health` answers 200. */
export function startServer(options: StartOptions = {}): Promise<ServerProcess> {
  return ServerProcess.start(options);
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
