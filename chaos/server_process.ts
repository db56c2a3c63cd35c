/**
 * A real FlowState server in a subprocess, for the chaos suite: a free loopback port, a
 * temp `STATES_DIR`, SIGKILL and restart on the same port and directory, RSS from
 * `/proc/<pid>/status`, and the server's log kept in a file and a ring buffer.
 *
 * Also the small helpers every scenario shares: JSON requests, sleeping, polling and a
 * seeded random generator.
 *
 * @module
 */
import { fromFileUrl, join } from "@std/path";
import { CONFIG_DOC } from "../lib/config.ts";

/** The repository root (the server runs there, so `./tasks` resolves). */
export const REPO_ROOT: string = fromFileUrl(new URL("../", import.meta.url));
const SERVER_PATH = fromFileUrl(new URL("../server.ts", import.meta.url));

/** Lines of server output kept in memory. */
const LOG_RING_LINES = 4_000;
/** Time allowed for a (re)start until `/health` answers, ms. */
const START_TIMEOUT_MS = 30_000;
/** Time allowed for a graceful stop before SIGKILL, ms. */
const STOP_TIMEOUT_MS = 15_000;

/** Options of {@link ServerProcess.start}. */
export interface ServerOptions {
  /** Extra environment (TIME_LIMIT_MS, FETCH_TIMEOUT_MS, ...). */
  env?: Record<string, string>;
  /** States directory; default: `states/` in a fresh temp directory. */
  statesDir?: string;
  /** Port; default: a free one. */
  port?: number;
  /** Label used in the temp directory name. */
  label?: string;
}

/** A parsed reply of the server. */
export interface Reply {
  status: number;
  headers: Headers;
  /** The body parsed as JSON, or `undefined` when it is not JSON. */
  body: unknown;
  text: string;
}

/** A FlowState server subprocess. */
export class ServerProcess {
  readonly port: number;
  readonly statesDir: string;
  /** Temp directory of this server (log file, default states directory). */
  readonly workDir: string;
  readonly origin: string;
  readonly logPath: string;
  readonly #env: Record<string, string>;
  #child: Deno.ChildProcess | null = null;
  #pumps: Promise<void>[] = [];
  #client: Deno.HttpClient | null = null;
  #ring: string[] = [];
  #logFile: Deno.FsFile | null = null;
  /** Number of completed starts. */
  starts = 0;

  private constructor(
    port: number,
    workDir: string,
    statesDir: string,
    env: Record<string, string>,
  ) {
    this.port = port;
    this.workDir = workDir;
    this.statesDir = statesDir;
    this.origin = `http://127.0.0.1:${port}`;
    this.logPath = join(workDir, "server.log");
    this.#env = env;
  }

  /** Starts a server and waits until `/health` answers. */
  static async start(options: ServerOptions = {}): Promise<ServerProcess> {
    const workDir = await Deno.makeTempDir({ prefix: `flowstate-chaos-${options.label ?? "x"}-` });
    const statesDir = options.statesDir ?? join(workDir, "states");
    const port = options.port ?? await freePort();
    const server = new ServerProcess(port, workDir, statesDir, {
      ...options.env,
    });
    try {
      await server.#spawn();
    } catch (error) {
      await server.stop();
      throw error;
    }
    return server;
  }

  /** Process id of the running server, or `null`. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** Whether a server process is running. */
  get running(): boolean {
    return this.#child !== null;
  }

  /** The HTTP client of the current process (closed when it dies). */
  get client(): Deno.HttpClient | undefined {
    return this.#client ?? undefined;
  }

  /** Kills the server with SIGKILL and waits for it to be gone. */
  async kill(): Promise<void> {
    await this.#end("SIGKILL", 0);
  }

