/**
 * FlowState server: configuration from the environment, `Deno.serve` on a loopback port
 * behind the connection guard (header and body read timeouts, a connection cap), and
 * graceful shutdown on SIGINT/SIGTERM. Everything else lives in `lib/`.
 *
 * @module
 */
import { loadConfig } from "./lib/config.ts";
import { createFlowState, VERSION } from "./lib/flowstate.ts";
import { createLogger } from "./lib/log.ts";
import { startConnectionGuard } from "./lib/http/connection_guard.ts";

const config = loadConfig();
const logger = createLogger({
  level: config.logLevel,
  format: config.logFormat,
  color: config.logFormat === "pretty" && Deno.stdout.isTerminal() && !Deno.noColor,
});
if (isLoopback(config.host)) {
  logger.info(
    "listening on loopback only: other machines cannot connect; set HOST=0.0.0.0 (and " +
      "FLOWSTATE_TOKEN) to serve them",
    { hostname: config.host },
  );
}
if (!config.token) {
  logger.warn("FLOWSTATE_TOKEN is not set: every endpoint is open to anyone who can reach it");
}

const flowstate = createFlowState(config, logger);
let started: { loaded: number; skipped: number };
try {
  started = await flowstate.start();
} catch (error) {
  logger.error("cannot start", { error: error instanceof Error ? error.message : String(error) });
  Deno.exit(1);
}
const { loaded, skipped } = started;
// The HTTP server listens on loopback only; clients reach it through the guard.
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, flowstate.app);
const guard = startConnectionGuard({
  hostname: config.host,
  port: config.port,
  upstreamPort: server.addr.port,
  headersTimeoutMs: config.headersTimeoutMs,
  bodyTimeoutMs: config.bodyTimeoutMs,
  maxConnections: config.maxConnections,
  onRefused: (reason) => logger.warn("connection closed", { reason }),
});
flowstate.listening(guard.addr.port, server.addr.port);
logger.info("listening", {
  version: VERSION,
  hostname: guard.addr.hostname,
  port: guard.addr.port,
  tasks: loaded,
  skipped,
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info("shutting down", { signal });
  guard.stopAccepting();
  const draining = flowstate.close();
  await server.shutdown();
  await draining;
  guard.close();
  logger.info("stopped");
  Deno.exit(0);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => void shutdown(signal));
}

/** Whether `host` is a loopback interface (`127.0.0.0/8`, `::1`, `localhost`). */
function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\./.test(host);
}
