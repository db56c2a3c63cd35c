/**
 * `flow`: a small command line over FlowState's HTTP API.
 *
 * ```sh
 * deno task flow -- submit job.js --input '{"n": 1}' --wait
 * deno task flow -- list --status paused
 * deno task flow -- show <id> [--fetch <n>]
 * deno task flow -- cancel <id> [--reason <text>]
 * deno task flow -- tail [--id a,b] [--status completed,error]
 * ```
 *
 * The server is `--url` (default `$FLOWSTATE_URL`, else `http://localhost:8080`), the token
 * `--token` (default `$FLOWSTATE_TOKEN`). Exit status: 0 on success (for `submit --wait`:
 * the task completed), 1 when the task ended in `error` or `cancelled`, 2 for a usage error
 * or an error answer of the server.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { EventSourceParserStream } from "eventsource-parser/stream";

const USAGE = `Usage: flow <command> [options]

Commands:
  submit <file>    POST /task with the file as the code (.ts is TypeScript)
                   --input <json> --id <id> --name <name> --wait [ms] --no-auto-fetch
                   --callback <url> --retry <json>
  list             GET /status: the tasks, one line each   --status <s> --limit <n>
  show <id>        GET /status?id=: the task in detail      --fetch <n> (one fetch in full)
  cancel <id>      POST /cancel                             --reason <text>
  tail             GET /events: transitions as they happen, with a live status line
                   --id <a,b> --status <s,t>

Options: --url <url> (FLOWSTATE_URL, default http://localhost:8080)
         --token <token> (FLOWSTATE_TOKEN) --help`;

/** `--wait` without a value: a minute. */
const DEFAULT_WAIT_MS = 60_000;
/** Fewest ms between two status-line refreshes of `tail`. */
const STATUS_REFRESH_MS = 250;

/** A failure that ends the command with a message and exit status 2. */
class CliError extends Error {
  override name = "CliError";
}

/** What a command needs to talk to the server and to the terminal. */
export interface CliContext {
  url: string;
  token: string | undefined;
  out: (text: string) => void;
  /** Writes without a newline (the live status line). */
  raw: (text: string) => void;
  isTerminal: boolean;
  signal: AbortSignal;
}

/** Runs `args`; resolves with the exit status. */
export async function main(
  args: string[],
  context: Omit<CliContext, "url" | "token"> & {
    env: Record<string, string | undefined>;
  },
): Promise<number> {
  // `deno task flow -- submit ...` passes the `--` on.
  if (args[0] === "--") args = args.slice(1);
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        url: { type: "string" },
        token: { type: "string" },
        input: { type: "string" },
        id: { type: "string" },
        name: { type: "string" },
        wait: { type: "string" },
        "no-auto-fetch": { type: "boolean" },
        callback: { type: "string" },
        retry: { type: "string" },
        status: { type: "string" },
        limit: { type: "string" },
        fetch: { type: "string" },
        reason: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    // `--wait` given without a value comes here as a missing argument.
    const fixed = fixBareWait(args);
    if (fixed !== args) return await main(fixed, context);
    context.out(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    context.out(USAGE);
    return values.help ? 0 : 2;
  }
  const cli: CliContext = {
    ...context,
    url: (values.url ?? context.env.FLOWSTATE_URL ?? "http://localhost:8080").replace(/\/+$/, ""),
    token: values.token ?? context.env.FLOWSTATE_TOKEN,
  };
  try {
    switch (command) {
      case "submit":
        return await submit(cli, one(rest, "submit <file>"), values);
      case "list":
        return await list(cli, values);
      case "show":
        return await show(cli, one(rest, "show <id>"), values.fetch);
      case "cancel":
        return await cancel(cli, one(rest, "cancel <id>"), values.reason);
      case "tail":
        return await tail(cli, values);
      default:
        throw new CliError(`Unknown command "${command}"\n\n${USAGE}`);
    }
  } catch (error) {
    if (error instanceof CliError) {
      context.out(error.message);
      return 2;
    }
    if (context.signal.aborted) return 0;
    context.out(`Cannot reach ${cli.url}: ${(error as Error).message}`);
    return 2;
  }
}

