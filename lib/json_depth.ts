/**
 * A guard against deeply nested JSON: data nested thousands of levels deep cannot be
 * copied to an engine worker (structured clone) or serialized again without exhausting
 * the stack, so the HTTP edge and the engine refuse it up front.
 *
 * @module
 */

/** Deepest nesting of arrays and objects accepted in request bodies and task results. */
export const MAX_JSON_DEPTH = 128;

/**
 * Deepest nesting a guest's `response.json()` parses. QuickJS parses recursively on the
 * host's stack, which some ten thousand levels exhaust (an error the guest cannot catch);
 * deeper bodies make `json()` reject with a `SyntaxError` instead, and `text()` still
 * reads them.
 */
export const MAX_GUEST_PARSE_DEPTH = 1000;

/**
 * Whether the JSON text nests arrays/objects deeper than `max` (strings skipped), in one
 * pass without parsing.
 */
export function jsonNestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      if (++depth > max) return true;
    } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      depth--;
    }
  }
  return false;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
