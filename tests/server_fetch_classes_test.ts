/**
 * A Cloudflare-Workers-style script through a real server and a real upstream: it posts
 * `URLSearchParams` and a multipart `FormData` with a file (in a `Request`), reads a binary
 * body with `arrayBuffer()`, and answers with `new Response(...)`. Killed with SIGKILL at
 * every pause (its fetch in flight) and restarted, it ends with the same result as an
 * uninterrupted run, and every request sent again is byte for byte the one sent before.
 */
import { assertEquals } from "@std/assert";
import { createHash } from "node:crypto";
import {
  type HeldUpstream,
  runKilledAtEveryPause,
  runUninterrupted,
  startHeldUpstream,
} from "../testing/kill_at_every_pause.ts";

/** Bytes 0..255 twice: not UTF-8, so only an exact binary body survives. */
const IMAGE = Uint8Array.from({ length: 512 }, (_, i) => i % 256);

function startApi(): HeldUpstream {
  return startHeldUpstream(async (req, url, body) => {
    const type = req.headers.get("content-type") ?? "";
    if (url.pathname === "/token") {
      const form = new URLSearchParams(body);
      return Response.json({
        access_token: `tok-${form.get("client_id")}-${form.get("grant_type")}`,
        form: type,
      });
    }
    if (url.pathname === "/upload") {
      const form = await new Response(body, { headers: { "content-type": type } }).formData();
      const file = form.get("file") as File;
      return Response.json({
        auth: req.headers.get("authorization"),
        title: form.get("title"),
        file: { name: file.name, type: file.type, text: await file.text() },
        multipart: type.startsWith("multipart/form-data; boundary="),
      }, { status: 202 });
    }
    if (url.pathname === "/image.png") {
      return new Response(IMAGE, { headers: { "content-type": "image/png" } });
    }
    return new Response("no route", { status: 404 });
  });
}

const EXPECTED = {
  status: 201,
  type: "application/json",
  body: {
    uploaded: {
      status: 202,
      received: {
        auth: "Bearer tok-flow-client_credentials",
        title: "report, final",
        file: { name: "report.csv", type: "text/csv", text: "id,total\n1,9.50\n" },
        multipart: true,
      },
    },
    image: {
      type: "image/png",
      size: 512,
      first: [0, 1, 2, 3],
      sha256: createHash("sha256").update(IMAGE).digest("hex"),
    },
  },
  fallback: '{"ok":false}',
};

Deno.test("a worker-style script with FormData, URLSearchParams, a binary body and new Response survives SIGKILL at every pause", async () => {
  const api = startApi();
  try {
    const code = await Deno.readTextFile(new URL("fixtures/worker_style.js", import.meta.url));
    const input = { api: api.url("/") };
    const reference = await runUninterrupted(code, input);
    assertEquals(reference.error, undefined);
    assertEquals(reference.result, EXPECTED);
    api.seen.length = 0;
    const { done, kills } = await runKilledAtEveryPause(api, code, input, "worker-style");
    assertEquals(kills, 3);
    assertEquals(done.status, "completed");
    assertEquals(done.result, reference.result);
    // Each request was sent twice (before and after the kill), the same bytes both times:
    // the multipart boundary comes from the task's entropy stream, which a replay repeats.
    assertEquals(api.seen.map((s) => s.path), [
      "/token",
      "/token",
      "/upload",
      "/upload",
      "/image.png",
      "/image.png",
    ]);
    for (const i of [0, 2, 4]) {
      assertEquals(api.seen[i + 1]!.body, api.seen[i]!.body);
      assertEquals(api.seen[i + 1]!.headers["content-type"], api.seen[i]!.headers["content-type"]);
    }
  } finally {
    await api.close();
  }
});
