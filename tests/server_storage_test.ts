/**
 * End-to-end storage tests of the real server process: one server per `STATES_DIR`, state
 * files that are symlinks or FIFOs neither followed nor waited on, and owner-only modes.
 */
import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { join } from "node:path";
import { assertErrorResponse, startServer, stepper } from "../testing/server_process.ts";

Deno.test({
  name:
    "server process: a second server on the same STATES_DIR refuses to start; planted files are refused",
  ignore: Deno.build.os === "windows",
  fn: async (t) => {
    const statesDir = await Deno.makeTempDir({ prefix: "flowstate-states-" });
    const outside = await Deno.makeTempDir({ prefix: "flowstate-outside-" });
    const victim = join(outside, "victim.txt");
    await Deno.writeTextFile(victim, "precious");
    // Planted before the start: a FIFO named like a record.
    const mkfifo = await new Deno.Command("mkfifo", { args: [join(statesDir, "x.json")] }).output();
    assertEquals(mkfifo.code, 0);

    const server = await startServer({ statesDir });
    const step = stepper(t, server);
    try {
      await step("the FIFO did not stop the server from listening; it is skipped", async () => {
        const skipped = await server.waitForLog((l) => l.msg === "listening");
        assertEquals(skipped.skipped, 1);
      });

      await step("a second server on the same directory exits with a clear message", async () => {
        const error = await assertRejects(() => startServer({ statesDir }));
        assertMatch(
          (error as Error).message,
          /another FlowState server \(process \d+\) is using it/,
        );
        assertMatch((error as Error).message, /exited with code 1/);
        assertEquals((await server.request("/health")).status, 200, "the first one still runs");
      });

      await step(
        "a task whose journal name is a planted symlink is 409, the target intact",
        async () => {
          await Deno.symlink(victim, join(statesDir, "victim.journal.jsonl"));
          const res = await server.request("/task", { body: { id: "victim", code: "1" } });
          assertErrorResponse(res, 409);
          assertMatch((res.body as { error: string }).error, /symbolic link/);
          assertEquals(await Deno.readTextFile(victim), "precious");
        },
      );

      await step("the directory is 0700 and a task's files are 0600", async () => {
        const task = await server.createTask({ code: "1 + 1" });
        assertEquals((await Deno.stat(statesDir)).mode! & 0o777, 0o700);
        for (const name of [`${task.id}.json`, `${task.id}.journal.jsonl`]) {
          assertEquals((await Deno.stat(join(statesDir, name))).mode! & 0o777, 0o600, name);
        }
      });
    } finally {
      await server.close();
      await Deno.remove(statesDir, { recursive: true });
      await Deno.remove(outside, { recursive: true });
    }
  },
});

Deno.test("server process with JOURNAL_KEY: a tampered journal refuses its task at restart, others resume", async () => {
  const statesDir = await Deno.makeTempDir({ prefix: "flowstate-states-" });
  const env = { JOURNAL_KEY: "server-journal-key-0123456789" };
  try {
    let server = await startServer({ statesDir, env });
    const code = `const r = await fetch("https://api.example.com/pay?amount=10");
(await r.json()).paid`;
    for (const id of ["kept", "edited"]) {
      assertEquals(
        (await server.request("/task", { body: { id, code, autoFetch: false } })).status,
        200,
      );
    }
    await server.stop();
    const journal = join(statesDir, "edited.journal.jsonl");
    const text = await Deno.readTextFile(journal);
    await Deno.writeTextFile(journal, text.replace("amount=10", "amount=99"));

    server = await startServer({ statesDir, env });
    try {
      const skipped = await server.waitForLog((l) => l.msg === "state file skipped");
      assertEquals(skipped.file, "edited.json");
      assertMatch(String(skipped.reason), /failed its integrity check: line \d+ does not match/);
      assertEquals((await server.request("/status?id=edited")).status, 404);
      const kept = await server.task("kept");
      assertEquals(kept.status, "paused");
      const fetchId = kept.fetchRequest!.id;
      const answer = { id: fetchId, success: true, status: 200, body: '{"paid":true}' };
      assertEquals((await server.call("kept", answer)).status, 200);
      assertEquals((await server.waitForTask("kept")).result, true);
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(statesDir, { recursive: true });
  }
});

Deno.test("server process with JOURNAL_ENCRYPTION_KEY: secrets never reach the disk in clear, and the task resumes after a restart", async () => {
  const statesDir = await Deno.makeTempDir({ prefix: "flowstate-states-" });
  const env = {
    JOURNAL_ENCRYPTION_KEY: "sealing-key-0123456789abcdef",
    JOURNAL_KEY: "server-journal-key-0123456789",
  };
  try {
    let server = await startServer({ statesDir, env });
    // The secret arrives in a response and leaves in a request header: both sealed.
    const code = `const t = await (await fetch("https://auth.example.com/token")).json();
const r = await fetch("https://api.example.com/me", {
  headers: { authorization: "Bearer " + t.token },
});
(await r.json()).name`;
    const created = await server.request("/task", {
      body: { id: "sealed", code, autoFetch: false },
    });
    assertEquals(created.status, 200, created.text);
    const first = (created.body as { task: { fetchRequest: { id: string } } }).task.fetchRequest.id;
    const token = { id: first, success: true, status: 200, body: '{"token":"sk-live-secret"}' };
    assertEquals((await server.call("sealed", token)).status, 200);
    await server.stop();
    for await (const entry of Deno.readDir(statesDir)) {
      if (!entry.isFile) continue;
      const text = await Deno.readTextFile(join(statesDir, entry.name));
      assertEquals(text.includes("sk-live-secret"), false, entry.name);
    }
    server = await startServer({ statesDir, env });
    try {
      const pending = await server.request("/status?id=sealed&fetch=1");
      const fetch =
        (pending.body as { fetch: { id: string; request: { headers: unknown } } }).fetch;
      assertEquals(fetch.request.headers, { authorization: "Bearer sk-live-secret" });
      const answer = { id: fetch.id, success: true, status: 200, body: '{"name":"Ada"}' };
      assertEquals((await server.call("sealed", answer)).status, 200);
      assertEquals((await server.waitForTask("sealed")).result, "Ada");
    } finally {
      await server.close();
    }
  } finally {
    await Deno.remove(statesDir, { recursive: true });
  }
});
