/**
 * Webhook signatures, in the scheme Stripe and Inngest use: the header
 * `FlowState-Signature: t=<unix seconds>,v1=<hex>` where `<hex>` is the HMAC-SHA256, keyed
 * with the server's `WEBHOOK_SECRET`, of `<t>.<raw body>`. The timestamp is signed with the
 * body, so a receiver that refuses timestamps older than its tolerance (5 minutes here)
 * refuses a captured delivery replayed later; each retry is signed afresh.
 *
 * @module
 */

/** The header carrying the signature. */
export const SIGNATURE_HEADER = "flowstate-signature";

/** Default replay window of {@link verifyWebhookSignature}, seconds. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

const encoder = new TextEncoder();

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
  return Array.from(mac, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The `FlowState-Signature` value of `body` sent at `timestamp` (unix seconds). */
export async function signWebhook(
  secret: string,
  timestamp: number,
  body: string,
): Promise<string> {
  return `t=${timestamp},v1=${await hmacHex(secret, `${timestamp}.${body}`)}`;
}

/** Options of {@link verifyWebhookSignature}. */
export interface VerifyOptions {
  /** Oldest accepted timestamp, seconds before `now`. Default 300. */
  toleranceSeconds?: number;
  /** The current time, unix seconds. Default: the clock. */
  now?: number;
}

/**
 * Whether `header` is a valid signature of `body` (the raw body, as received) under
 * `secret`, made within the tolerance. Compares in constant time.
 */
export async function verifyWebhookSignature(
  secret: string,
  header: string | null,
  body: string,
  options: VerifyOptions = {},
): Promise<boolean> {
  if (header === null) return false;
  const parts = new Map<string, string[]>();
  for (const item of header.split(",")) {
    const at = item.indexOf("=");
    if (at <= 0) continue;
    const key = item.slice(0, at).trim();
    parts.set(key, [...(parts.get(key) ?? []), item.slice(at + 1).trim()]);
  }
  const t = parts.get("t")?.[0];
  if (t === undefined || !/^[0-9]{1,12}$/.test(t)) return false;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  const tolerance = options.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS;
  if (Math.abs(now - Number(t)) > tolerance) return false;
  const expected = await hmacHex(secret, `${t}.${body}`);
  return (parts.get("v1") ?? []).some((candidate) => constantTimeEqual(candidate, expected));
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
