/**
 * Bodies are bytes: how the journal and `/call` carry them in JSON. Bytes that are valid
 * UTF-8 travel as the text itself (`body`), anything else as base64 (`bodyBase64`), so a
 * body read back is exactly the body sent, whatever it holds.
 *
 * @module
 */

/** A body as JSON carries it: the text when it is valid UTF-8, else base64 of the bytes. */
export type BodyFields = { body: string } | { bodyBase64: string };

/** Where a JSON message may carry a body. */
export interface BodySource {
  body?: string;
  bodyBase64?: string;
  /** The seed's form: parsed JSON, or text. Read only when neither field above is set. */
  data?: unknown;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8 = new TextEncoder();

/** The JSON form of `bytes`. */
export function encodeBody(bytes: Uint8Array): BodyFields {
  try {
    return { body: strictUtf8.decode(bytes) };
  } catch {
    return { bodyBase64: toBase64(bytes) };
  }
}

/**
 * The bytes of a message's body: `body` as UTF-8, `bodyBase64` decoded, else `data` (a string
 * as UTF-8, any other value as its JSON text); `undefined` when the message has no body.
 * Throws a `SyntaxError` for `bodyBase64` that is not base64.
 */
export function decodeBody(source: BodySource): Uint8Array<ArrayBuffer> | undefined {
  if (typeof source.body === "string") return utf8.encode(source.body);
  if (typeof source.bodyBase64 === "string") return fromBase64(source.bodyBase64);
  if (source.data === undefined) return undefined;
  const text = typeof source.data === "string" ? source.data : JSON.stringify(source.data);
  return text === undefined ? undefined : utf8.encode(text);
}

/** Whether `text` is base64 that {@link decodeBody} accepts. */
export function isBase64(text: string): boolean {
  try {
    fromBase64(text);
    return true;
  } catch {
    return false;
  }
}

/** Bytes per `String.fromCharCode` call: well under any engine's argument limit. */
const CHUNK = 0x8000;

/**
 * Base64 of `bytes`, with `btoa` (every runtime has it; `Uint8Array.prototype.toBase64` is
 * missing from Node.js 20, which the npm build of the engine supports).
 */
function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let at = 0; at < bytes.length; at += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(at, at + CHUNK));
  }
  return btoa(binary);
}

/**
 * The bytes of base64 `text` with `atob` (forgiving: ASCII white space is skipped and the
 * padding may be left out); throws a `SyntaxError` for anything else.
 */
function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    throw new SyntaxError(`Invalid base64 "${text.length > 40 ? `${text.slice(0, 40)}…` : text}"`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
