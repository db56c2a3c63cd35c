/**
 * The pool of pinned clients: requests to one address share kept-alive connections, host
 * names that resolved to one address share one client, idle clients are closed, and
 * closing the pool closes every client once it is given back.
 */
import { assertEquals } from "@std/assert";
import { PinnedClientPool } from "../lib/outbound/pinned_client_pool.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`./fixtures/tls/${name}`, import.meta.url));

/** An upstream that notes the client port of each request: one port per connection. */
function serve(tls = false) {
  const ports: number[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    ...(tls ? { cert: fixture("cert.pem"), key: fixture("key.pem") } : {}),
  }, (req, info) => {
    ports.push(info.remoteAddr.port);
    return new Response(`host ${new URL(req.url).host}`);
  });
  return { server, ports, port: server.addr.port };
}

async function get(pool: PinnedClientPool, url: URL): Promise<string> {
  const pinned = pool.acquire(url, "127.0.0.1");
  try {
    return await (await fetch(url, { client: pinned.client })).text();
  } finally {
    pinned.close();
  }
}

Deno.test("consecutive requests to one address through the pool share one kept-alive connection", async () => {
  const { server, ports, port } = serve();
  const pool = new PinnedClientPool();
  try {
    for (let i = 0; i < 5; i++) {
      assertEquals(
        await get(pool, new URL(`http://127.0.0.1:${port}/n/${i}`)),
        `host 127.0.0.1:${port}`,
      );
    }
    assertEquals(ports.length, 5);
    assertEquals(new Set(ports).size, 1);
    assertEquals(pool.size, 1);
  } finally {
    pool.close();
    await server.shutdown();
  }
});

Deno.test("host names resolved to one address share its client and keep their own Host and TLS name", async () => {
  const { server, ports, port } = serve(true);
  const pool = new PinnedClientPool({ caCerts: [fixture("ca.pem")] });
  try {
    // The certificate is for pinned.test, checked by TLS on every connection, not by the
    // pool: a name it does not cover fails below, on the same client.
    const named = (path: string) => new URL(`https://pinned.test:${port}${path}`);
    assertEquals(await get(pool, named("/a")), `host pinned.test:${port}`);
    assertEquals(await get(pool, named("/b")), `host pinned.test:${port}`);
    assertEquals(pool.size, 1);
    assertEquals(new Set(ports).size, 1);
    const wrongName = await get(pool, new URL(`https://other.invalid:${port}/c`)).then(
      () => "answered",
      () => "refused",
    );
    assertEquals(wrongName, "refused");
    assertEquals(ports.length, 2);
  } finally {
    pool.close();
    await server.shutdown();
  }
});

Deno.test("the pool closes clients left idle, and a closed pool lends throw-away clients", async () => {
  const { server, ports, port } = serve();
  const pool = new PinnedClientPool({ idleMs: 20 });
  try {
    const url = new URL(`http://127.0.0.1:${port}/`);
    await get(pool, url);
    assertEquals(pool.size, 1);
    while (pool.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await get(pool, url);
    assertEquals(new Set(ports).size, 2);
    pool.close();
    assertEquals(pool.size, 0);
    await get(pool, url);
    assertEquals(pool.size, 0);
    assertEquals(new Set(ports).size, 3);
  } finally {
    pool.close();
    await server.shutdown();
  }
});

Deno.test("beyond its size the pool closes the least recently used idle client", async () => {
  const first = serve();
  const second = serve();
  const pool = new PinnedClientPool({ maxClients: 1 });
  try {
    await get(pool, new URL(`http://127.0.0.1:${first.port}/`));
    await get(pool, new URL(`http://127.0.0.1:${second.port}/`));
    assertEquals(pool.size, 1);
    await get(pool, new URL(`http://127.0.0.1:${first.port}/`));
    // The first upstream's client was closed: its second request came on a new connection.
    assertEquals(new Set(first.ports).size, 2);
  } finally {
    pool.close();
    await first.server.shutdown();
    await second.server.shutdown();
  }
});
