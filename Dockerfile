# FlowState on the official Deno image. Build: docker build -t flowstate .
FROM denoland/deno:2.9.6

WORKDIR /app
# Dependencies first, so the layer is cached across source changes.
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY . .
RUN deno cache server.ts lib/service/engine_process.ts \
  && mkdir -p states \
  && chown -R deno:deno /app/states

USER deno
# Reachable from outside the container: set FLOWSTATE_TOKEN when publishing the port.
ENV PORT=8080 HOST=0.0.0.0 STATES_DIR=/app/states
VOLUME ["/app/states"]
EXPOSE 8080
# --allow-run: the engines run as child processes (`deno run lib/service/engine_process.ts`).
CMD ["deno", "run", "--allow-net", "--allow-env", "--allow-read=.", "--allow-write=./states", "--allow-run", "server.ts"]
