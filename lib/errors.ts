/**
 * Errors that know their HTTP status. Anything thrown while handling a request that is
 * not an {@link HttpError} becomes a logged 500 with a generic message.
 *
 * @module
 */

/** An error with the HTTP status it should be answered with. */
export class HttpError extends Error {
  override name = "HttpError";
  /** HTTP status code of the response. */
  readonly status: number;
  /** Extra response headers (e.g. `Allow` for 405). */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, { cause: options?.cause });
    this.status = status;
    this.headers = options?.headers ?? {};
  }
}

/** 400: the request is malformed or a field has the wrong type. */
export class BadRequestError extends HttpError {
  override name = "BadRequestError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(400, message, options);
  }
}

/** 401: missing or wrong bearer token. */
export class UnauthorizedError extends HttpError {
  override name = "UnauthorizedError";
  constructor(message = "Missing or invalid bearer token") {
    super(401, message, { headers: { "www-authenticate": 'Bearer realm="flowstate"' } });
  }
}

/** 403: the request is refused whoever sends it (cross-site, or a host name not served). */
export class ForbiddenError extends HttpError {
  override name = "ForbiddenError";
  constructor(message: string) {
    super(403, message);
  }
}

/** 404: no such route or no such task. */
export class NotFoundError extends HttpError {
  override name = "NotFoundError";
  constructor(message: string) {
    super(404, message);
  }
}

/** 405: the route exists but not for this method. */
export class MethodNotAllowedError extends HttpError {
  override name = "MethodNotAllowedError";
  constructor(method: string, path: string, allow: readonly string[]) {
    super(405, `Method ${method} is not allowed on ${path}; allowed: ${allow.join(", ")}`, {
      headers: { allow: allow.join(", ") },
    });
  }
}

/** 409: the request conflicts with the task's current state (duplicate id, stale response). */
export class ConflictError extends HttpError {
  override name = "ConflictError";
  constructor(message: string) {
    super(409, message);
  }
}

/** 413: the request body is larger than allowed. */
export class PayloadTooLargeError extends HttpError {
  override name = "PayloadTooLargeError";
  constructor(limit: number) {
    super(413, `Request body is larger than ${limit} bytes`);
  }
}

/** 415: the request body's `Content-Type` is not one the route reads. */
export class UnsupportedMediaTypeError extends HttpError {
  override name = "UnsupportedMediaTypeError";
  constructor(message: string, accepted: readonly string[]) {
    super(415, message, { headers: { "accept-post": accepted.join(", ") } });
  }
}

/** 503: the server cannot do it right now (shutting down, storage failing); retry later. */
export class UnavailableError extends HttpError {
  override name = "UnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(503, message, { ...options, headers: { "retry-after": "1" } });
  }
}

/**
 * 503: the task is owned by another replica of a cluster (its lease is held, or the record
 * this replica holds is no longer the latest): this replica dropped its copy; retry, and
 * the request reaches the owner.
 */
export class LeaseLostError extends UnavailableError {
  override name = "LeaseLostError";
}

/** Turns anything thrown into an `Error` (thrown strings and objects included). */
export function ensureError(value: unknown): Error {
  if (value instanceof Error) return value;
  let text: string;
  try {
    text = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return new Error(text);
}
