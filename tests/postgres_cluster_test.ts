/**
 * Three replicas on one PostgreSQL database behind a round-robin proxy: tasks making
 * fetches in sequence and with `Promise.all`, sleeping and waiting for signals all finish
 * with the right result while a replica is killed (SIGKILL) and restarted, and while the
 * database restarts; no response reaches a script twice.
 */
import { assert, assertEquals } from "@std/assert";
import postgres from "postgres";
import { delay, freePort, ServerProcess, waitFor } from "../testing/server_process.ts";
import { startUpstream, valueFor } from "../testing/upstream.ts";
import { startRoundRobin } from "../testing/round_robin.ts";
import { freshDatabase } from "../testing/postgres.ts";
import { controlPostgres } from "../testing/postgres_control.ts";
import type { TaskView } from "../lib/service/task_types.ts";

const LEASE_MS = 1_500;

/** The task kinds: code, and the result it must reach for key `k`. */
const KINDS = {
  sequential: {
    code: `let sum = 0;
for (let i = 0; i < 4; i++) {
  const r = await fetch(input.base + "/v/" + input.k + "/s" + i);
  sum += (await r.json()).value;
}
sum`,
    expected: (k: string) => [0, 1, 2, 3].reduce((sum, i) => sum + valueFor(`/v/${k}/s${i}`), 0),
  },
  parallel: {
    code: `const parts = await Promise.all([0, 1, 2].map((i) =>
  fetch(input.base + "/v/" + input.k + "/p" + i).then((r) => r.json())
));
const more = await fetch(input.base + "/v/" + input.k + "/after");
parts.reduce((sum, part) => sum + part.value, 0) + (await more.json()).value`,
    expected: (k: string) =>
      [0, 1, 2].reduce((sum, i) => sum + valueFor(`/v/${k}/p${i}`), 0) + valueFor(`/v/${k}/after`),
  },
  sleeping: {
    code: `const a = await (await fetch(input.base + "/v/" + input.k + "/a")).json();
await FlowState.sleep(1500);
const b = await (await fetch(input.base + "/v/" + input.k + "/b")).json();
a.value + b.value`,
    expected: (k: string) => valueFor(`/v/${k}/a`) + valueFor(`/v/${k}/b`),
  },
  signalled: {
    code: `const a = await (await fetch(input.base + "/v/" + input.k + "/a")).json();
const signal = await FlowState.waitForSignal("go");
const b = await (await fetch(input.base + "/v/" + input.k + "/b")).json();
a.value + b.value + signal.add`,
    expected: (k: string) => valueFor(`/v/${k}/a`) + valueFor(`/v/${k}/b`) + 7,
  },
} as const;
type Kind = keyof typeof KINDS;

/** A request through the proxy, retried through 502, 503 and network errors. */
async function send(
  origin: string,
  path: string,
  body?: unknown,
  deadline = Date.now() + 60_000,
): Promise<{ status: number; body: { task?: TaskView; error?: string } }> {
  let last = "";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(origin + path, {
        method: body === undefined ? "GET" : "POST",
        headers: body === undefined ? {} : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await response.text();
      if (response.status !== 502 && response.status !== 503) {
        return { status: response.status, body: JSON.parse(text) };
      }
      last = `${response.status} ${text}`;
    } catch (error) {
      last = String(error);
    }
    await delay(100 + Math.random() * 200);
  }
  throw new Error(`${path} kept failing: ${last}`);
}

/**
 * How many running and paused tasks the replica last started at `origin` owns (read with a
 * client of its own, so none outlives the database's restart).
 */
async function heldBy(url: string, origin: string): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ held: number }[]>`
      SELECT count(*)::integer AS held FROM flowstate_tasks
      WHERE status IN ('running', 'paused') AND owner = (
        SELECT id FROM flowstate_replicas WHERE rtrim(address, '/') = ${origin}
        ORDER BY seen_at DESC LIMIT 1)`;
    return row?.held ?? 0;
  } finally {
    await sql.end();
  }
}

