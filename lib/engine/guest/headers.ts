/**
 * Guest source: `Headers`, case-insensitive and insertion-ordered.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule } from "./guest_types.ts";

function headersFactory(core: GuestCore): GuestExports {
  const { OrigMap, mapGet, mapSet, mapHas, mapDelete, objectKeys, isArray, StringCtor } = core;
  const { TypeErrorCtor, toLowerCase } = core;
  type HeadersInit = Headers | readonly unknown[] | Record<string, unknown> | null | undefined;

  class Headers {
    #map = new OrigMap<string, string>();
    constructor(init?: HeadersInit) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        init.forEach((value, name) => this.append(name, value));
      } else if (isArray(init)) {
        for (const pair of init) {
          if (!isArray(pair) || pair.length !== 2) {
            throw new TypeErrorCtor("Headers: each header must be a [name, value] pair");
          }
          this.append(pair[0], pair[1]);
        }
      } else if (typeof init === "object") {
        const record = init as Record<string, unknown>;
        for (const name of objectKeys(record)) this.append(name, record[name]);
      } else {
        throw new TypeErrorCtor(
          "Headers: init must be an object, an array of pairs or a Headers",
        );
      }
    }
    append(name: unknown, value: unknown): void {
      const key = toLowerCase.call(StringCtor(name));
      const text = StringCtor(value);
      const old = mapGet.call(this.#map, key);
      mapSet.call(this.#map, key, old === undefined ? text : old + ", " + text);
    }
    set(name: unknown, value: unknown): void {
      mapSet.call(this.#map, toLowerCase.call(StringCtor(name)), StringCtor(value));
    }
    get(name: unknown): string | null {
      const value = mapGet.call(this.#map, toLowerCase.call(StringCtor(name)));
      return value === undefined ? null : value as string;
    }
    has(name: unknown): boolean {
      return mapHas.call(this.#map, toLowerCase.call(StringCtor(name)));
    }
    delete(name: unknown): void {
      mapDelete.call(this.#map, toLowerCase.call(StringCtor(name)));
    }
    forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown) {
      for (const [name, value] of this.#map) callback.call(thisArg, value, name, this);
    }
    *entries(): IterableIterator<[string, string]> {
      yield* this.#map;
    }
    *keys(): IterableIterator<string> {
      for (const [name] of this.#map) yield name;
    }
    *values(): IterableIterator<string> {
      for (const [, value] of this.#map) yield value;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    toJSON(): Record<string, string> {
      const out: Record<string, string> = {};
      for (const [name, value] of this.#map) out[name] = value;
      return out;
    }
  }
  return { Headers };
}

/** The `Headers` global. */
export const headersModule: GuestModule = {
  name: "headers",
  globals: ["Headers"],
  factory: headersFactory,
};
