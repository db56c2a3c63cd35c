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
  const { isArray, StringCtor, TypeErrorCtor, toLowerCase, quote } = core;
  const { arrayPush, arraySplice, stringSlice, hasOwn, getOwnPropertyDescriptor } = core;
  const ownKeys = Reflect.ownKeys;
  const charCodeAt = String.prototype.charCodeAt;
  const iteratorSymbol = Symbol.iterator;
  type HeadersInit = Headers | readonly unknown[] | Record<string, unknown> | null | undefined;
  type Entry = [string, string];
  /** Passed as the constructor's second argument by the guest's own fetch: nobody else has it. */
  const IMMUTABLE = {};
  let sortedOf: (headers: Headers) => Entry[] = () => [];
  /**
   * Passed with a list of `[name, value]` pairs the host already normalised (the headers of
   * a delivered response): the list becomes the immutable headers as is, unvalidated.
   */
  const TRUSTED = {};

  const isToken = core.isToken;
  const isHttpWhitespace = (c: number) => c === 9 || c === 10 || c === 13 || c === 32;

  const normalizeName = (raw: unknown): string => {
    const name = StringCtor(raw);
    if (!isToken(name)) throw new TypeErrorCtor("Invalid header name: " + quote(name));
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
    constructor(init: HeadersInit | undefined = undefined, guard?: unknown) {
      if (guard === TRUSTED) {
        this.#list = init as unknown as Entry[];
        this.#immutable = true;
        return;
      }
      if (init !== undefined) {
        if (init === null || (typeof init !== "object" && typeof init !== "function")) {
          throw new TypeErrorCtor(
            "Failed to construct 'Headers': init must be a sequence of pairs or a record",
          );
        }
        const method = (init as Record<symbol, unknown>)[iteratorSymbol];
        if (method !== undefined && method !== null) {
          if (typeof method !== "function") {
            throw new TypeErrorCtor("Failed to construct 'Headers': init is not iterable");
          }
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
          // A Web IDL record: own keys in order, each enumerable one converted, then read.
          const record = init as Record<PropertyKey, unknown>;
          for (const key of ownKeys(record)) {
            const descriptor = getOwnPropertyDescriptor(record, key);
            if (descriptor === undefined || !descriptor.enumerable) continue;
            if (typeof key === "symbol") {
              throw new TypeErrorCtor("Failed to construct 'Headers': a header name is a symbol");
            }
            const name = normalizeName(key);
            const value = normalizeValue(record[key]);
            try {
              this.append(name, value);
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
    static {
      sortedOf = (headers) => headers.#sorted();
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
    forEach(
      callback: (value: string, name: string, headers: Headers) => void,
      ...optional: unknown[]
    ) {
      const thisArg = optional[0];
      if (typeof callback !== "function") {
        throw new TypeErrorCtor("Headers.forEach: the callback is not a function");
      }
      for (const [name, value] of this.#sorted()) callback.call(thisArg, value, name, this);
    }
    entries(): IterableIterator<[string, string]> {
      return makeIterator(this, "entries");
    }
    keys(): IterableIterator<string> {
      return makeIterator(this, "keys");
    }
    values(): IterableIterator<string> {
      return makeIterator(this, "values");
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
  // The iterators of the Web IDL pair iterator: each step reads the sorted view afresh at
  // its index, so changes made while iterating are seen as the standard says.
  const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]()));
  const targets = new WeakMap<object, [Headers, string, number]>();
  const weakGet = WeakMap.prototype.get;
  const weakSet = WeakMap.prototype.set;
  const HeadersIterator = Object.create(IteratorPrototype, {
    next: {
      value: function next(this: object) {
        const state = weakGet.call(targets, this) as [Headers, string, number] | undefined;
        if (state === undefined) throw new TypeErrorCtor("Illegal invocation of next");
        const pairs = sortedOf(state[0]);
        if (state[2] >= pairs.length) return { value: undefined, done: true };
        const pair = pairs[state[2]++]!;
        const kind = state[1];
        return {
          value: kind === "keys" ? pair[0] : kind === "values" ? pair[1] : [pair[0], pair[1]],
          done: false,
        };
      },
      writable: true,
      configurable: true,
      enumerable: true,
    },
    [Symbol.toStringTag]: { value: "Headers Iterator", configurable: true },
  });
  function makeIterator(headers: Headers, kind: string) {
    const iterator = Object.create(HeadersIterator);
    weakSet.call(targets, iterator, [headers, kind, 0]);
    return iterator;
  }
  core.webIdl(Headers);
  return { Headers, IMMUTABLE, TRUSTED };
}

/**
 * The `Headers` global; `IMMUTABLE` is the guard the guest's fetch gives response headers,
 * `TRUSTED` the one for a list the host normalised.
 */
export const headersModule: GuestModule = {
  name: "headers",
  globals: ["Headers"],
  factory: headersFactory,
};
