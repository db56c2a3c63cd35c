/**
 * The `flow` command line against a real server process: `deno task flow -- ...` as a user
 * types it for submit, list, show and cancel, and `tail` following the event stream with its
 * live status line.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { PROJECT_ROOT, startServer, stepper, waitFor } from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";
import { main } from "../cli/flow.ts";

/** Runs `deno task flow -- <args>` against `url`. */
async function flow(url: string, ...args: string[]) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "flow", "--", ...args],
    cwd: PROJECT_ROOT,
    env: { FLOWSTATE_URL: url, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

Deno.test("flow submits a script file, lists, shows and cancels tasks", async (t) => {
  const upstream = startUpstream();
  const server = await startServer({ env: { FLOWSTATE_TOKEN: "cli-token" }, token: "cli-token" });
  const step = stepper(t, server);
  const dir = await Deno.makeTempDir({ prefix: "flow-cli-" });
  const url = server.origin;
  try {
    const job = join(dir, "job.js");
    await Deno.writeTextFile(
      job,
      `const r = await fetch(${JSON.stringify(upstream.url("/number/20"))});
(await r.json()).value + input.add
`,
    );

    await step("submit --input --wait prints the finished task and exits 0", async () => {
      const done = await flow(
        url,
        "submit",
        job,
        "--input",
        '{"add": 22}',
        "--id",
        "cli-1",
        "--token",
        "cli-token",
        "--wait",
      );
      assertEquals(done.code, 0, done.stdout + done.stderr);
      const task = JSON.parse(done.stdout);
      assertEquals([task.id, task.status, task.result], ["cli-1", "completed", 42]);
    });

    await step("a TypeScript file is sent as TypeScript; a task in error exits 1", async () => {
      const typed = join(dir, "typed.ts");
      await Deno.writeTextFile(typed, `const n: number = 2;\nthrow new Error("bad " + n);\n`);
      const failed = await flow(
        url,
        "submit",
        typed,
        "--id",
        "cli-2",
        "--wait",
        "5000",
        "--token",
        "cli-token",
      );
      assertEquals(failed.code, 1, failed.stdout + failed.stderr);
      assertEquals(JSON.parse(failed.stdout).error.message, "bad 2");
    });

    await step("list prints one line per task; show prints the detail", async () => {
      const listed = await flow(url, "list", "--token", "cli-token");
      assertEquals(listed.code, 0, listed.stderr);
      const lines = listed.stdout.trimEnd().split("\n");
      assertEquals(lines[0]!.split(/\s+/), ["ID", "STATUS", "PAUSES", "UPDATED", "NAME"]);
      assertEquals(lines.slice(1).map((line) => line.split(/\s+/).slice(0, 3)), [
        ["cli-1", "completed", "1"],
        ["cli-2", "error", "0"],
      ]);
      const only = await flow(url, "list", "--status", "error", "--token", "cli-token");
      assertEquals(only.stdout.trimEnd().split("\n").length, 2);
      const shown = await flow(url, "show", "cli-1", "--token", "cli-token");
      const detail = JSON.parse(shown.stdout);
      assertEquals(detail.fetches[0].url, upstream.url("/number/20"));
      const fetch = JSON.parse(
        (await flow(url, "show", "cli-1", "--fetch", "0", "--token", "cli-token")).stdout,
      );
      assertEquals(fetch.body, `{"value":20}`);
    });

    await step("errors of the server and of usage exit 2 with a message", async () => {
      const unknown = await flow(url, "show", "nope", "--token", "cli-token");
      assertEquals(unknown.code, 2);
      assertStringIncludes(unknown.stdout, "Error 404");
      const unauthorized = await flow(url, "list");
      assertEquals(unauthorized.code, 2);
      assertStringIncludes(unauthorized.stdout, "Error 401");
      const usage = await flow(url, "submit");
      assertEquals(usage.code, 2);
      assertStringIncludes(usage.stdout, "Usage: flow submit <file>");
    });

    await step("cancel asks POST /cancel and prints what the server answers", async () => {
      const held = await server.createTask({
        id: "cli-held",
        code: `await fetch(${JSON.stringify(upstream.url("/hold/cli"))}); 1`,
      });
      assertEquals(held.status, "paused");
      const cancelled = await flow(
        url,
        "cancel",
        "cli-held",
        "--reason",
        "not needed",
        "--token",
        "cli-token",
      );
      const routes = await server.request("/openapi.json");
      const hasCancel = Object.hasOwn((routes.body as { paths: object }).paths, "/cancel");
      if (hasCancel) {
        assertEquals(cancelled.code, 0, cancelled.stdout);
        assertEquals(JSON.parse(cancelled.stdout).status, "cancelled");
      } else {
        assertEquals(cancelled.code, 2);
        assertStringIncludes(cancelled.stdout, `Cannot route POST "/cancel"`);
      }
      upstream.release("cli", 1);
    });
  } finally {
    await server.close();
    await upstream.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("flow tail prints each transition and keeps a live status line at a terminal", async () => {
  const upstream = startUpstream();
  const server = await startServer();
  const abort = new AbortController();
  let written = "";
  const lines: string[] = [];
  try {
    const tailing = main(["tail", "--id", "tailed"], {
      env: { FLOWSTATE_URL: server.origin },
      out: (text) => lines.push(text),
      raw: (text) => written += text,
      isTerminal: true,
      signal: abort.signal,
    });
    await waitFor(() => written.includes("running"), { message: "the first status line" });
    await server.createTask({
      id: "tailed",
      code: `let s = 0;
for (const n of [1, 2]) s += (await (await fetch(${
        JSON.stringify(upstream.url("/number/"))
      } + n)).json()).value;
s`,
    });
    await waitFor(() => written.includes("completed tailed"), { message: "the completed line" });
    /** What the terminal shows on its last line: the status line. */
    const statusNow = () => written.slice(written.lastIndexOf("\r\x1b[2K") + 5).split("\n").at(-1)!;
    await waitFor(() => statusNow().includes("1 completed"), {
      message: () => `the status line to count the completed task: ${statusNow()}`,
    });
    const status = statusNow();
    abort.abort();
    assertEquals(await tailing, 0);
    const printed = written.split("\n").map((line) => line.split("\r\x1b[2K").at(-1)!)
      .filter((line) => /^\d\d:\d\d:\d\d\.\d{3} /.test(line));
    assertEquals(printed.map((line) => line.split(/\s+/).slice(1, 3)), [
      ["created", "tailed"],
      ["paused", "tailed"],
      ["resumed", "tailed"],
      ["paused", "tailed"],
      ["resumed", "tailed"],
      ["completed", "tailed"],
    ]);
    assertStringIncludes(printed[1]!, `waiting for ${upstream.url("/number/1")}`);
    assertStringIncludes(printed[5]!, "→ 3");
    assert(/^0 running · 0 paused · 1 completed · 0 error/.test(status), status);
    assertEquals(lines, []);
  } finally {
    abort.abort();
    await server.close();
    await upstream.close();
  }
});
