/**
 * Pinned clients connect to the address the egress policy checked, whatever the URL's host
 * name resolves to (here: to nothing at all), and keep TLS end to end with the URL's name.
 */
import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { pinnedClient } from "../lib/outbound/pinned_client.ts";

const fixture = (name: string) =>
  Deno.readTextFileSync(new URL(`./fixtures/tls/${name}`, import.meta.url));

function serve(tls: boolean) {
  const seen: string[] = [];
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
    ...(tls ? { cert: fixture("cert.pem"), key: fixture("key.pem") } : {}),
  }, (req) => {
    seen.push(req.url);
    return new Response(`host ${new URL(req.url).host}`);
  });
  return { server, seen, port: server.addr.port };
}

Deno.test("an http: client sends the request unchanged to the pinned address", async () => {
  const { server, seen, port } = serve(false);
  const url = new URL(`http://no-such-name.invalid:${port}/path?q=1`);
  const pinned = pinnedClient(url, "127.0.0.1");
  try {
    const response = await fetch(url, { client: pinned.client });
    assertEquals(await response.text(), `host no-such-name.invalid:${port}`);
    assertEquals(seen, [url.href]);
  } finally {
    pinned.close();
    await server.shutdown();
  }
});

Deno.test("an https: client tunnels to the pinned address and checks the certificate against the URL's name", async () => {
  const { server, seen, port } = serve(true);
  const caCerts = [fixture("ca.pem")];
  const url = new URL(`https://pinned.test:${port}/secure`);
  const pinned = pinnedClient(url, "127.0.0.1", { caCerts });
  const wrong = new URL(`https://other.test:${port}/secure`);
  const wrongName = pinnedClient(wrong, "127.0.0.1", { caCerts });
  try {
    const response = await fetch(url, { client: pinned.client });
    assertEquals(await response.text(), `host pinned.test:${port}`);
    assertEquals(seen, [url.href]);
    const error = await assertRejects(() => fetch(wrong, { client: wrongName.client }));
    assertMatch(String((error as Error).cause ?? error), /not valid for name "other\.test"/);
    assertEquals(seen.length, 1, "the refused handshake sent no request");
  } finally {
    pinned.close();
    wrongName.close();
    await server.shutdown();
  }
});

Deno.test("an http: client pins an IPv6 address too", async () => {
  const server = Deno.serve(
    { hostname: "::1", port: 0, onListen() {} },
    (req) => new Response(`host ${new URL(req.url).host}`),
  );
  const url = new URL(`http://six.invalid:${server.addr.port}/`);
  const pinned = pinnedClient(url, "::1");
  try {
    const response = await fetch(url, { client: pinned.client });
    assertEquals(await response.text(), `host six.invalid:${server.addr.port}`);
  } finally {
    pinned.close();
    await server.shutdown();
  }
});