  /** Starts the server again on the same port and states directory. */
  async restart(): Promise<void> {
    if (this.#child) await this.#end("SIGKILL", 0);
    await this.#spawn();
  }

  /** Graceful stop (SIGTERM, then SIGKILL after `graceMs`); the temp directory is kept. */
  async shutdown(graceMs = STOP_TIMEOUT_MS): Promise<Deno.CommandStatus | null> {
    return await this.#end("SIGTERM", graceMs);
  }

  /** Stops the server and removes its temp directory (kept when `CHAOS_KEEP` is set). */
  async stop(): Promise<void> {
    await this.#end("SIGTERM", STOP_TIMEOUT_MS);
    this.#logFile?.close();
    this.#logFile = null;
    if (Deno.env.get("CHAOS_KEEP")) {
      console.log(`chaos: kept ${this.workDir}`);
      return;
    }
    await Deno.remove(this.workDir, { recursive: true }).catch(() => {});
  }

  /** Resident set size of the server process in bytes, from `/proc/<pid>/status`. */
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

  /** The last `count` lines the server printed (stdout and stderr). */
  logTail(count = 40): string[] {
    return this.#ring.slice(-count);
  }

  /** Lines of the in-memory log matching `pattern`. */
  logGrep(pattern: RegExp, max = 20): string[] {
    return this.#ring.filter((line) => pattern.test(line)).slice(-max);
  }

  /** One request; throws on network errors (the server may be down). */
  async request(
    method: string,
    path: string,
    options: { body?: BodyInit | null; json?: unknown; headers?: HeadersInit; timeoutMs?: number } =
      {},
  ): Promise<Reply> {
    const headers = new Headers(options.headers);
    let body = options.body ?? null;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    }
    const init: RequestInit & { client?: Deno.HttpClient } = {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
    };
    if (this.#client) init.client = this.#client;
    const response = await fetch(this.origin + path, init);
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  }

  /**
   * A request retried through network errors and 503s (a server being killed and
   * restarted) until `deadline` (ms since epoch).
   */
  async requestRetrying(
    method: string,
    path: string,
    options: { json?: unknown; deadline?: number } = {},
  ): Promise<Reply> {
    const deadline = options.deadline ?? Date.now() + 60_000;
    let lastError: unknown = null;
    while (Date.now() < deadline) {
      try {
        const reply = await this.request(method, path, { json: options.json, timeoutMs: 20_000 });
        if (reply.status !== 503) return reply;
        lastError = new Error(`503 ${reply.text}`);
      } catch (error) {
        lastError = error;
      }
      await sleep(50 + Math.random() * 100);
    }
    throw new Error(`${method} ${path} kept failing until its deadline: ${String(lastError)}`);
  }

  async #spawn(): Promise<void> {
    this.#logFile ??= await Deno.open(this.logPath, { create: true, append: true });
    for (let attempt = 1;; attempt++) {
      const env = serverEnv({
        PORT: String(this.port),
        HOST: "127.0.0.1",
        CALL_ENDPOINT: `${this.origin}/call`,
        STATES_DIR: this.statesDir,
        LOG_LEVEL: "info",
        ...this.#env,
      });
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "--quiet", SERVER_PATH],
        cwd: REPO_ROOT,
        env,
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      this.#child = child;
      this.#client = Deno.createHttpClient({});
      this.#pumps = [this.#pump(child.stdout), this.#pump(child.stderr)];
      const exited = child.status.then(() => true);
      const deadline = Date.now() + START_TIMEOUT_MS;
      let up = false;
      while (Date.now() < deadline) {
        const done = await Promise.race([exited, sleep(50).then(() => false)]);
        if (done) break;
        try {
          const reply = await this.request("GET", "/health", { timeoutMs: 2_000 });
          if (reply.status === 200) {
            up = true;
            break;
          }
        } catch {
          // not listening yet
        }
      }
      if (up) {
        this.starts++;
        return;
      }
      const tail = this.logTail(15).join("\n");
      await this.#end("SIGKILL", 0);
      // A port still held by the previous process: try again a few times.
      if (/address.*in use/i.test(tail) && attempt < 20) {
        await sleep(250);
        continue;
      }
      throw new Error(`The server did not start on port ${this.port}:\n${tail}`);
    }
  }

  async #end(signal: Deno.Signal, graceMs: number): Promise<Deno.CommandStatus | null> {
    const child = this.#child;
    if (!child) return null;
    this.#child = null;
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (graceMs > 0) {
      timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }, graceMs);
    }
    const status = await child.status;
    clearTimeout(timer);
    await Promise.all(this.#pumps);
    this.#pumps = [];
    this.#client?.close();
    this.#client = null;
    return status;
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    try {
      for await (const chunk of stream) {
        await this.#logFile?.write(chunk).catch(() => 0);
        partial += decoder.decode(chunk, { stream: true });
        const lines = partial.split("\n");
        partial = lines.pop() ?? "";
        this.#ring.push(...lines);
        if (this.#ring.length > LOG_RING_LINES) {
          this.#ring.splice(0, this.#ring.length - LOG_RING_LINES);
        }
      }
    } catch {
      // the process died mid-line
    }
    if (partial) this.#ring.push(partial);
  }
}

/** The parent's environment without FlowState settings, plus `extra`. */
function serverEnv(extra: Record<string, string>): Record<string, string> {
  const env = Deno.env.toObject();
  for (const { name } of CONFIG_DOC) delete env[name];
  return { ...env, ...extra };
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await Promise.resolve();
  return port;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Polls `check` every `intervalMs` until it returns a value other than `undefined`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(intervalMs);
  }
}

