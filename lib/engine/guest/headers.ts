/**
 * Guest source: `Headers`, as the Fetch standard defines them: names are validated as HTTP
 * tokens and lowercased, values are validated and stripped of leading and trailing HTTP
 * whitespace, iteration is sorted by name with the values of one name combined (`set-cookie`
 * excepted: each is its own entry, and `getSetCookie()` lists them), and the headers of a
 * fetched response are immutable.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule } from "./guest_types.ts";

function headersFactory(core: GuestCore): GuestExports {
  const { objectKeys, isArray, StringCtor, TypeErrorCtor, toLowerCase, quote } = core;
  const { arrayPush, arraySplice, stringSlice, hasOwn } = core;
  const charCodeAt = String.prototype.charCodeAt;
  const iteratorSymbol = Symbol.iterator;
  type HeadersInit = Headers | readonly unknown[] | Record<string, unknown> | null | undefined;
  type Entry = [string, string];
  /** Passed as the constructor's second argument by the guest's own fetch: nobody else has it. */
  const IMMUTABLE = {};

  const isTokenCode = (c: number) =>
    (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
    c === 33 || (c >= 35 && c <= 39) || c === 42 || c === 43 || c === 45 || c === 46 ||
    c === 94 || c === 95 || c === 96 || c === 124 || c === 126;
  const isHttpWhitespace = (c: number) => c === 9 || c === 10 || c === 13 || c === 32;

  const normalizeName = (raw: unknown): string => {
    const name = StringCtor(raw);
    let valid = name.length > 0;
    for (let i = 0; valid && i < name.length; i++) valid = isTokenCode(charCodeAt.call(name, i));
    if (!valid) throw new TypeErrorCtor("Invalid header name: " + quote(name));
    return toLowerCase.call(name);
  };
  const normalizeValue = (raw: unknown): string => {
    const text = StringCtor(raw);
    let start = 0;
    let end = text.length;
    while (start < end && isHttpWhitespace(charCodeAt.call(text, start))) start++;
    while (end > start && isHttpWhitespace(charCodeAt.call(text, end - 1))) end--;
    const value = stringSlice.call(text, start, end);
    for (let i = 0; i < value.length; i++) {
      const c = charCodeAt.call(value, i);
      if (c === 0 || c === 10 || c === 13 || c > 255) {
        throw new TypeErrorCtor("Invalid header value: " + quote(value));
      }
    }
    return value;
  };

  class Headers {
    #list: Entry[] = [];
    #immutable = false;
    constructor(init?: HeadersInit, guard?: unknown) {
      if (init !== undefined && init !== null) {
        if (typeof init !== "object" && typeof init !== "function") {
          throw new TypeErrorCtor(
            "Failed to construct 'Headers': init must be a sequence of pairs or a record",
          );
        }
        if (init instanceof Headers || isArray(init) || iteratorSymbol in init) {
          for (const pair of init as Iterable<unknown>) {
            if (pair === null || typeof pair !== "object") {
              throw new TypeErrorCtor("Failed to construct 'Headers': each header must be a pair");
            }
            const items = isArray(pair) ? pair : [...(pair as Iterable<unknown>)];
            if (items.length !== 2) {
              throw new TypeErrorCtor(
                "Invalid header: length must be 2, but is " + items.length,
              );
            }
            this.append(items[0], items[1]);
          }
        } else {
          const record = init as Record<string, unknown>;
          for (const name of objectKeys(record)) {
            try {
              this.append(name, record[name]);
            } catch (error) {
              // The host's answer may come from an outside worker: a header the standard
              // refuses is dropped rather than failing the delivery.
              if (guard !== IMMUTABLE) throw error;
            }
          }
        }
      }
      if (guard === IMMUTABLE) this.#immutable = true;
    }
    #check(): void {
      if (this.#immutable) throw new TypeErrorCtor("Headers are immutable");
    }
    append(name: unknown, value: unknown): void {
      const key = normalizeName(name);
      const text = normalizeValue(value);
      this.#check();
      arrayPush.call(this.#list, [key, text]);
    }
    set(name: unknown, value: unknown): void {
      const key = normalizeName(name);
      const text = normalizeValue(value);
      this.#check();
      const list = this.#list;
      let found = false;
      for (let i = 0; i < list.length; i++) {
        if (list[i]![0] !== key) continue;
        if (found) arraySplice.call(list, i--, 1);
        else {
          list[i] = [key, text];
          found = true;
        }
      }
      if (!found) arrayPush.call(list, [key, text]);
    }
    get(name: unknown): string | null {
      const key = normalizeName(name);
      let out: string | null = null;
      for (const entry of this.#list) {
        if (entry[0] === key) out = out === null ? entry[1] : out + ", " + entry[1];
      }
      return out;
    }
    getSetCookie(): string[] {
      const out: string[] = [];
      for (const entry of this.#list) if (entry[0] === "set-cookie") arrayPush.call(out, entry[1]);
      return out;
    }
    has(name: unknown): boolean {
      const key = normalizeName(name);
      for (const entry of this.#list) if (entry[0] === key) return true;
      return false;
    }
    delete(name: unknown): void {
      const key = normalizeName(name);
      this.#check();
      const list = this.#list;
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i]![0] === key) arraySplice.call(list, i, 1);
      }
    }
    /** The sorted and combined view the standard iterates over. */
    #sorted(): Entry[] {
      const names: string[] = [];
      for (const entry of this.#list) {
        let seen = false;
        for (const name of names) if (name === entry[0]) seen = true;
        if (!seen) arrayPush.call(names, entry[0]);
      }
      for (let i = 1; i < names.length; i++) {
        const name = names[i]!;
        let j = i - 1;
        while (j >= 0 && names[j]! > name) {
          names[j + 1] = names[j]!;
          j--;
        }
        names[j + 1] = name;
      }
      const out: Entry[] = [];
      for (const name of names) {
        if (name === "set-cookie") {
          for (const value of this.getSetCookie()) arrayPush.call(out, [name, value]);
        } else arrayPush.call(out, [name, this.get(name)!]);
      }
      return out;
    }
    forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown) {
      if (typeof callback !== "function") {
        throw new TypeErrorCtor("Headers.forEach: the callback is not a function");
      }
      for (const [name, value] of this.#sorted()) callback.call(thisArg, value, name, this);
    }
    *entries(): IterableIterator<[string, string]> {
      for (const [name, value] of this.#sorted()) yield [name, value];
    }
    *keys(): IterableIterator<string> {
      for (const [name] of this.#sorted()) yield name;
    }
    *values(): IterableIterator<string> {
      for (const [, value] of this.#sorted()) yield value;
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    get [Symbol.toStringTag]() {
      return "Headers";
    }
    /** FlowState's own: the headers as a record (values of one name combined). */
    toJSON(): Record<string, string> {
      const out: Record<string, string> = {};
      for (const [name, value] of this.#sorted()) {
        out[name] = hasOwn.call(out, name) ? out[name] + ", " + value : value;
      }
      return out;
    }
  }
  return { Headers, IMMUTABLE };
}

/** The `Headers` global; `IMMUTABLE` is the guard the guest's fetch gives response headers. */
export const headersModule: GuestModule = {
  name: "headers",
  globals: ["Headers"],
  factory: headersFactory,
};
