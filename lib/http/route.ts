/**
 * The shape of the edge's route table: a path maps to its handlers by method and says
 * whether the bearer token is required. Each area of the API contributes a table of its own
 * (`*_routes.ts`); `createApp()` joins them.
 *
 * @module
 */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { TaskService } from "../service/mod.ts";
import type { BodySpec, JsonSchema, QuerySpec } from "./schemas.ts";
import type { SelfMark } from "./request_guard.ts";

/** Serves one method of one path. */
export type Handler = (req: Request, url: URL) => Promise<Response>;

/** What `GET /openapi.json` says of one method of a route. */
export interface OperationDoc {
  summary: string;
  /** Query parameters. */
  query?: Record<string, QuerySpec>;
  /** The JSON body, as validation reads it. */
  body?: BodySpec;
  /** Other media types the body may have, with their schema. */
  otherBodies?: Record<string, JsonSchema>;
  /** Answers by status: a description and, for JSON, a schema (or another media type). */
  responses: Record<string, { description: string; schema?: JsonSchema; mediaType?: string }>;
}

export interface Route {
  /** The OpenAPI description of each method. */
  docs: Record<string, OperationDoc>;
  /** Methods served; `HEAD` is served wherever `GET` is. */
  methods: Record<string, Handler>;
  /** Whether the bearer token is required. */
  auth: boolean;
  /**
   * Media types (lower-case, without parameters) a `POST`, `PUT` or `PATCH` body may
   * declare in `Content-Type`; others are refused with 415. Default `application/json`.
   */
  bodyTypes?: readonly string[];
}

/** Routes by path. */
export type Routes = Record<string, Route>;

/** What {@link createApp} and every route table need. */
export interface AppDeps {
  service: TaskService;
  config: Config;
  logger: Logger;
  /** What `GET /metrics` renders; the route answers 404 without it. */
  metrics?: { render(): Promise<string>; readonly contentType: string };
  /**
   * The header this server's own task fetches carry: a request bearing it is a task calling
   * this server, refused with 403 whatever address or port it came through.
   */
  selfMark?: SelfMark;
  /** `true` once the server is draining; `/health` then answers 503. */
  isShuttingDown?: () => boolean;
}

/** The app: a function from request to response. */
export type App = (req: Request) => Promise<Response>;
