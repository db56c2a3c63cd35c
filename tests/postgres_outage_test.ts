/**
 * A database outage in PostgreSQL mode: requests that need the database get 503s, nothing
 * is lost or half written, and the tasks go on once the database is back.
 */
import { assertEquals } from "@std/assert";
import { delay, ServerProcess } from "../testing/server_process.ts";
import { startUpstream, valueFor } from "../testing/upstream.ts";
import { freshDatabase } from "../testing/postgres.ts";
import { controlPostgres } from "../testing/postgres_control.ts";

Deno.test({
  name:
    "while the database is down requests get 503 and no task is lost; they finish once it is back",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const database = await freshDatabase();
  const upstream = startUpstream();
  const server = await ServerProcess.start({
    label: "outage",
    env: { DATABASE_URL: database.url, LEASE_MS: "2000" },
  });
  try {
    const base = upstream.origin;
    const waiting = await server.createTask({
      id: "waiting",
      code: `const s = await FlowState.waitForSignal("go");
const r = await fetch(input.base + "/v/w");
(await r.json()).value + s.add`,
      input: { base },
    });
    assertEquals(waiting.status, "paused");
    const sleeping = await server.createTask({
      id: "sleeping",
      code: `await FlowState.sleep(1500);
const r = await fetch(input.base + "/v/s");
(await r.json()).value`,
      input: { base },
    });
    assertEquals(sleeping.status, "paused");

    await controlPostgres("stop");
    try {
      const created = await server.request("/task", { body: { id: "new", code: "1" } });
      assertEquals(created.status, 503, created.text);
      assertEquals(created.headers.get("retry-after"), "1");
      const signalled = await server.request("/signal", {
        body: { taskId: "waiting", name: "go", data: { add: 1 } },
      });
      assertEquals(signalled.status, 503, signalled.text);
      // The sleeping task's timer comes due during the outage: its wake-up cannot commit.
      await delay(2_000);
    } finally {
      await controlPostgres("start");
    }

    const signalled = await server.requestRetrying("/signal", {
      body: { taskId: "waiting", name: "go", data: { add: 1 } },
    });
    assertEquals(signalled.status, 200, signalled.text);
    const done = await server.waitForTask("waiting", ["completed", "error"], 30_000);
    assertEquals(done.result, valueFor("/v/w") + 1);
    const woke = await server.waitForTask("sleeping", ["completed", "error"], 30_000);
    assertEquals(woke.result, valueFor("/v/s"));
    assertEquals((await server.request("/status?id=new")).status, 404);
    const created = await server.requestRetrying("/task", { body: { id: "new", code: "1" } });
    assertEquals(created.status, 200, created.text);
  } finally {
    await server.close();
    await upstream.close();
    await database.drop();
  }
});
