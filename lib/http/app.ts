/**
 * The HTTP edge: a function from `Request` to `Response` that authenticates, routes and
 * hands the work to the task service. The routes come from one table per area of the
 * API (`*_routes.ts`).
 *
 * Before routing, {@link createRequestGuard} refuses requests for a host this server is not
 * and cross-site requests; a body must have a media type its route reads (JSON unless the
 * route says otherwise). Errors are `{ success: false, error }` with the status of the
 * {@link HttpError} thrown; anything else is logged and answered with a generic 500.
 *
 * @module
 */
import { ensureError, HttpError, MethodNotAllowedError, NotFoundError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { createAuthCheck } from "./auth.ts";
import { createRequestGuard, JSON_BODY_TYPES } from "./request_guard.ts";
import { json, quote } from "./json_io.ts";
import type { AppDeps, Routes } from "./route.ts";
import { taskRoutes } from "./task_routes.ts";
import { eventRoutes } from "./event_routes.ts";
import { lifecycleRoutes } from "./lifecycle_routes.ts";
import { definitionRoutes } from "./definition_routes.ts";
import { metricsRoutes } from "./metrics_routes.ts";
import { signalRoutes } from "./signal_routes.ts";
import { openApiRoutes } from "./openapi.ts";
import { dashboardRoutes } from "./dashboard_routes.ts";

export type { AppDeps } from "./route.ts";
export { isTaskId, parseTaskId, TASK_ID_PATTERN } from "./task_routes.ts";

/** The app: a function from request to response. */
export type App = (req: Request) => Promise<Response>;

/** Creates the app. */
export function createApp(deps: AppDeps): App {
  const { config, logger } = deps;
  const checkAuth = createAuthCheck(config.token);
  const guard = createRequestGuard({
    allowedHosts: [
      ...config.allowedHosts,
      config.host,
      ...(config.callEndpoint === undefined ? [] : [new URL(config.callEndpoint).hostname]),
      // The address other replicas of a cluster forward this one's tasks' requests to.
      ...(config.replicaUrl === undefined ? [] : [new URL(config.replicaUrl).hostname]),
    ],
    allowedOrigins: config.allowedOrigins,
    selfMark: deps.selfMark,
  });

  const routes: Routes = joinRoutes(
    taskRoutes(deps),
    signalRoutes(deps),
    lifecycleRoutes(deps),
    eventRoutes(deps),
    definitionRoutes(deps),
    metricsRoutes(deps),
    dashboardRoutes(),
    openApiRoutes(() => routes, deps.service.health().version),
  );

  const handle = async (req: Request, url: URL): Promise<Response> => {
    guard.checkOrigin(req);
    const route = Object.hasOwn(routes, url.pathname) ? routes[url.pathname] : undefined;
    if (!route) throw new NotFoundError(`Cannot route ${req.method} ${quote(url.pathname)}`);
    if (route.auth) await checkAuth(req);
    const method = req.method === "HEAD" && route.methods.GET ? "GET" : req.method;
    const handler = Object.hasOwn(route.methods, method) ? route.methods[method] : undefined;
    if (!handler) {
      const allow = Object.keys(route.methods).flatMap((m) => m === "GET" ? [m, "HEAD"] : [m]);
      throw new MethodNotAllowedError(req.method, url.pathname, allow);
    }
    guard.checkBodyType(req, route);
    const response = await handler(req, url);
    return req.method === "HEAD" ? new Response(null, response) : response;
  };

  return async (req: Request): Promise<Response> => {
    const started = performance.now();
    const url = new URL(req.url);
    const requestId = requestIdOf(req);
    let response: Response;
    try {
      response = await handle(req, url);
    } catch (thrown) {
      response = errorResponse(thrown, req, url, logger, requestId);
      if (req.method === "HEAD") response = new Response(null, response);
    }
    response = withHeader(response, REQUEST_ID_HEADER, requestId);
    const fields = {
      requestId,
      method: req.method,
      path: url.pathname,
      status: response.status,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
    };
    if (response.status >= 500) logger.warn("request", fields);
    else logger.info("request", fields);
    return response;
  };
}

/** The header carrying a request's id, both ways. */
export const REQUEST_ID_HEADER = "x-request-id";

/** What a caller's own request id may look like to be kept (else a new one is made). */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's `X-Request-Id` when it is a plain token, else a new UUID. */
function requestIdOf(req: Request): string {
  const given = req.headers.get(REQUEST_ID_HEADER);
  return given !== null && REQUEST_ID_PATTERN.test(given) ? given : crypto.randomUUID();
}

/** `response` with `name` set, copied first when its headers are immutable. */
function withHeader(response: Response, name: string, value: string): Response {
  try {
    response.headers.set(name, value);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set(name, value);
    return copy;
  }
}

/**
 * One table of the route tables of each area: a path two areas serve (`POST /task` and
 * `DELETE /task`) gets the methods and docs of both. Throws on a method served twice or a
 * path whose areas disagree on authentication.
 */
export function joinRoutes(...tables: Routes[]): Routes {
  const joined: Routes = {};
  for (const table of tables) {
    for (const [path, route] of Object.entries(table)) {
      const known = joined[path];
      if (!known) {
        joined[path] = route;
        continue;
      }
      for (const method of Object.keys(route.methods)) {
        if (Object.hasOwn(known.methods, method)) {
          throw new TypeError(`Route ${method} ${path} is defined twice`);
        }
      }
      if (known.auth !== route.auth) {
        throw new TypeError(`Route ${path} is defined with and without authentication`);
      }
      const bodyTypes = known.bodyTypes || route.bodyTypes
        ? [
          ...new Set([
            ...known.bodyTypes ?? JSON_BODY_TYPES,
            ...route.bodyTypes ?? JSON_BODY_TYPES,
          ]),
        ]
        : undefined;
      joined[path] = {
        auth: known.auth,
        docs: { ...known.docs, ...route.docs },
        methods: { ...known.methods, ...route.methods },
        ...(bodyTypes ? { bodyTypes } : {}),
      };
    }
  }
  return joined;
}

function errorResponse(
  thrown: unknown,
  req: Request,
  url: URL,
  logger: Logger,
  requestId: string,
): Response {
  if (thrown instanceof HttpError) {
    return json(thrown.status, { success: false, error: thrown.message }, thrown.headers);
  }
  const error = ensureError(thrown);
  logger.error("request failed", {
    requestId,
    method: req.method,
    path: url.pathname,
    error: { name: error.name, message: error.message, stack: error.stack },
  });
  return json(500, { success: false, error: "Internal server error" });
}