Deno.test({
  name:
    "a cluster of three replicas finishes every task right while one is killed and restarted and the database restarts",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const database = await freshDatabase();
  const upstream = startUpstream({ minDelayMs: 20, maxDelayMs: 400 });
  const replicas: ServerProcess[] = [];
  const proxy = startRoundRobin(() => replicas.map((replica) => replica.origin));
  try {
    const env = {
      DATABASE_URL: database.url,
      CALL_ENDPOINT: `${proxy.origin}/call`,
      LEASE_MS: String(LEASE_MS),
      WORKERS: "1",
      SELF_POST_RETRIES: "20",
    };
    // The three start at once: their migrations run concurrently.
    replicas.push(
      ...await Promise.all([0, 1, 2].map((i) => {
        const port = freePort();
        return ServerProcess.start({
          label: `replica-${i}`,
          port,
          env: { ...env, REPLICA_URL: `http://127.0.0.1:${port}` },
        });
      })),
    );

    const kinds = Object.keys(KINDS) as Kind[];
    const tasks = Array.from({ length: 50 }, (_, i) => {
      const kind = kinds[i % kinds.length]!;
      return { id: `t${i}-${kind}`, kind, k: `k${i}` };
    });
    const created = tasks.map(async (task, i) => {
      await delay(i * 40); // Spread over two seconds.
      const reply = await send(proxy.origin, "/task", {
        id: task.id,
        code: KINDS[task.kind].code,
        input: { base: upstream.origin, k: task.k },
      });
      // A retried creation that had gone through is refused as a duplicate.
      assert(reply.status === 200 || reply.status === 409, JSON.stringify(reply));
      if (task.kind === "signalled") {
        await delay(500 + Math.random() * 2_500);
        const signal = await send(proxy.origin, "/signal", {
          taskId: task.id,
          name: "go",
          data: { add: 7 },
        });
        // 409 "completed": an earlier attempt was applied, but its answer was lost with the
        // replica killed before replying (a signal is applied once; retrying it is refused).
        const applied = signal.status === 200 ||
          (signal.status === 409 && /is completed/.test(signal.body.error ?? ""));
        assert(applied, JSON.stringify(signal));
      }
    });

    // Meanwhile: replica 1 is killed and restarted three times (the first time holding a
    // task), and the database restarts. The tasks a killed replica held unfinished are
    // finished by others: taken over.
    const victim = replicas[1]!;
    let takenOver = 0;
    for (let round = 0; round < 4; round++) {
      await delay(700);
      if (round === 1) {
        await controlPostgres("restart");
        continue;
      }
      if (round === 0) {
        await waitFor(async () => await heldBy(database.url, victim.origin) > 0, {
          message: "the replica to be killed to hold a task",
        });
      }
      await victim.kill();
      takenOver += await heldBy(database.url, victim.origin);
      await delay(300);
      await victim.restart();
    }
    await Promise.all(created);

    const results = new Map<string, TaskView>();
    await waitFor(async () => {
      for (const task of tasks) {
        if (results.has(task.id)) continue;
        const reply = await send(proxy.origin, `/status?id=${task.id}`);
        const view = reply.body.task!;
        if (view.status === "completed" || view.status === "error") results.set(task.id, view);
      }
      return results.size === tasks.length;
    }, {
      timeoutMs: 60_000,
      message: () =>
        `every task to finish; unfinished: ${
          tasks.filter((task) => !results.has(task.id)).map((task) => task.id).join(", ")
        }`,
    });
    for (const task of tasks) {
      const view = results.get(task.id)!;
      assertEquals(view.status, "completed", `${task.id}: ${JSON.stringify(view)}`);
      assertEquals(view.result, KINDS[task.kind].expected(task.k), task.id);
    }

    // Each response is in its task's journal once.
    const sql = postgres(database.url, { max: 1, onnotice: () => {} });
    try {
      const lines = await sql<{ task_id: string; line: string }[]>`
        SELECT task_id, line FROM flowstate_journal
        WHERE NOT is_commit AND line LIKE '{"type":"response"%'`;
      const seen = new Set<string>();
      for (const { task_id, line } of lines) {
        const key = `${task_id} ${JSON.parse(line).response.id}`;
        assert(!seen.has(key), `response delivered twice: ${key}`);
        seen.add(key);
      }
      const expectedFetches = tasks.reduce(
        (sum, task) => sum + (task.kind === "sequential" || task.kind === "parallel" ? 4 : 2),
        0,
      );
      assertEquals(seen.size, expectedFetches);
    } finally {
      await sql.end();
    }
    assert(takenOver > 0, "the killed replica held no unfinished task");
    const duplicates = upstream.duplicates();
    console.log(
      `cluster: ${tasks.length} tasks, ${takenOver} taken over from the killed replica, ` +
        `${upstream.requests.length} upstream requests, ` +
        `${duplicates.extraRequests} sent again (${duplicates.keys} keys)`,
    );
  } finally {
    await Promise.all(replicas.map((replica) => replica.close()));
    await proxy.close();
    await upstream.close();
    await database.drop();
  }
});
