/**
 * Real-world scripts using the guest's web platform, through a real server process and a
 * real upstream: paginating with `URL`, `URLSearchParams` and `Link` headers, and signing
 * webhooks with `crypto.subtle` HMAC and `crypto.randomUUID`. Each is killed with SIGKILL at
 * every pause (its fetch in flight) and restarted, and ends with the same result as an
 * uninterrupted run. A task's error carries the guest stack with line and column.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { createHmac } from "node:crypto";
import { startServer } from "../testing/server_process.ts";
import {
  type HeldUpstream,
  runKilledAtEveryPause,
  runUninterrupted,
  startHeldUpstream,
} from "../testing/kill_at_every_pause.ts";
import type { TaskDetailView } from "../lib/service/task_types.ts";

const SECRET = "whsec_example";
const REPOS = ["alpha", "bravo", "charlie", "delta", "echo"];

/**
 * The upstream of these scripts (answers can be held): `/repos` (paginated, `Link` headers
 * with relative URLs) and `/hooks` (checks the webhook signature).
 */
function startApi(): HeldUpstream {
  return startHeldUpstream((req, url, body) => {
    if (url.pathname === "/repos") {
      const page = Number(url.searchParams.get("page") ?? "1");
      const perPage = Number(url.searchParams.get("per_page"));
      const items = REPOS.slice((page - 1) * perPage, page * perPage).map((name) => ({ name }));
      const headers = new Headers({ "content-type": "application/json" });
      if (page * perPage < REPOS.length) {
        const next = new URLSearchParams(url.searchParams);
        next.set("page", String(page + 1));
        headers.set("link", `</repos?${next}>; rel="next", </repos?page=1>; rel="first"`);
      }
      return new Response(JSON.stringify(items), { headers });
    }
    if (url.pathname === "/hooks") {
      const id = req.headers.get("webhook-id");
      const timestamp = req.headers.get("webhook-timestamp");
      const expected = createHmac("sha256", SECRET).update(`${id}.${timestamp}.${body}`).digest(
        "hex",
      );
      const verified = req.headers.get("webhook-signature") === `v1,${expected}` &&
        JSON.parse(body).id === id;
      return Response.json({ verified }, { status: verified ? 202 : 401 });
    }
    return new Response("no route", { status: 404 });
  });
}

Deno.test("paginating with URL, URLSearchParams and Link headers survives SIGKILL at every pause with the same result", async () => {
  const api = startApi();
  try {
    const code = await Deno.readTextFile(new URL("fixtures/paginate_link.js", import.meta.url));
    const input = { start: api.url("/repos"), perPage: 2 };
    const reference = await runUninterrupted(code, input);
    assertEquals(reference.error, undefined);
    assertEquals(reference.result, {
      names: REPOS,
      visited: ["1", "2", "3"],
      query: { per_page: "2", sort: "name" },
    });
    api.seen.length = 0;
    const { done, kills } = await runKilledAtEveryPause(api, code, input, "paginate");
    assertEquals(kills, 3);
    assertEquals(done.status, "completed");
    assertEquals(done.result, reference.result);
    assertEquals(done.pauseCount, reference.pauseCount);
    // Each page was asked twice (before and after the kill), with the same query.
    assertEquals(api.seen.map((s) => s.query), [
      "?per_page=2&sort=name",
      "?per_page=2&sort=name",
      "?per_page=2&sort=name&page=2",
      "?per_page=2&sort=name&page=2",
      "?per_page=2&sort=name&page=3",
      "?per_page=2&sort=name&page=3",
    ]);
  } finally {
    await api.close();
  }
});

Deno.test("signing webhooks with crypto.subtle HMAC and randomUUID survives SIGKILL at every pause: the replay signs the same bytes", async () => {
  const api = startApi();
  try {
    const code = await Deno.readTextFile(new URL("fixtures/sign_webhook.js", import.meta.url));
    const input = { endpoint: api.url("/hooks"), secret: SECRET, events: ["paid", "refunded"] };
    const reference = await runUninterrupted(code, input);
    assertEquals(reference.error, undefined);
    const shape = (task: TaskDetailView) =>
      (task.result as { deliveries: { type: string; status: number; verified: boolean }[] })
        .deliveries.map(({ type, status, verified }) => ({ type, status, verified }));
    assertEquals(shape(reference), [
      { type: "paid", status: 202, verified: true },
      { type: "refunded", status: 202, verified: true },
    ]);
    api.seen.length = 0;
    const { done, kills } = await runKilledAtEveryPause(api, code, input, "webhooks");
    assertEquals(kills, 2);
    assertEquals(done.status, "completed");
    assertEquals(shape(done), shape(reference));
    // The request sent again after each restart is byte for byte the one sent before it:
    // the replayed randomUUID, clock and HMAC gave the same values.
    assertEquals(api.seen.length, 4);
    for (const i of [0, 2]) {
      assertEquals(api.seen[i + 1]!.body, api.seen[i]!.body);
      assertEquals(
        api.seen[i + 1]!.headers["webhook-signature"],
        api.seen[i]!.headers["webhook-signature"],
      );
    }
    const result = done.result as { deliveries: { id: string }[]; fingerprint: string };
    assertEquals(result.deliveries.map((d) => d.id), [
      api.seen[0]!.headers["webhook-id"],
      api.seen[2]!.headers["webhook-id"],
    ]);
    assertMatch(result.fingerprint, /^[A-Za-z0-9+/]{43}=$/);
  } finally {
    await api.close();
  }
});

Deno.test("a task's error carries the guest stack with line and column in task.js", async () => {
  const server = await startServer();
  try {
    const task = await server.createTask({
      code: `function parse(text) {\n  return JSON.parse(text).value.toFixed(2);\n}\nparse("{}");`,
    });
    const done = await server.waitForTask(task.id);
    assertEquals(done.status, "error");
    assertEquals(done.error!.name, "TypeError");
    assertMatch(done.error!.stack!, /at parse \(task\.js:2:\d+\)/);
    assertMatch(done.error!.stack!, /task\.js:4:\d+/);
  } finally {
    await server.close();
  }
});
