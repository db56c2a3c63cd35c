/**
 * `GET /metrics`: the server's metrics in Prometheus text format, behind the token like
 * every route but `/health`.
 *
 * @module
 */
import { NotFoundError } from "../errors.ts";
import type { AppDeps, Routes } from "./route.ts";

/** The metrics route. */
export function metricsRoutes(deps: AppDeps): Routes {
  return {
    "/metrics": {
      auth: true,
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
