/**
 * Real-world scripts using the guest's streams, through a real server process and a real
 * upstream. Each is killed with SIGKILL at every pause (its fetch in flight) and restarted,
 * and ends with the same result as an uninterrupted run: the streams are rebuilt on replay
 * from the journaled responses.
 */
import { assertEquals } from "@std/assert";
import {
  type HeldUpstream,
  runKilledAtEveryPause,
  runUninterrupted,
  startHeldUpstream,
} from "../testing/kill_at_every_pause.ts";

/** Orders 1..7 with amounts 5, 10, ..., 35. */
const ORDERS = Array.from({ length: 7 }, (_, i) => ({ id: `o${i + 1}`, amount: 5 * (i + 1) }));
const PAGE = 3;

/** `/orders`: cursor-paginated JSON pages of {@link ORDERS}. */
function startApi(): HeldUpstream {
  return startHeldUpstream((_req, url) => {
    if (url.pathname !== "/orders") return new Response("no route", { status: 404 });
    const from = Number(url.searchParams.get("cursor") ?? "0");
    const items = ORDERS.slice(from, from + PAGE);
    const next = from + PAGE < ORDERS.length ? String(from + PAGE) : null;
    return Response.json({ items, next });
  });
}

Deno.test("a paginated API read as a ReadableStream through a TransformStream survives SIGKILL at every pause with the same result", async () => {
  const api = startApi();
  try {
    const code = await Deno.readTextFile(new URL("fixtures/stream_pages.js", import.meta.url));
    const input = { url: api.url("/orders"), min: 20 };
    const reference = await runUninterrupted(code, input);
    assertEquals(reference.error, undefined);
    assertEquals(reference.result, { ids: ["o4", "o5", "o6", "o7"], total: 110 });
    api.seen.length = 0;
    const { done, kills } = await runKilledAtEveryPause(api, code, input, "stream-pages");
    assertEquals(kills, 3);
    assertEquals(done.status, "completed");
    assertEquals(done.result, reference.result);
    assertEquals(done.pauseCount, reference.pauseCount);
    assertEquals(api.seen.map((s) => s.query), [
      "",
      "",
      "?cursor=3",
      "?cursor=3",
      "?cursor=6",
      "?cursor=6",
    ]);
  } finally {
    await api.close();
  }
});

/** Records of the NDJSON export, in two parts (names with characters of 2 and 3 bytes). */
const EXPORT = [
  [{ name: "café", amount: 3 }, { name: "naïve", amount: 4 }],
  [{ name: "€uro", amount: 5 }],
];

/** `/export?part=N` (NDJSON, `x-next-part` naming the next) and `/report` (echoes the JSON). */
function startExportApi(): HeldUpstream {
  return startHeldUpstream((_req, url, body) => {
    if (url.pathname === "/export") {
      const part = Number(url.searchParams.get("part") ?? "0");
      const lines = EXPORT[part]!.map((record) => JSON.stringify(record) + "\n").join("");
      const headers = new Headers({ "content-type": "application/x-ndjson" });
      if (part + 1 < EXPORT.length) headers.set("x-next-part", `/export?part=${part + 1}`);
      return new Response(lines, { headers });
    }
    if (url.pathname === "/report") return Response.json({ received: JSON.parse(body) });
    return new Response("no route", { status: 404 });
  });
}

Deno.test("an NDJSON export streamed with a reader loop over response.body, its summary uploaded as a stream, survives SIGKILL at every pause with the same result", async () => {
  const api = startExportApi();
  try {
    const code = await Deno.readTextFile(new URL("fixtures/stream_body.js", import.meta.url));
    const input = { url: api.url("/export"), report: api.url("/report") };
    const reference = await runUninterrupted(code, input);
    assertEquals(reference.error, undefined);
    const summary = { parts: 2, count: 3, total: 12 };
    assertEquals(reference.result, {
      names: ["café", "naïve", "€uro"],
      total: 12,
      parts: 2,
      received: summary,
    });
    api.seen.length = 0;
    const { done, kills } = await runKilledAtEveryPause(api, code, input, "stream-body");
    assertEquals(kills, 3);
    assertEquals(done.status, "completed");
    assertEquals(done.result, reference.result);
    // The streamed upload was read whole before it was journaled: both sends carry the same
    // JSON document, with its content type.
    const reports = api.seen.filter((s) => s.path === "/report");
    assertEquals(reports.length, 2);
    for (const report of reports) {
      assertEquals(JSON.parse(report.body), summary);
      assertEquals(report.headers["content-type"], "application/json");
    }
  } finally {
    await api.close();
  }
});
