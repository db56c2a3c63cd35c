/**
 * A local cluster for trying PostgreSQL mode: `--replicas` FlowState servers (default 3)
 * sharing `DATABASE_URL`, on the ports after `--port`, behind a round-robin proxy on
 * `--port` (default 8080) which is also every replica's `CALL_ENDPOINT`. Each replica's
 * log lines are printed with its number. Ctrl-C stops them all (gracefully).
 *
 * Usage: `DATABASE_URL=postgres://postgres@127.0.0.1:5432/flowstate deno task cluster -- --replicas 3`
 *
 * @module
 */
import { fromFileUrl } from "@std/path";
import { startRoundRobin } from "../testing/round_robin.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));

function flag(name: string, fallback: number): number {
  const at = Deno.args.indexOf(`--${name}`);
  const value = at === -1 ? fallback : Number(Deno.args[at + 1]);
  if (!Number.isInteger(value) || value < 1 || value > 65_535) {
    console.error(`--${name} must be a positive integer`);
    Deno.exit(2);
  }
  return value;
}

const databaseUrl = Deno.env.get("DATABASE_URL");
if (!databaseUrl) {
  console.error("Set DATABASE_URL to a postgres:// URL (the replicas share that database)");
  Deno.exit(2);
}
const replicas = flag("replicas", 3);
const port = flag("port", 8080);
const origins = Array.from({ length: replicas }, (_, i) => `http://127.0.0.1:${port + 1 + i}`);

const children = origins.map((origin, i) => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "server.ts",
    ],
    cwd: ROOT,
    env: {
      DATABASE_URL: databaseUrl,
      PORT: String(port + 1 + i),
      REPLICA_URL: origin,
      CALL_ENDPOINT: `http://127.0.0.1:${port}/call`,
      LOG_FORMAT: Deno.env.get("LOG_FORMAT") ?? "pretty",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  for (const stream of [child.stdout, child.stderr]) void prefixLines(stream, `[${i + 1}] `);
  return child;
});
const proxy = startRoundRobin(() => origins, port);
console.log(
  `FlowState cluster: ${replicas} replicas (${origins.join(", ")}) behind ${proxy.origin}`,
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  for (const child of children) {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already gone.
    }
  }
  await Promise.all(children.map((child) => child.status));
  await proxy.close();
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", () => void stop());
Deno.addSignalListener("SIGTERM", () => void stop());

async function prefixLines(stream: ReadableStream<Uint8Array>, prefix: string): Promise<void> {
  let rest = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + text).split("\n");
    rest = lines.pop()!;
    for (const line of lines) console.log(prefix + line);
  }
  if (rest) console.log(prefix + rest);
}