/** `--wait` as the last argument or before another option means the default wait. */
function fixBareWait(args: string[]): string[] {
  const at = args.findIndex((arg, i) =>
    arg === "--wait" && (i === args.length - 1 || args[i + 1]!.startsWith("--"))
  );
  if (at === -1) return args;
  return [...args.slice(0, at + 1), String(DEFAULT_WAIT_MS), ...args.slice(at + 1)];
}

function one(rest: string[], usage: string): string {
  if (rest.length !== 1) throw new CliError(`Usage: flow ${usage}`);
  return rest[0]!;
}

/** One exchange with the server; an error answer becomes a {@link CliError}. */
async function api(
  cli: CliContext,
  path: string,
  init: { method?: string; body?: string; type?: string; signal?: AbortSignal } = {},
): Promise<Record<string, unknown>> {
  const headers: Record<string, string> = {};
  if (cli.token) headers.authorization = `Bearer ${cli.token}`;
  if (init.body !== undefined) headers["content-type"] = init.type ?? "application/json";
  const response = await fetch(`${cli.url}${path}`, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers,
    body: init.body,
    signal: init.signal ?? cli.signal,
  });
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    throw new CliError(`${response.status} from ${path}: ${text.slice(0, 200)}`);
  }
  if (!response.ok) throw new CliError(`Error ${response.status}: ${body.error ?? text}`);
  return body;
}

const pretty = (value: unknown) => JSON.stringify(value, null, 2);

/** Exit status for a task: 1 when it ended in `error` or `cancelled`. */
function exitFor(task: { status?: unknown }): number {
  return task.status === "error" || task.status === "cancelled" ? 1 : 0;
}

async function submit(
  cli: CliContext,
  file: string,
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  let code: string;
  try {
    code = await Deno.readTextFile(file);
  } catch (error) {
    throw new CliError(`Cannot read "${file}": ${(error as Error).message}`);
  }
  const query = new URLSearchParams();
  for (const [flag, param] of [["id", "id"], ["name", "name"], ["callback", "callbackUrl"]]) {
    const value = values[flag!];
    if (typeof value === "string") query.set(param!, value);
  }
  for (const flag of ["input", "retry"] as const) {
    const value = values[flag];
    if (typeof value !== "string") continue;
    try {
      JSON.parse(value);
    } catch {
      throw new CliError(`--${flag} must be JSON, got ${JSON.stringify(value)}`);
    }
    query.set(flag, value);
  }
  if (values["no-auto-fetch"]) query.set("autoFetch", "false");
  if (typeof values.wait === "string") {
    if (!/^[0-9]+$/.test(values.wait)) {
      throw new CliError(`--wait must be ms, got "${values.wait}"`);
    }
    query.set("wait", values.wait);
  }
  const type = /\.m?ts$/.test(file) ? "application/typescript" : "application/javascript";
  const body = await api(cli, `/task?${query}`, { body: code, type });
  const task = body.task as Record<string, unknown>;
  cli.out(pretty(task));
  return typeof values.wait === "string" ? exitFor(task) : 0;
}

async function list(
  cli: CliContext,
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  const query = new URLSearchParams();
  if (typeof values.status === "string") query.set("status", values.status);
  if (typeof values.limit === "string") query.set("limit", values.limit);
  const tasks = (await api(cli, `/status?${query}`)).tasks as Record<string, unknown>[];
  const rows = tasks.map((t) => [
    String(t.id),
    String(t.status),
    String(t.pauseCount),
    String(t.updatedAt),
    String(t.name),
  ]);
  const header = ["ID", "STATUS", "PAUSES", "UPDATED", "NAME"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) {
    cli.out(row.map((cell, i) => i === row.length - 1 ? cell : cell.padEnd(widths[i]!)).join("  "));
  }
  return 0;
}

async function show(cli: CliContext, id: string, fetch?: string): Promise<number> {
  const query = new URLSearchParams({ id });
  if (fetch !== undefined) query.set("fetch", fetch);
  const body = await api(cli, `/status?${query}`);
  cli.out(pretty(body.task ?? body.fetch));
  return 0;
}

async function cancel(cli: CliContext, id: string, reason?: string): Promise<number> {
  const body = await api(cli, "/cancel", {
    body: JSON.stringify(reason === undefined ? { taskId: id } : { taskId: id, reason }),
  });
  cli.out(pretty(body.task));
  return 0;
}

