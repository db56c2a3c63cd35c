# FlowState on the official Deno image. Build: docker build -t flowstate .
# Run: docker run -p 8080:8080 -e FLOWSTATE_TOKEN=... -v flowstate-states:/app/states flowstate
FROM denoland/deno:2.9.6

WORKDIR /app
# Dependencies first, so the layer is cached across source changes.
COPY deno.json deno.lock ./
RUN deno install --frozen
# .dockerignore keeps tests, benchmarks, chaos and their support out of the image.
COPY . .
# The code stays root's; the runtime user owns only the states and Deno's cache.
RUN deno cache server.ts lib/service/engine_process.ts \
  && mkdir -p states \
  && chown -R deno:deno /app/states "${DENO_DIR:-/deno-dir}"

USER deno
# Reachable from outside the container: set FLOWSTATE_TOKEN when publishing the port.
ENV PORT=8080 HOST=0.0.0.0 STATES_DIR=/app/states
VOLUME ["/app/states"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["deno", "eval", "const r = await fetch(`http://127.0.0.1:${Deno.env.get('PORT') ?? 8080}/health`); Deno.exit(r.ok ? 0 : 1)"]
# The permissions of `deno task start` (deno.json); tests/container_test.ts keeps them equal.
# --allow-run: the engines run as child processes (`deno run lib/service/engine_process.ts`).
CMD ["deno", "run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-run", "server.ts"]
