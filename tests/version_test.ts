import { assertEquals } from "@std/assert";
import manifest from "../deno.json" with { type: "json" };
import { startServer } from "../testing/server_process.ts";

Deno.test("GET /health and GET /openapi.json report deno.json's version", async () => {
  await using server = await startServer();
  const health = await server.request("/health");
  assertEquals((health.body as { version: string }).version, manifest.version);
  const openapi = await server.request("/openapi.json");
  assertEquals((openapi.body as { info: { version: string } }).info.version, manifest.version);
});
