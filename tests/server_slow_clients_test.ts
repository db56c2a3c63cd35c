/**
 * Slow and greedy clients against the real server process: a request head or body sent
 * byte by byte is cut off at its timeout, a silent connection gets a 408, and connections
 * beyond MAX_CONNECTIONS get a 503, while normal requests keep being served.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { startServer, stepper, waitFor } from "../testing/server_process.ts";

const encoder = new TextEncoder();

/** Sends `text` one byte every `everyMs` until the server closes; returns the bytes sent. */
async function trickle(port: number, text: string, everyMs: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let sent = 0;
  try {
    for (const char of text) {
      await conn.write(encoder.encode(char));
      sent++;
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  } catch {
    return sent; // Closed by the server.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
  return sent;
}

/** Reads what the server sends until it closes the connection. */
async function readAll(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buffer = new Uint8Array(4096);
  for (;;) {
    let n: number | null;
    try {
      n = await conn.read(buffer);
    } catch {
      break;
    }
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return text;
}

Deno.test("server process: trickled heads and bodies are cut off, silent connections get 408", async (t) => {
  const server = await startServer({
    env: { HEADERS_TIMEOUT_MS: "300", BODY_TIMEOUT_MS: "300" },
  });
  const step = stepper(t, server);
  try {
    await step(
      "a request head sent one byte every 50 ms is closed before it is complete",
      async () => {
        const head = `GET /health HTTP/1.1\r\nHost: localhost\r\nX-Pad: ${"a".repeat(200)}\r\n\r\n`;
        const sent = await trickle(server.port, head, 50);
        assert(sent < head.length, `the server read all ${sent} bytes`);
        await server.waitForLog((l) =>
          l.msg === "connection closed" && l.reason === "headers timeout"
        );
      },
    );

    await step(
      "a request body sent one byte every 50 ms is closed before it is complete",
      async () => {
        const body = JSON.stringify({ code: "1".repeat(300) });
        const head =
          `POST /task HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n` +
          `content-length: ${body.length}\r\n\r\n`;
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        await conn.write(encoder.encode(head));
        let bodyTrickle = 0;
        try {
          for (const char of body) {
            await conn.write(encoder.encode(char));
            bodyTrickle++;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        } catch {
          // Closed by the server.
        } finally {
          try {
            conn.close();
          } catch {
            // Already closed.
          }
        }
        assert(bodyTrickle < body.length, "the server read the whole trickled body");
        await server.waitForLog((l) =>
          l.msg === "connection closed" && l.reason === "body timeout"
        );
      },
    );

    await step("a connection that sends nothing gets a 408 JSON error and is closed", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      const answer = await readAll(conn);
      conn.close();
      assertMatch(answer, /^HTTP\/1\.1 408 /);
      assertMatch(answer, /"success":false/);
    });

    await step("normal requests, keep-alive included, are served", async () => {
      for (let i = 0; i < 3; i++) {
        assertEquals((await server.request("/health")).status, 200);
      }
      const task = await server.createTask({ code: "6 * 7" });
      assertEquals((await server.waitForTask(task.id)).result, 42);
    });
  } finally {
    await server.close();
  }
});

Deno.test("server process: connections beyond MAX_CONNECTIONS get a 503 and the server recovers", async () => {
  const server = await startServer({ env: { MAX_CONNECTIONS: "4", HEADERS_TIMEOUT_MS: "60000" } });
  const held: Deno.Conn[] = [];
  const reads: Promise<string>[] = [];
  try {
    let refused = "";
    for (let i = 0; i < 6 && refused === ""; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      held.push(conn);
      const read = readAll(conn);
      reads.push(read);
      // A refused connection is answered at once; a held one says nothing.
      let timer: ReturnType<typeof setTimeout> | undefined;
      refused = await Promise.race([
        read,
        new Promise<string>((resolve) => timer = setTimeout(() => resolve(""), 300)),
      ]);
      clearTimeout(timer);
    }
    assertMatch(refused, /^HTTP\/1\.1 503 /);
    assertMatch(refused, /Too many connections/);
    for (const conn of held.splice(0)) conn.close();
    await Promise.all(reads);
    await waitFor(async () => (await server.request("/health")).status === 200);
  } catch (error) {
    console.error(server.tail());
    throw error;
  } finally {
    for (const conn of held) conn.close();
    await Promise.all(reads);
    await server.close();
  }
});
