/**
 * JSON in and out of the edge: responses with the API's headers, request bodies read under
 * a size and nesting limit, and the small validation helpers every route uses.
 *
 * @module
 */
import { jsonNestingExceeds, MAX_JSON_DEPTH } from "../json_depth.ts";
import { BadRequestError, ensureError, HttpError, PayloadTooLargeError } from "../errors.ts";

/** Longest rendering of an offending value in an error message. */
const MAX_QUOTE_LENGTH = 80;

export const JSON_HEADERS = {
  "content-type": "application/json; charset=utf-8",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
};

/** A JSON response with the API's headers. */
export function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, ...headers } });
}

/** Renders a value for an error message: JSON, shortened. */
export function quote(value: unknown): string {
  let text: string;
  try {
    text = value === undefined ? "undefined" : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_QUOTE_LENGTH ? `${text.slice(0, MAX_QUOTE_LENGTH)}…` : text;
}

/**
 * Reads the body as UTF-8 text, enforcing `limit` while streaming: at most `limit` bytes
 * plus one chunk are ever held. Throws 413 when larger, 400 for invalid UTF-8.
 */
export async function readTextBody(req: Request, limit: number): Promise<string> {
  const declared = req.headers.get("content-length");
  if (declared !== null && /^[0-9]+$/.test(declared) && Number(declared) > limit) {
    await req.body?.cancel().catch(() => {});
    throw new PayloadTooLargeError(limit);
  }
  const chunks: Uint8Array<ArrayBuffer>[] = [];
  let size = 0;
  if (req.body) {
    const reader = req.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > limit) {
          await reader.cancel().catch(() => {});
          throw new PayloadTooLargeError(limit);
        }
        chunks.push(value);
      }
    } catch (error) {
      if (error instanceof HttpError) throw error;
      throw new BadRequestError(`Cannot read request body: ${ensureError(error).message}`, {
        cause: error,
      });
    } finally {
      reader.releaseLock();
    }
  }
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (error) {
    throw new BadRequestError("Cannot decode request body: it is not valid UTF-8", {
      cause: error,
    });
  }
}

/**
 * Reads the body as JSON under `limit` bytes ({@link readTextBody}) and the nesting limit.
 * Throws 413 when larger, 400 for invalid UTF-8 or JSON.
 */
export async function readJsonBody(req: Request, limit: number): Promise<unknown> {
  const text = await readTextBody(req, limit);
  if (text.trim() === "") throw new BadRequestError("Cannot parse request body: it is empty");
  if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) {
    throw new BadRequestError(
      `Cannot parse request body: JSON nested deeper than ${MAX_JSON_DEPTH} levels`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BadRequestError(
      `Cannot parse request body as JSON: ${ensureError(error).message}`,
      { cause: error },
    );
  }
}

/** Whether `value` is a plain JSON object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether `body` has its own `key`. */
export function has(body: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(body, key);
}
