/**
 * Secrets at rest: with `JOURNAL_ENCRYPTION_KEY`, the parts of a task's state that carry
 * what its requests send and receive (a request's options: headers and body; a response's
 * headers, body and data) are sealed with AES-256-GCM (WebCrypto) before they are written,
 * in journal events and in the record's `pending` and `variables` view alike, and opened
 * when read. What the server needs to find its way (ids, URLs, methods, statuses, times)
 * stays readable.
 *
 * A sealed part is `{ "$sealed": "v1:<base64 of 12-byte IV and ciphertext>" }` in place of
 * the fields it holds. The key is the SHA-256 of the secret, so the secret must be random
 * (`openssl rand -base64 32`), not a passphrase. Parts written without the key stay readable
 * with it; a part sealed with another key, or altered, fails to open (GCM authenticates).
 *
 * @module
 */
import type { TaskEvent, TaskRecord } from "./task_store.ts";

/** A sealed part that cannot be opened: another key, or altered bytes. */
export class SealedPartError extends Error {
  override name = "SealedPartError";
}

const VERSION = "v1:";
const IV_BYTES = 12;
/** Response fields that stay readable; the others are sealed. */
const OPEN_RESPONSE_FIELDS = new Set(["id", "success", "status", "statusText", "url", "timestamp"]);

type Sealed = { $sealed: string };

const isSealed = (value: unknown): value is Sealed =>
  typeof value === "object" && value !== null && typeof (value as Sealed).$sealed === "string";

/** Seals and opens the secret parts of events and records with one key. */
export class JournalCipher {
  readonly #key: Promise<CryptoKey>;

  /** A cipher keyed by the SHA-256 of `secret`. */
  constructor(secret: string) {
    this.#key = crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret)).then((raw) =>
      crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"])
    );
  }

  /** `event` with its request's options or its response's secret fields sealed. */
  async sealEvent(event: TaskEvent): Promise<TaskEvent> {
    if (event.type === "request") {
      const { options, ...request } = event.request;
      return { ...event, request: { ...request, options: await this.#seal(options) as never } };
    }
    if (event.type === "response") {
      const open: Record<string, unknown> = {};
      const secret: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(event.response)) {
        (OPEN_RESPONSE_FIELDS.has(key) ? open : secret)[key] = value;
      }
      if (Object.keys(secret).length === 0) return event;
      return { ...event, response: { ...open, ...(await this.#seal(secret)) } as never };
    }
    return event;
  }

  /** `event` opened (an event written without the key is returned as it is). */
  async openEvent(event: TaskEvent): Promise<TaskEvent> {
    if (event.type === "request" && isSealed(event.request.options)) {
      const options = await this.#open(event.request.options);
      return { ...event, request: { ...event.request, options: options as never } };
    }
    if (event.type === "response" && isSealed(event.response)) {
      const { $sealed, ...open } = event.response as unknown as Sealed & Record<string, unknown>;
      const secret = await this.#open({ $sealed }) as Record<string, unknown>;
      return { ...event, response: { ...open, ...secret } as never };
    }
    return event;
  }

  /**
   * `record` with the options of its pending requests sealed, and its `variables` view
   * (the script's globals, which hold what responses brought: tokens, say).
   */
  async sealRecord(record: TaskRecord): Promise<TaskRecord> {
    let sealed = record;
    if (record.pending.length > 0) {
      const pending = await Promise.all(
        record.pending.map(async (request) => ({
          ...request,
          options: await this.#seal(request.options) as never,
        })),
      );
      sealed = { ...sealed, pending };
    }
    const variables = record.vm?.variables;
    if (record.vm && variables && !isSealed(variables) && Object.keys(variables).length > 0) {
      sealed = { ...sealed, vm: { ...record.vm, variables: await this.#seal(variables) as never } };
    }
    return sealed;
  }

  /** `record` with its pending requests and its `variables` view opened. */
  async openRecord(record: TaskRecord): Promise<TaskRecord> {
    let opened = record;
    if (record.pending.some((request) => isSealed(request.options))) {
      const pending = await Promise.all(
        record.pending.map(async (request) =>
          isSealed(request.options)
            ? { ...request, options: await this.#open(request.options) as never }
            : request
        ),
      );
      opened = { ...opened, pending };
    }
    const variables: unknown = record.vm?.variables;
    if (record.vm && isSealed(variables)) {
      opened = { ...opened, vm: { ...record.vm, variables: await this.#open(variables) as never } };
    }
    return opened;
  }

  async #seal(value: unknown): Promise<Sealed> {
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const plain = new TextEncoder().encode(JSON.stringify(value));
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt({ name: "AES-GCM", iv }, await this.#key, plain),
    );
    const bytes = new Uint8Array(IV_BYTES + sealed.length);
    bytes.set(iv);
    bytes.set(sealed, IV_BYTES);
    return { $sealed: VERSION + bytes.toBase64() };
  }

  async #open(value: Sealed): Promise<unknown> {
    if (!value.$sealed.startsWith(VERSION)) {
      throw new SealedPartError(`Cannot open a sealed part: unknown format`);
    }
    let plain: ArrayBuffer;
    try {
      const bytes = Uint8Array.fromBase64(value.$sealed.slice(VERSION.length));
      plain = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES) },
        await this.#key,
        bytes.subarray(IV_BYTES),
      );
    } catch {
      throw new SealedPartError(
        "Cannot open a sealed part: it was sealed with another JOURNAL_ENCRYPTION_KEY, or altered",
      );
    }
    return JSON.parse(new TextDecoder().decode(plain));
  }
}