interface Transition {
  id: string;
  type: string;
  taskId: string;
  status: string;
  at: string;
  task: { fetchRequest?: { url: string }; error?: { message: string }; result?: unknown };
}

/** One line per transition: time, type, task, and what it waits for or ended with. */
export function describeTransition(event: Transition): string {
  const time = event.at.slice(11, 23);
  let detail = "";
  if (event.type === "paused" && event.task.fetchRequest) {
    detail = ` waiting for ${event.task.fetchRequest.url}`;
  } else if (event.type === "error" && event.task.error) {
    detail = ` ${event.task.error.message}`;
  } else if (event.type === "completed" && event.task.result !== undefined) {
    const result = JSON.stringify(event.task.result);
    detail = ` → ${result.length > 80 ? `${result.slice(0, 80)}…` : result}`;
  }
  return `${time} ${event.type.padEnd(9)} ${event.taskId}${detail}`;
}

async function tail(
  cli: CliContext,
  values: Record<string, string | boolean | undefined>,
): Promise<number> {
  const query = new URLSearchParams();
  if (typeof values.id === "string") query.set("id", values.id);
  if (typeof values.status === "string") query.set("status", values.status);
  let lastEventId: string | undefined;
  let statusLine = "";
  let refreshed = -Infinity;
  let asked = 0;
  let shown = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Redraws the status line from `/health`, at most every STATUS_REFRESH_MS, and once more after the last event. */
  const refresh = async () => {
    if (!cli.isTerminal || cli.signal.aborted) return;
    const wait = refreshed + STATUS_REFRESH_MS - performance.now();
    if (wait > 0) {
      timer ??= setTimeout(() => {
        timer = undefined;
        void refresh();
      }, wait);
      return;
    }
    refreshed = performance.now();
    const mine = ++asked;
    const health = await api(cli, "/health").catch(() => undefined);
    // A slow answer must not overwrite a newer one.
    if (cli.signal.aborted || mine < shown) return;
    shown = mine;
    const tasks = (health?.tasks ?? {}) as Record<string, number>;
    statusLine = Object.entries(tasks).map(([status, n]) => `${n} ${status}`).join(" · ");
    cli.raw(`\r\x1b[2K${statusLine}`);
  };
  const print = (line: string) => {
    if (cli.isTerminal) cli.raw(`\r\x1b[2K${line}\n${statusLine}`);
    else cli.out(line);
  };
  while (!cli.signal.aborted) {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (cli.token) headers.authorization = `Bearer ${cli.token}`;
    if (lastEventId) headers["last-event-id"] = lastEventId;
    let response: Response;
    try {
      response = await fetch(`${cli.url}/events?${query}`, { headers, signal: cli.signal });
    } catch (error) {
      if (cli.signal.aborted) break;
      print(`(disconnected: ${(error as Error).message}; retrying)`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    if (!response.ok || !response.body) {
      const text = await response.text();
      throw new CliError(`Error ${response.status} from /events: ${text}`);
    }
    await refresh();
    const events = response.body.pipeThrough(new TextDecoderStream())
      .pipeThrough(new EventSourceParserStream());
    try {
      for await (const message of events) {
        if (message.id) lastEventId = message.id;
        print(describeTransition(JSON.parse(message.data) as Transition));
        void refresh();
      }
    } catch (error) {
      if (cli.signal.aborted) break;
      print(`(stream ended: ${(error as Error).message}; reconnecting)`);
    }
  }
  clearTimeout(timer);
  if (cli.isTerminal) cli.raw("\n");
  return 0;
}

if (import.meta.main) {
  const abort = new AbortController();
  Deno.addSignalListener("SIGINT", () => abort.abort());
  const encoder = new TextEncoder();
  const code = await main(Deno.args, {
    env: {
      FLOWSTATE_URL: Deno.env.get("FLOWSTATE_URL"),
      FLOWSTATE_TOKEN: Deno.env.get("FLOWSTATE_TOKEN"),
    },
    out: (text) => console.log(text),
    raw: (text) => Deno.stdout.writeSync(encoder.encode(text)),
    isTerminal: Deno.stdout.isTerminal(),
    signal: abort.signal,
  });
  Deno.exit(code);
}
