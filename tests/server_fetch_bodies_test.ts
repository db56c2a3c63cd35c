/**
 * Bodies are bytes through a real server process and a real upstream: `text()` is what the
 * upstream sent, a bytes request body arrives byte for byte, `redirect: "manual"` sees the
 * 3xx, and a SIGKILL while the task waits changes none of it.
 */
import { assertEquals } from "@std/assert";
import { freePort, startServer, waitFor } from "../testing/server_process.ts";

const EXACT = '{ "price": 1.50, "big": 12345678901234567890 }';

/** An upstream: `/exact`, `/mirror` (answers the request bytes), `/moved`, `/hold` (until released). */
function startBodiesUpstream() {
  const release = Promise.withResolvers<void>();
  const mirrored: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const bytes = new Uint8Array(await req.arrayBuffer());
    if (path === "/exact") {
      return new Response(EXACT, { headers: { "content-type": "application/json" } });
    }
    if (path === "/mirror") {
      mirrored.push(bytes.toBase64());
      return new Response(bytes, { headers: { "content-type": "application/octet-stream" } });
    }
    if (path === "/moved") {
      return new Response(null, { status: 302, headers: { location: "/exact" } });
    }
    if (path === "/hold") {
      await release.promise;
      return new Response("released");
    }
    return new Response("no route", { status: 404 });
  });
  return {
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    mirrored,
    release: () => release.resolve(),
    async close() {
      release.resolve();
      await server.shutdown();
    },
  };
}

Deno.test("exact bodies, bytes bodies and manual redirects survive a SIGKILL while the task waits", async () => {
  const upstream = startBodiesUpstream();
  const dir = await Deno.makeTempDir({ prefix: "flowstate-bodies-" });
  const port = freePort();
  const code = `const exact = await (await fetch(${JSON.stringify(upstream.url("/exact"))})).text();
const moved = await fetch(${JSON.stringify(upstream.url("/moved"))}, { redirect: "manual" });
const held = await (await fetch(${JSON.stringify(upstream.url("/hold"))})).text();
const mirror = await fetch(${JSON.stringify(upstream.url("/mirror"))}, {
  method: "POST", body: new Uint8Array([104, 105, 0, 255]),
});
({ exact, moved: [moved.status, moved.headers.get("location")], held, mirrored: mirror.status })`;
  try {
    const first = await startServer({ statesDir: dir, port });
    try {
      const task = await first.createTask({ id: "bodies", code, autoFetch: true });
      await first.waitForTask(task.id, ["paused"]);
      await waitFor(async () => (await first.task(task.id)).pauseCount === 3, {
        message: "the task to wait on /hold",
      });
      await first.kill();
    } finally {
      await first.close();
    }
    const second = await startServer({ statesDir: dir, port });
    try {
      upstream.release();
      const done = await second.waitForTask("bodies", ["completed", "error"], 30_000);
      assertEquals(done.error, undefined);
      assertEquals(done.result, {
        exact: EXACT,
        moved: [302, "/exact"],
        held: "released",
        mirrored: 200,
      });
      assertEquals(upstream.mirrored, [new Uint8Array([104, 105, 0, 255]).toBase64()]);
    } finally {
      await second.close();
    }
  } finally {
    await upstream.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
