/**
 * Requests for a task reaching a replica that does not hold it: forwarded to the replica
 * that does, or, for a finished task nobody holds, handled where they land (that replica
 * then holds the task). A replica whose lease on a task lapsed holds it no more, though it
 * has not learnt so yet.
 */
import { assertEquals } from "@std/assert";
import postgres from "postgres";
import { freePort, ServerProcess, waitFor } from "../testing/server_process.ts";
import { freshDatabase } from "../testing/postgres.ts";
import { jsonResponse } from "../testing/engine_driver.ts";
import { startTcpGate } from "../testing/tcp_gate.ts";
import type { TaskView } from "../lib/service/task_types.ts";

/** Lease time of the replicas, ms. */
const LEASE_MS = 1_000;

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

Deno.test({
  name:
    "a response reaching a replica whose lease on the task lapsed goes to the replica that took the task over",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const database = await freshDatabase();
  const url = new URL(database.url);
  // Replica a reaches the database through the gate, b directly: holding the gate cuts a off.
  const gate = startTcpGate({ hostname: url.hostname, port: Number(url.port || 5432) });
  const gated = new URL(database.url);
  gated.hostname = "127.0.0.1";
  gated.port = String(gate.port);
  const sql = postgres(database.url, { max: 1, onnotice: () => {} });
  const replicas: ServerProcess[] = [];
  try {
    for (const [id, databaseUrl] of [["a", gated.href], ["b", database.url]] as const) {
      const port = freePort();
      replicas.push(
        await ServerProcess.start({
          label: `lapsed-${id}`,
          port,
          env: {
            DATABASE_URL: databaseUrl,
            REPLICA_ID: id,
            REPLICA_URL: `http://127.0.0.1:${port}`,
            LEASE_MS: String(LEASE_MS),
          },
        }),
      );
    }
    const [a, b] = replicas as [ServerProcess, ServerProcess];
    const created = await a.createTask({
      id: "moved",
      autoFetch: false,
      code: `const one = await (await fetch("https://api.test/1")).json();
const two = await (await fetch("https://api.test/2")).json();
one.n + two.n`,
    });
    assertEquals(created.status, "paused");

    // a is cut off from the database past its lease: b takes the task on to its next fetch.
    gate.hold();
    await waitFor(async () => {
      const [row] = await sql<{ lapsed: boolean }[]>`
        SELECT owner <> 'a' OR lease_until < now() AS lapsed FROM flowstate_tasks
        WHERE id = 'moved'`;
      return row?.lapsed;
    }, { message: "the lease of replica a on the task to expire" });
    const first = await b.call("moved", jsonResponse(created.fetchRequest!.id, { n: 20 }));
    assertEquals(first.status, 200, first.text);
    const second = (first.body as { task: TaskView }).task;
    assertEquals(second.status, "paused");

    // The second response reaches a, which still has the task as it was before b took it:
    // a answers from that copy, or asks the database (then it is let through).
    const sent = gate.heldBytes;
    let answered = false;
    const reply = a.call("moved", jsonResponse(second.fetchRequest!.id, { n: 22 })).finally(() => {
      answered = true;
    });
    await waitFor(() => answered || gate.heldBytes > sent, {
      message: "replica a to answer or to ask the database",
    });
    gate.open();
    const done = await reply;
    assertEquals(done.status, 200, done.text);
    const task = (done.body as { task: TaskView }).task;
    assertEquals([task.status, task.result], ["completed", 42]);
    assertEquals(b.logGrep(/"path":"\/call","status":200/).length, 2);
  } finally {
    gate.open();
    await Promise.all(replicas.map((replica) => replica.close()));
    await sql.end();
    await gate.close();
    await database.drop();
  }
});
