/**
 * The outcome the guest controller reports when the script's promise settles: a result
 * (checked against the nesting and size limits) or the error the script failed with.
 *
 * @module
 */
import { ExecutionError } from "./execution_error.ts";
import type { GuestErrorInfo } from "./host_bridge.ts";
import { jsonNestingExceeds, MAX_JSON_DEPTH } from "../json_depth.ts";
import { limitError, utf8Bytes } from "./limits.ts";

interface Outcome {
  done: true;
  json?: string;
  error?: GuestErrorInfo;
  /** The error happened while serializing the result. */
  result?: boolean;
}

/**
 * The result of a completed script from the controller's outcome JSON: `{ value }` (no
 * `value` key for `undefined`). Throws the script's error, mapped by `fail`.
 */
export function completedResult(
  outcomeJson: string,
  maxResultBytes: number,
  fail: (info: GuestErrorInfo) => ExecutionError,
): { value?: unknown } {
  const outcome = JSON.parse(outcomeJson) as Outcome;
  if (outcome.error) {
    if (outcome.result) {
      throw new ExecutionError(
        "exception",
        outcome.error.name,
        `The result cannot be converted to JSON: ${outcome.error.message}`,
      );
    }
    throw fail(outcome.error);
  }
  if (outcome.json === undefined) return {};
  if (jsonNestingExceeds(outcome.json, MAX_JSON_DEPTH)) {
    throw limitError(`The result nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels`);
  }
  const bytes = utf8Bytes(outcome.json);
  if (bytes > maxResultBytes) {
    throw limitError(
      `The result is ${bytes} bytes of JSON, more than the limit of ${maxResultBytes}`,
    );
  }
  return { value: JSON.parse(outcome.json) };
}
