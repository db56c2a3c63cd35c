/**
 * End-to-end: `GET /status?id=` reads only the tail of a task's journal, so a task with a
 * journal of many MiB answers a view of bounded size that says what it left out;
 * `journal=full` lists everything.
 */
import { assert, assertEquals } from "@std/assert";
import { assertErrorResponse, startServer } from "../testing/server_process.ts";

const MIB = 1024 * 1024;
/** Console lines the task prints, 4 KiB each: about 6 MiB in all. */
const LINES = 1500;

Deno.test("GET /status?id= of a task with a 6 MiB journal reads its last MiB and says how much came before; journal=full lists every line", async () => {
  const server = await startServer({
    env: { MAX_LOG_BYTES: String(16 * MIB), MAX_LOG_ENTRIES: String(2 * LINES) },
  });
  try {
    const code =
      `for (let i = 0; i < ${LINES}; i++) console.log("line " + i + " " + "x".repeat(4096));
"done"`;
    const created = await server.createTask({ id: "chatty", code });
    assertEquals(created.status, "completed");

    const res = await server.request("/status?id=chatty");
    assertEquals(res.status, 200);
    assert(res.text.length < 2 * MIB, `the view is ${res.text.length} bytes`);
    const { task } = res.body as {
      task: { result: unknown; logs: { message: string }[]; journalSkipped?: { bytes: number } };
    };
    assertEquals(task.result, "done");
    assert(task.journalSkipped && task.journalSkipped.bytes > 4 * MIB, "it says what it skipped");
    assert(task.logs.length > 0 && task.logs.length < LINES);
    assert(task.logs.at(-1)!.message.startsWith(`line ${LINES - 1} `), "the last lines are shown");

    const full = await server.request("/status?id=chatty&journal=full");
    assertEquals(full.status, 200);
    const whole = (full.body as { task: { logs: unknown[]; journalSkipped?: unknown } }).task;
    assertEquals(whole.journalSkipped, undefined);
    assert(whole.logs.length > task.logs.length);

    assertErrorResponse(await server.request("/status?id=chatty&journal=all"), 400);

    // A small journal is read whole: no marker.
    await server.createTask({ id: "quiet", code: "console.log('hi'); 1" });
    const quiet = await server.task("quiet");
    assertEquals(quiet.logs.map((line) => line.message), ["hi"]);
    assertEquals("journalSkipped" in quiet, false);
  } finally {
    await server.close();
  }
});
