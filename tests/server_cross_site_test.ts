/**
 * End-to-end tests of the real server process as a hostile web page would drive it through
 * a developer's browser: "simple" cross-site POSTs (`text/plain`, no preflight), forged
 * deliveries to `/call`, DNS rebinding (a foreign `Host`), and the loopback default.
 */
import { assert, assertEquals } from "@std/assert";
import type { TaskView } from "../lib/service/task_types.ts";
import { assertErrorResponse, startServer, stepper } from "../testing/server_process.ts";

const EVIL = "https://evil.example";

/** Sends `head` (request line and headers, no body) over a raw socket; returns the status. */
async function rawStatus(port: number, head: string): Promise<number> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(`${head}\r\nConnection: close\r\n\r\n`));
  let text = "";
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(4096);
  for (;;) {
    const read = await conn.read(buffer);
    if (read === null) break;
    text += decoder.decode(buffer.subarray(0, read), { stream: true });
  }
  const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
  if (status === undefined) throw new Error(`Not an HTTP response: ${JSON.stringify(text)}`);
  return Number(status);
}

Deno.test("server without a token refuses cross-site POSTs, foreign Host names and non-JSON bodies", async (t) => {
  const server = await startServer();
  const step = stepper(t, server);
  try {
    await step(
      "a text/plain POST /task is 403 from another site, 415 from anywhere, and creates nothing",
      async () => {
        const res = await server.request("/task", {
          body: JSON.stringify({ code: "1" }),
          headers: { "content-type": "text/plain", origin: EVIL },
        });
        assertErrorResponse(res, 403);
        const plain = await server.request("/task", {
          body: JSON.stringify({ code: "1" }),
          headers: { "content-type": "text/plain" },
        });
        assertErrorResponse(plain, 415);
        assertEquals((await server.request("/status")).body, {
          success: true,
          tasks: [],
          nextCursor: null,
        });
      },
    );

    await step(
      "a JSON POST with a foreign Origin or Sec-Fetch-Site cross-site is 403",
      async () => {
        for (
          const headers of <Record<string, string>[]> [
            { origin: EVIL },
            { "sec-fetch-site": "cross-site" },
            { "sec-fetch-site": "same-site", origin: `http://localhost:${server.port}` },
          ]
        ) {
          assertErrorResponse(await server.request("/task", { body: { code: "1" }, headers }), 403);
        }
        assertEquals((await server.request("/status")).body, {
          success: true,
          tasks: [],
          nextCursor: null,
        });
      },
    );

    await step(
      "a forged text/plain delivery to /call leaves the waiting task waiting",
      async () => {
        const task = await server.createTask({
          code: `const r = await fetch("https://api.test/x"); r.status`,
          autoFetch: false,
        });
        assertEquals(task.status, "paused");
        const requestId = task.fetchRequest!.id;
        const forged = JSON.stringify({
          taskId: task.id,
          fetchResponse: { id: requestId, success: true, status: 200, data: "forged" },
        });
        for (const type of ["text/plain", "application/x-www-form-urlencoded"]) {
          const res = await server.request("/call", {
            body: forged,
            headers: { "content-type": type },
          });
          assertErrorResponse(res, 415);
        }
        assertErrorResponse(
          await server.request("/call", {
            body: forged,
            headers: { "content-type": "application/json", "sec-fetch-site": "cross-site" },
          }),
          403,
        );
        assertEquals((await server.task(task.id)).status, "paused");
        const same = await server.request("/call", {
          body: forged,
          headers: { "content-type": "application/json", "sec-fetch-site": "same-origin" },
        });
        assertEquals(same.status, 200, same.text);
        assertEquals((same.body as { task: TaskView }).task.result, 200);
      },
    );

    await step("a request naming a foreign Host (DNS rebinding) is 403", async () => {
      const port = server.port;
      assertEquals(await rawStatus(port, `GET /status HTTP/1.1\r\nHost: rebind.evil.example`), 403);
      assertEquals(
        await rawStatus(port, `GET /health HTTP/1.1\r\nHost: rebind.evil.example:${port}`),
        403,
      );
      assertEquals(await rawStatus(port, `GET /status HTTP/1.1\r\nHost: localhost:${port}`), 200);
      assertEquals(await rawStatus(port, `GET /status HTTP/1.1\r\nHost: 127.0.0.1:${port}`), 200);
    });
  } finally {
    await server.close();
  }
});

Deno.test("server with ALLOWED_HOSTS serves those names and no others", async () => {
  const server = await startServer({ env: { ALLOWED_HOSTS: "flow.test,.corp.test" } });
  try {
    const status = (host: string) =>
      rawStatus(server.port, `GET /health HTTP/1.1\r\nHost: ${host}`);
    assertEquals(await status("flow.test"), 200);
    assertEquals(await status("api.corp.test:8080"), 200);
    assertEquals(await status("evil.test"), 403);
  } finally {
    await server.close();
  }
});

Deno.test("server with neither HOST nor a token listens on loopback only and says so", async () => {
  const server = await startServer({ env: { HOST: "" } });
  try {
    const listening = await server.waitForLog((line) => line.msg === "listening");
    assertEquals(listening.hostname, "127.0.0.1");
    const said = server.logs().find((line) => line.msg.startsWith("listening on loopback only"));
    assert(said, "a startup line says the server listens on loopback only");
  } finally {
    await server.close();
  }
});
