/**
 * `GET /metrics`: the server's metrics in Prometheus text format, behind the token like
 * every route but `/health`.
 *
 * @module
 */
import { NotFoundError } from "../errors.ts";
import type { AppDeps, Routes } from "./route.ts";
import { errorAnswer } from "./openapi.ts";

/** The metrics route. */
export function metricsRoutes(deps: AppDeps): Routes {
  return {
    "/metrics": {
      auth: true,
      docs: {
        GET: {
          summary: "Metrics in Prometheus text format",
          responses: {
            "200": {
              description: "The metrics",
              schema: { type: "string" },
              mediaType: "text/plain",
            },
            "404": errorAnswer("No metrics kept"),
          },
        },
      },
      methods: {
        GET: async () => {
          if (!deps.metrics) throw new NotFoundError("This server keeps no metrics");
          return new Response(await deps.metrics.render(), {
            headers: { "content-type": deps.metrics.contentType, "cache-control": "no-store" },
          });
        },
      },
    },
  };
}
