/**
 * Edge attacks: what the isolation review tried at the server's edges, each with its
 * outcome as a figure. Slow clients (a request head trickled one byte at a time, a silent
 * connection), egress (a name that does not resolve, a 6to4 address embedding the metadata
 * address, the server's own port), a hostile upstream's million-deep JSON, a Proxy whose
 * traps call `fetch` while the task is inspected, a second server on the same `STATES_DIR`,
 * and a FIFO planted as a record before a restart.
 *
 * @module
 */
import { INDEX_FILE_NAME } from "../lib/store/index_file.ts";
import { join } from "@std/path";
import {
  type ScenarioOptions,
  type ScenarioResult,
  type ServerProcess,
  sleep,
  startChaosServer,
} from "./support.ts";

const TOKEN = "edge-attacks-token.42";
const lit = (value: unknown) => JSON.stringify(value);

/** Guest code that fetches `url` and returns the error message, or `"fetched: <status>"`. */
function fetchAndCatch(url: string): string {
  return `let out;
try {
  out = "fetched: " + (await fetch(${lit(url)})).status;
} catch (error) {
  out = error.message;
}
out`;
}

/** Runs the scenario. */
export async function runEdgeAttacks(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const figures: Record<string, string | number> = {};
  const problems: string[] = [];
  const expect = (what: string, outcome: string, ok: boolean) => {
    figures[what] = outcome;
    if (!ok) problems.push(`${what}: ${outcome}`);
  };
  const depth = 1_000_000;
  const deep = "[".repeat(depth) + "]".repeat(depth);
  const upstream = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(deep, { headers: { "content-type": "application/json" } }),
  );
  let server: ServerProcess | undefined;
  try {
    server = await startChaosServer({
      label: "edge",
      token: TOKEN,
      env: {
        FLOWSTATE_TOKEN: TOKEN,
        HEADERS_TIMEOUT_MS: "1000",
        BODY_TIMEOUT_MS: "1000",
        JOURNAL_KEY: "edge-attacks-journal-key-0123",
      },
    });
    const srv = server;
    const run = async (code: string) => await srv.waitForTask((await srv.createTask({ code })).id);

    // Slow clients.
    {
      const head = `GET /health HTTP/1.1\r\nHost: localhost\r\nX-Pad: ${"a".repeat(200)}\r\n\r\n`;
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: srv.port });
      const t0 = performance.now();
      let sent = 0;
      try {
        for (const char of head) {
          await conn.write(new TextEncoder().encode(char));
          sent++;
          await sleep(100);
        }
      } catch {
        // Closed by the server.
      } finally {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      const seconds = ((performance.now() - t0) / 1000).toFixed(1);
      expect(
        "trickled head (1 byte/100 ms)",
        `closed after ${seconds} s, ${sent} of ${head.length} bytes`,
        sent < head.length,
      );
      log("edge attacks: trickle done");
    }
    {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: srv.port });
      const buffer = new Uint8Array(512);
      const n = await conn.read(buffer).catch(() => null);
      conn.close();
      const line = new TextDecoder().decode(buffer.subarray(0, n ?? 0)).split("\r\n")[0] ?? "";
      expect("silent connection", line || "closed", /^HTTP\/1\.1 408/.test(line));
    }

    // Egress.
    const egress: [string, string, RegExp][] = [
      ["name that does not resolve", "http://flowstate-chaos.invalid/", /cannot resolve/],
      ["6to4 address of 169.254.169.254", "http://[2002:a9fe:a9fe::1]/", /link-local/],
      ["the server's own port", `http://127.0.0.1:${srv.port}/status`, /own API/],
    ];
    for (const [what, url, refused] of egress) {
      const done = await run(fetchAndCatch(url));
      const outcome = `${done.status}: ${String(done.result).slice(0, 90)}`;
      expect(what, outcome, done.status === "completed" && refused.test(String(done.result)));
    }

    // A hostile upstream's million-deep JSON.
    {
      const done = await run(`try {
  await (await fetch(${lit(`http://127.0.0.1:${upstream.addr.port}/deep`)})).json();
  "parsed";
} catch (error) {
  "caught " + error.name;
}`);
      expect(
        "million-deep JSON body",
        `${done.status}: ${String(done.result ?? done.error?.message)}`,
        done.status === "completed" && done.result === "caught SyntaxError",
      );
    }

    // A Proxy whose traps call fetch, while the paused task is inspected.
    {
      const code =
        `const trap = new Proxy({}, { ownKeys() { fetch("https://x.example/phantom"); return []; } });
const r = await fetch("https://x.example/real");
r.status`;
      const res = await srv.request("/task", { body: { code, autoFetch: false } });
      const task = (res.body as { task?: { id: string; fetchRequests?: unknown[] } }).task;
      const pending = task?.fetchRequests?.length ?? 0;
      expect("Proxy trap calling fetch", `${pending} pending request(s)`, pending === 1);
    }

    // One server per STATES_DIR.
    {
      let outcome = "started";
      try {
        const second = await startChaosServer({
          label: "edge-second",
          statesDir: srv.statesDir,
          env: { FLOWSTATE_TOKEN: TOKEN },
          startTimeoutMs: 15_000,
        });
        await second.close();
      } catch (error) {
        const message = (error as Error).message;
        outcome = /another FlowState server/.test(message)
          ? "refused: another FlowState server is using it"
          : `failed otherwise: ${message.slice(0, 80)}`;
      }
      expect("second server on STATES_DIR", outcome, outcome.startsWith("refused"));
    }

    // A FIFO planted as a record, then a restart.
    {
      const mkfifo = await new Deno.Command("mkfifo", { args: [join(srv.statesDir, "x.json")] })
        .output().catch(() => undefined);
      if (mkfifo?.code === 0) {
        // Without its index file the start lists the directory and meets the FIFO (with the
        // index it reads only the records of the tasks the index lists).
        await Deno.remove(join(srv.statesDir, INDEX_FILE_NAME));
        await srv.restart();
        const health = await srv.request("/health");
        const skipped = srv.logs().filter((l) =>
          l.msg === "state file skipped" && l.file === "x.json"
        );
        expect(
          "FIFO x.json before a restart",
          `restarted (/health ${health.status}), FIFO skipped ${skipped.length}×`,
          health.status === 200 && skipped.length === 1,
        );
      } else {
        figures["FIFO x.json before a restart"] = "skipped (no mkfifo)";
      }
    }
  } finally {
    await server?.close();
    await upstream.shutdown();
  }
  return {
    name: "edge attacks",
    durationMs: performance.now() - started,
    figures,
    problems,
    skipped: [],
  };
}
