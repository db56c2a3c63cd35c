/**
 * The bearer-token check, compared in constant time.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { UnauthorizedError } from "../errors.ts";

/** Builds the bearer check; with no token configured every request passes. */
export function createAuthCheck(token: string | undefined): (req: Request) => Promise<void> {
  if (token === undefined) return () => Promise.resolve();
  const expected = sha256(token);
  return async (req) => {
    const header = req.headers.get("authorization") ?? "";
    const match = /^Bearer +(\S+) *$/i.exec(header);
    // Hash both sides so the comparison takes the same time whatever the lengths.
    const [want, got] = await Promise.all([expected, sha256(match?.[1] ?? "")]);
    if (!match || !timingSafeEqual(want, got)) throw new UnauthorizedError();
  };
}

async function sha256(text: string): Promise<Uint8Array> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return new Uint8Array(digest);
}
