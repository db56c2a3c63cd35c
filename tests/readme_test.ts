/**
 * The README's examples, run as written: every `curl` example against a real server
 * process (with a local upstream standing in for the public URLs), every library example
 * as a real Deno program, and the configuration table against the code.
 */
import { assertEquals } from "@std/assert";
import { renderConfigTable } from "../lib/config.ts";

const ROOT = new URL("../", import.meta.url);
const README = await Deno.readTextFile(new URL("README.md", ROOT));
/** The pages under `docs/`, whose examples are checked like the README's. */
const DOCS: Record<string, string> = {};
for await (const entry of Deno.readDir(new URL("docs/", ROOT))) {
  if (entry.isFile && entry.name.endsWith(".md")) {
    DOCS[entry.name] = await Deno.readTextFile(new URL(`docs/${entry.name}`, ROOT));
  }
}
/** The README and every page under `docs/`, one after the other. */
const ALL_PAGES = [README, ...Object.values(DOCS)].join("\n");
const PUBLIC_ORIGIN = "https://jsonplaceholder.typicode.com";
/** An API that fails its first request to each path with a 503, for the retry examples. */
const FLAKY_ORIGIN = "https://flaky.example.com";
const TODOS: Record<string, unknown> = {
  "/todos/1": { userId: 1, id: 1, title: "delectus aut autem", completed: false },
  "/todos/2": { userId: 1, id: 2, title: "quis ut nam facilis et officia qui", completed: false },
};
const VOLATILE_KEYS = new Set([
  "cpuMs",
  "createdAt",
  "updatedAt",
  "requestedAt",
  "respondedAt",
  "time",
  "date",
  "wakeAt",
  "at",
  // A cursor names the creation time of a task.
  "nextCursor",
]);
const POLL_MS = 50;
const POLL_LIMIT_MS = 10_000;

interface Block {
  lang: string;
  body: string;
}