/** A seeded pseudo-random generator (mulberry32). */
export class Random {
  #state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.#state ^ (this.#state >>> 15), 1 | this.#state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** `count` random bytes. */
  bytes(count: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

/** The seed of a run: `CHAOS_SEED` when set, else a random one. */
export function chaosSeed(): number {
  const text = Deno.env.get("CHAOS_SEED");
  if (text && /^[0-9]+$/.test(text)) return Number(text) >>> 0;
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/** Every problem found in the states directory (files that do not parse). */
export interface StatesCheck {
  records: number;
  journals: number;
  journalLines: number;
  /** Bytes of journals past their record's `eventsBytes` (left by an interrupted save). */
  uncommittedBytes: number;
  /** Leftover temp files of interrupted writes. */
  tempFiles: string[];
  /** Files that are neither records nor journals. */
  foreign: string[];
  /** Entries that are not regular files (not read). */
  special: string[];
  /** What did not parse, one line each. */
  unreadable: string[];
}

/**
 * Parses every `.json` record and every journal line in `dir`. With `committedOnly`, only
 * the journal's first `eventsBytes` bytes are required to parse (what the store's contract
 * promises while a fault is in place).
 */
export async function checkStatesDir(
  dir: string,
  { committedOnly = false }: { committedOnly?: boolean } = {},
): Promise<StatesCheck> {
  const out: StatesCheck = {
    records: 0,
    journals: 0,
    journalLines: 0,
    uncommittedBytes: 0,
    tempFiles: [],
    foreign: [],
    special: [],
    unreadable: [],
  };
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    // Symlinks (to /dev/full, say) and directories are fault injections, not state files.
    if (entry.isFile) names.push(entry.name);
    else out.special.push(entry.name);
  }
  names.sort();
  const eventsBytes = new Map<string, number>();
  for (const name of names) {
    if (/^\..+\.[0-9a-f]{16}\.tmp$/.test(name)) {
      out.tempFiles.push(name);
    } else if (name.endsWith(".journal.jsonl")) {
      out.journals++;
    } else if (name.endsWith(".json")) {
      out.records++;
      try {
        const record = JSON.parse(await Deno.readTextFile(join(dir, name)));
        if (typeof record?.eventsBytes !== "number") throw new Error("no eventsBytes");
        eventsBytes.set(name.slice(0, -".json".length), record.eventsBytes);
      } catch (error) {
        out.unreadable.push(`${name}: ${String(error)}`);
      }
    } else {
      out.foreign.push(name);
    }
  }
  for (const name of names) {
    if (!name.endsWith(".journal.jsonl")) continue;
    const id = name.slice(0, -".journal.jsonl".length);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(join(dir, name));
    } catch (error) {
      out.unreadable.push(`${name}: ${String(error)}`);
      continue;
    }
    const committed = eventsBytes.get(id);
    if (committed !== undefined && bytes.length > committed) {
      out.uncommittedBytes += bytes.length - committed;
    }
    if (committed !== undefined && bytes.length < committed) {
      out.unreadable.push(`${name}: ${bytes.length} bytes, fewer than eventsBytes ${committed}`);
    }
    const checked = committedOnly && committed !== undefined ? bytes.subarray(0, committed) : bytes;
    const text = new TextDecoder().decode(checked);
    const lines = text.split("\n");
    const rest = lines.pop();
    if (rest) out.unreadable.push(`${name}: ends with a partial line ${JSON.stringify(rest)}`);
    lines.forEach((line, index) => {
      out.journalLines++;
      try {
        const event = JSON.parse(line);
        if (typeof event?.type !== "string") throw new Error("no type");
      } catch (error) {
        out.unreadable.push(`${name} line ${index + 1}: ${String(error)}`);
      }
    });
  }
  return out;
}

/** Formats bytes as MiB with one decimal. */
export function mib(bytes: number | null): string {
  return bytes === null ? "n/a" : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Options every scenario takes. */
export interface ScenarioOptions {
  /** The short form (for `deno task test`). */
  short: boolean;
  /** Progress output. */
  log?: (line: string) => void;
  /** Seed of the random choices. */
  seed?: number;
}

/** What a scenario reports. */
export interface ScenarioResult {
  name: string;
  durationMs: number;
  /** Figures for the table, in order. */
  figures: Record<string, string | number>;
  /** Violated expectations; empty when the scenario passed. */
  problems: string[];
  /** Sub-cases skipped, with the reason. */
  skipped: string[];
}

/** Lines of the server's whole log file matching `pattern`. */
export async function grepLogFile(path: string, pattern: RegExp): Promise<string[]> {
  try {
    const text = await Deno.readTextFile(path);
    return text.split("\n").filter((line) => pattern.test(line));
  } catch {
    return [];
  }
}
