/**
 * Requests for a task reaching a replica that does not hold it: forwarded to the replica
 * that does, or, for a finished task nobody holds, handled where they land (that replica
 * then holds the task).
 */
import { assertEquals } from "@std/assert";
import { freePort, ServerProcess } from "../testing/server_process.ts";
import { freshDatabase } from "../testing/postgres.ts";

Deno.test({
  name: "cancel, retry and signal reach the replica holding the task, whichever replica gets them",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const database = await freshDatabase();
  const replicas: ServerProcess[] = [];
  try {
    for (const label of ["a", "b"]) {
      const port = freePort();
      replicas.push(
        await ServerProcess.start({
          label: `forward-${label}`,
          port,
          env: { DATABASE_URL: database.url, REPLICA_URL: `http://127.0.0.1:${port}` },
        }),
      );
    }
    const [a, b] = replicas as [ServerProcess, ServerProcess];
    const code = `const s = await FlowState.waitForSignal("go"); s.n * 2`;
    assertEquals((await a.createTask({ id: "w", code })).status, "paused");

    // Held by a: b forwards the cancel to it.
    const cancelled = await b.request("/cancel", { body: { taskId: "w", reason: "test" } });
    assertEquals(cancelled.status, 200, cancelled.text);
    assertEquals(a.logGrep(/"path":"\/cancel"/).length, 1);

    // Cancelled, so held by nobody: b retries it itself and holds it from then on.
    const retried = await b.request("/retry", { body: { taskId: "w" } });
    assertEquals(retried.status, 200, retried.text);
    assertEquals((retried.body as { task: { status: string } }).task.status, "paused");
    assertEquals(a.logGrep(/"path":"\/retry"/).length, 0);

    // Now a forwards the signal to b.
    const signalled = await a.request("/signal", {
      body: { taskId: "w", name: "go", data: { n: 21 } },
    });
    assertEquals(signalled.status, 200, signalled.text);
    const task = (signalled.body as { task: { status: string; result: unknown } }).task;
    assertEquals([task.status, task.result], ["completed", 42]);
    assertEquals(b.logGrep(/"path":"\/signal"/).length, 1);
    assertEquals((await a.task("w")).result, 42);
  } finally {
    await Promise.all(replicas.map((replica) => replica.close()));
    await database.drop();
  }
});