function blocks(markdown: string): Block[] {
  return [...markdown.matchAll(/```(\w+)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1]!,
    body: m[2]!,
  }));
}

function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}`);
  const end = markdown.indexOf("\n## ", start + 1);
  return markdown.slice(start, end === -1 ? undefined : end);
}

/** README fetch ids are examples: map each to the real id met at the same place. */
function matches(expected: unknown, actual: unknown, ids: Map<string, string>): boolean {
  if (typeof expected === "string" && expected.startsWith("fetch_")) {
    if (typeof actual !== "string" || !actual.startsWith("fetch_")) return false;
    const known = ids.get(expected);
    if (known !== undefined) return known === actual;
    ids.set(expected, actual);
    return true;
  }
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length &&
      expected.every((item, i) => matches(item, actual[i], ids));
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const keys = Object.keys(e);
    if (keys.length !== Object.keys(a).length) return false;
    return keys.every((key) =>
      key in a &&
      (VOLATILE_KEYS.has(key) ? typeof a[key] === typeof e[key] : matches(e[key], a[key], ids))
    );
  }
  return expected === actual;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function waitForHealth(port: number): Promise<void> {
  const deadline = Date.now() + POLL_LIMIT_MS * 3;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`);
      await response.body?.cancel();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  throw new Error("The server did not start");
}

async function sh(command: string, cwd: string): Promise<string> {
  const output = await new Deno.Command("bash", { args: ["-c", command], cwd, stderr: "inherit" })
    .output();
  return new TextDecoder().decode(output.stdout);
}

Deno.test("the README's curl examples print what the README says", async () => {
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const body = TODOS[new URL(req.url).pathname];
    return body ? Response.json(body) : new Response("not found", { status: 404 });
  });
  const upstreamOrigin = `http://127.0.0.1:${upstream.addr.port}`;
  const failed = new Set<string>();
  const flaky = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (!failed.has(path)) {
      failed.add(path);
      return new Response("try again", { status: 503 });
    }
    return Response.json({ count: 7 });
  });
  const flakyOrigin = `http://127.0.0.1:${flaky.addr.port}`;
  const port = freePort();
  const statesDir = await Deno.makeTempDir();
  const workDir = await Deno.makeTempDir();
  const server = new Deno.Command(Deno.execPath(), {
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
      PORT: String(port),
      HOST: "127.0.0.1",
      STATES_DIR: statesDir,
      LOG_LEVEL: "error",
      WEBHOOK_SECRET: "whsec_readme",
    },
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  try {
    await waitForHealth(port);
    const all = blocks(ALL_PAGES);
    const ids = new Map<string, string>();
    let examples = 0;
    for (let i = 0; i < all.length - 1; i++) {
      const block = all[i]!;
      const next = all[i + 1]!;
      if (block.lang !== "sh" || !block.body.includes("curl ")) continue;
      if (
        next.lang !== "json" && (next.lang !== "text" || /curl -sN (?!--max-time)/.test(block.body))
      ) {
        continue;
      }
      examples++;
      let command = block.body.replaceAll("localhost:8080", `127.0.0.1:${port}`)
        .replaceAll(PUBLIC_ORIGIN, upstreamOrigin).replaceAll(FLAKY_ORIGIN, flakyOrigin);
      for (const [example, real] of ids) command = command.replaceAll(example, real);
      if (next.lang === "text") {
        // Text output: line by line, a line ending in "..." standing for any continuation.
        const actual = (await sh(command, workDir)).trimEnd().split("\n");
        const expected = next.body.trimEnd().split("\n");
        const same = actual.length === expected.length &&
          expected.every((line, i) =>
            line.endsWith("...") ? actual[i]!.startsWith(line.slice(0, -3)) : actual[i] === line
          );
        if (!same) assertEquals(actual, expected, `README example:\n${block.body}`);
        continue;
      }
      const expected = JSON.parse(next.body);
      const polled = command.includes("/status") || command.includes("/health");
      const deadline = Date.now() + POLL_LIMIT_MS;
      let actual: unknown;
      for (;;) {
        const text = (await sh(command, workDir)).replaceAll(upstreamOrigin, PUBLIC_ORIGIN)
          .replaceAll(flakyOrigin, FLAKY_ORIGIN);
        actual = JSON.parse(text);
        const tentative = new Map(ids);
        if (matches(expected, actual, tentative)) {
          for (const [k, v] of tentative) ids.set(k, v);
          break;
        }
        if (!polled || Date.now() > deadline) {
          assertEquals(actual, expected, `README example:\n${block.body}`);
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    }
    assertEquals(examples > 8, true, "the README should have its curl examples");
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await upstream.shutdown();
    await flaky.shutdown();
    await Deno.remove(statesDir, { recursive: true });
    await Deno.remove(workDir, { recursive: true });
  }
});

Deno.test("the README's library examples print what their comments say", async () => {
  const examples = blocks(section(README, "Library use")).filter((b) => b.lang === "ts");
  assertEquals(examples.length, 4);
  for (const [index, example] of examples.entries()) {
    const expected = [...example.body.matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)]
      .flatMap((m) => m[1]!.split(" | "));
    const file = new URL(`.readme_example_${index}.ts`, ROOT);
    await Deno.writeTextFile(file, example.body);
    try {
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", file.pathname],
        cwd: ROOT,
        stderr: "inherit",
      }).output();
      assertEquals(output.code, 0, `example ${index} failed`);
      const lines = new TextDecoder().decode(output.stdout).trimEnd().split("\n");
      assertEquals(lines, expected, `example ${index}:\n${example.body}`);
    } finally {
      await Deno.remove(file);
    }
  }
});

Deno.test("the README's configuration table is the one the code documents", () => {
  const rows = (text: string) =>
    text.split("\n")
      .filter((line) => line.startsWith("|") && !line.startsWith("| -"))
      .map((line) => line.slice(1, -1).split(" | ").map((cell) => cell.trim()));
  const documented = rows(renderConfigTable());
  assertEquals(rows(section(README, "Configuration")).slice(0, documented.length), documented);
});

Deno.test("every page the README links under docs/ exists, and every page there is linked", () => {
  const linked = new Set([...README.matchAll(/\]\(docs\/([\w.-]+\.md)\)/g)].map((m) => m[1]!));
  assertEquals([...linked].sort(), Object.keys(DOCS).sort());
});
