/**
 * Guest source: `Response`, as `fetch()` resolves it. Its constructor is internal for now:
 * `(payload, url, dataText)`, where `payload` is the host's answer and `dataText` its data
 * as JSON text.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";

/** The host's answer to a request, as the guest reads it. */
export interface ResponsePayload {
  success?: unknown;
  status?: number;
  statusText?: string;
  url?: string;
  headers?: Record<string, string>;
  data?: unknown;
  /** The nesting limit the body exceeds, so `json()` does not parse it (the host checked). */
  tooDeep?: number;
}

function responseFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { hide, JSONparse, promiseResolve, promiseReject, TypeErrorCtor, SyntaxErrorCtor } = core;
  const headers = use("headers");
  const Headers = headers.Headers as new (init: unknown, guard: unknown) => Headers;
  const IMMUTABLE = headers.IMMUTABLE;

  class Response {
    #data: unknown;
    #dataText: string;
    #tooDeep: number | undefined;
    #used = false;
    declare readonly status: number;
    declare readonly statusText: string;
    declare readonly url: string;
    declare readonly headers: Headers;
    constructor(payload: ResponsePayload, url: string, dataText: string) {
      this.#data = payload.data;
      this.#dataText = dataText;
      this.#tooDeep = payload.tooDeep;
      hide(this, "status", payload.status === undefined ? 0 : payload.status);
      hide(this, "statusText", payload.statusText === undefined ? "" : payload.statusText);
      hide(this, "ok", this.status >= 200 && this.status <= 299);
      hide(this, "url", payload.url === undefined ? url : payload.url);
      hide(this, "headers", new Headers(payload.headers || {}, IMMUTABLE));
      hide(this, "redirected", payload.url !== undefined && payload.url !== url);
      hide(this, "type", "basic");
    }
    get bodyUsed(): boolean {
      return this.#used;
    }
    #consume(): unknown {
      if (this.#used) throw new TypeErrorCtor("Body is unusable: the body has already been read");
      this.#used = true;
      return this.#data;
    }
    text(): Promise<string> {
      try {
        const data = this.#consume();
        if (data === undefined) return promiseResolve("");
        return promiseResolve(typeof data === "string" ? data : this.#dataText);
      } catch (error) {
        return promiseReject(error);
      }
    }
    json(): Promise<unknown> {
      try {
        const data = this.#consume();
        if (this.#tooDeep !== undefined) {
          throw new SyntaxErrorCtor(
            `Cannot parse the response body as JSON: nested deeper than ${this.#tooDeep} levels`,
          );
        }
        if (typeof data === "string") return promiseResolve(JSONparse(data));
        if (data === undefined) throw new SyntaxErrorCtor("Unexpected end of JSON input");
        return promiseResolve(JSONparse(this.#dataText));
      } catch (error) {
        return promiseReject(error);
      }
    }
    clone(): Response {
      if (this.#used) throw new TypeErrorCtor("Response.clone: the body has already been read");
      const payload = {
        data: typeof this.#data === "string" ? this.#data : JSONparse(this.#dataText),
        status: this.status,
        statusText: this.statusText,
        url: this.url,
        headers: (this.headers as unknown as { toJSON(): Record<string, string> }).toJSON(),
        tooDeep: this.#tooDeep,
      };
      return new Response(payload, this.url, this.#dataText);
    }
  }
  return { Response };
}

/** The `Response` global. */
export const responseModule: GuestModule = {
  name: "response",
  globals: ["Response"],
  factory: responseFactory,
};
