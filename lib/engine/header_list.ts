/**
 * The headers of a delivered response, as the guest's `Headers` hold them: checked and
 * normalised here, once, so the guest builds its immutable `Headers` from the list without
 * validating again. A header the Fetch standard refuses (an outside worker may send one) is
 * dropped.
 *
 * @module
 */

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** HTTP whitespace at either end of a value. */
const EDGES = /^[\t\n\r ]+|[\t\n\r ]+$/g;
/** What a header value may not hold: NUL, CR, LF and anything beyond a byte. */
const REFUSED = /[\0\r\n\u0100-\uffff]/;

/**
 * `[name, value]` pairs of `headers`: names lowercased, values stripped of HTTP whitespace;
 * pairs with an invalid name or value left out.
 */
export function headerList(headers: Record<string, unknown> | undefined): [string, string][] {
  const list: [string, string][] = [];
  if (headers === null || typeof headers !== "object") return list;
  for (const name of Object.keys(headers)) {
    if (!TOKEN.test(name)) continue;
    const raw = headers[name];
    if (typeof raw !== "string" && typeof raw !== "number") continue;
    const value = String(raw).replace(EDGES, "");
    if (REFUSED.test(value)) continue;
    list.push([name.toLowerCase(), value]);
  }
  return list;
}
