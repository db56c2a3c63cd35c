/**
 * The pure host calls of the guest world: URL parsing, form encoding, text encoding, base64
 * (a delivered binary body's bytes too),
 * digests, HMAC and the task's entropy stream. The guest reaches them through one bridge
 * function, `call(op, argJson, bytes?)`; strings cross as JSON text (exact for NUL and lone
 * surrogates), bytes as `ArrayBuffer`s.
 *
 * Each call depends only on its arguments and on the VM's own earlier calls (the entropy
 * counter, open streaming decoders), which a replay makes again in the same order, so none
 * needs the journal.
 *
 * @module
 */
import { createHash, createHmac } from "node:crypto";
import { decodeBody } from "./body_bytes.ts";

/** What a host call returns to the guest: JSON text or bytes. */
export type HostCallResult = string | Uint8Array;

/** Most streaming `TextDecoder`s open at once in one VM. */
const MAX_OPEN_DECODERS = 1_000;
/** Most bytes `crypto.getRandomValues` fills in one call (as the Web Crypto API says). */
export const MAX_RANDOM_BYTES = 65_536;

const DIGESTS: Record<string, string> = {
  "SHA-1": "sha1",
  "SHA-256": "sha256",
  "SHA-384": "sha384",
  "SHA-512": "sha512",
};

const URL_PARTS = [
  "href",
  "origin",
  "protocol",
  "username",
  "password",
  "host",
  "hostname",
  "port",
  "pathname",
  "search",
  "hash",
] as const;
const URL_SETTERS = new Set<string>(URL_PARTS.filter((part) => part !== "origin"));

/**
 * The host calls of one VM: create one per VM (its entropy counter and streaming decoders
 * start empty, as they do in a replay).
 */
export class HostCalls {
  readonly #secret: Uint8Array;
  #block = 0;
  #spare: Uint8Array = new Uint8Array(0);
  readonly #decoders = new Map<number, TextDecoder>();
  /** The guest read its clock very often in this run segment (reset by the engine). */
  clockStuck = false;

  /** `secret`: the task's entropy key (32 random bytes, kept with the task's state). */
  constructor(secret: Uint8Array) {
    this.#secret = secret;
  }

  /** Runs host call `op`; throws a `TypeError`/`RangeError`/`DOMException` the guest sees. */
  call(op: string, arg: string, bytes: Uint8Array | undefined): HostCallResult {
    const args = JSON.parse(arg);
    switch (op) {
      case "url.parse":
        return urlParts(URL.parse(args[0], args[1]));
      case "url.set": {
        const url = new URL(args[0]);
        if (!URL_SETTERS.has(args[1])) throw new TypeError(`Cannot set URL.${args[1]}`);
        (url as unknown as Record<string, string>)[args[1]] = args[2];
        return urlParts(url);
      }
      case "form.parse":
        // A leading "&" is an empty pair, dropped; it stops URLSearchParams from dropping a "?".
        return JSON.stringify([...new URLSearchParams("&" + args)]);
      case "form.serialize":
        return JSON.stringify(new URLSearchParams(args).toString());
      case "text.encode":
        return new TextEncoder().encode(args);
      case "text.encodeInto": {
        const { read, written } = new TextEncoder().encodeInto(args[0], new Uint8Array(args[1]));
        return JSON.stringify([read, written]);
      }
      case "text.label":
        return JSON.stringify(encodingOf(args));
      case "text.decode":
        return JSON.stringify(this.#decode(args, bytes ?? new Uint8Array(0)));
      case "base64.atob":
        return JSON.stringify(atob(args));
      case "base64.decode":
        return decodeBody({ bodyBase64: args })!;
      case "base64.btoa":
        return JSON.stringify(btoa(args));
      case "crypto.random":
        return this.#random(args);
      case "crypto.digest":
        return createHash(digestName(args)).update(bytes ?? new Uint8Array(0)).digest();
      case "crypto.hmac": {
        const all = bytes ?? new Uint8Array(0);
        const key = all.subarray(0, args[1]);
        return createHmac(digestName(args[0]), key).update(all.subarray(args[1])).digest();
      }
      case "clock.stuck":
        this.clockStuck = true;
        return "null";
      default:
        throw new TypeError(`There is no host call "${op}"`);
    }
  }

  /** `[label, fatal, ignoreBOM, streamId, stream]`: decodes one chunk. */
  #decode(args: [string, boolean, boolean, number, boolean], bytes: Uint8Array): string {
    const [label, fatal, ignoreBOM, id, stream] = args;
    let decoder = id >= 0 ? this.#decoders.get(id) : undefined;
    if (!decoder) {
      decoder = new TextDecoder(label, { fatal, ignoreBOM });
      if (stream) {
        if (this.#decoders.size >= MAX_OPEN_DECODERS) {
          throw new RangeError(
            `Cannot open more than ${MAX_OPEN_DECODERS} streaming TextDecoders at once`,
          );
        }
        this.#decoders.set(id, decoder);
      }
    }
    try {
      return decoder.decode(bytes, { stream });
    } finally {
      if (!stream) this.#decoders.delete(id);
    }
  }

  /**
   * The next `n` bytes of the task's entropy stream: HMAC-SHA-256 of a block counter under
   * the task's secret. The same secret and the same sequence of calls give the same bytes.
   */
  #random(n: number): Uint8Array {
    if (!Number.isInteger(n) || n < 0 || n > MAX_RANDOM_BYTES) {
      throw new RangeError(`Cannot produce ${n} random bytes: at most ${MAX_RANDOM_BYTES}`);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.#spare.length === 0) {
        const counter = new Uint8Array(8);
        new DataView(counter.buffer).setBigUint64(0, BigInt(this.#block++));
        this.#spare = createHmac("sha256", this.#secret).update(counter).digest();
      }
      const take = Math.min(n - filled, this.#spare.length);
      out.set(this.#spare.subarray(0, take), filled);
      this.#spare = this.#spare.subarray(take);
      filled += take;
    }
    return out;
  }
}

function urlParts(url: URL | null): string {
  if (url === null) return "null";
  return JSON.stringify(URL_PARTS.map((part) => url[part]));
}

/** The canonical name of encoding `label`, or `null` when there is none. */
function encodingOf(label: string): string | null {
  try {
    return new TextDecoder(label).encoding;
  } catch {
    return null;
  }
}

function digestName(algorithm: string): string {
  const name = DIGESTS[algorithm];
  if (!name) throw new TypeError(`Unrecognized digest algorithm "${algorithm}"`);
  return name;
}
