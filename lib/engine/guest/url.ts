/**
 * Guest source: `URL` and `URLSearchParams`. Parsing, the setters and form encoding are the
 * host's WHATWG implementation (pure host calls), so a URL parses here exactly as it does in
 * Deno; the guest keeps the components and the live name-value list.
 *
 * @module
 */
import type { GuestAsk, GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";

function urlFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { JSONstringify, StringCtor, TypeErrorCtor, getOwnPropertyDescriptor } = core;
  const ownKeys = Reflect.ownKeys;
  // ES2024: typed by hand so the engine also compiles against ES2023 libraries.
  const toWellFormed = (String.prototype as unknown as { toWellFormed(this: string): string })
    .toWellFormed;
  const arrayPush = core.arrayPush;
  const arraySplice = Array.prototype.splice;
  const arraySort = Array.prototype.sort;
  const iteratorSymbol = Symbol.iterator;
  const ask = use("hostcall").ask as GuestAsk;
  /** A USVString: lone surrogates become U+FFFD (throws a TypeError for a symbol). */
  const usv = (value: unknown): string => toWellFormed.call(StringCtor(value));
  const need = (count: number, wanted: number, what: string) => {
    if (count < wanted) {
      throw new TypeErrorCtor(
        what + ": " + wanted + " argument" + (wanted > 1 ? "s" : "") + " required, but only " +
          count + " present",
      );
    }
  };

  type Parts = [
    href: string,
    origin: string,
    protocol: string,
    username: string,
    password: string,
    host: string,
    hostname: string,
    port: string,
    pathname: string,
    search: string,
    hash: string,
  ];
  type Pair = [string, string];

  let setList: (params: URLSearchParams, list: Pair[]) => void;
  let newLinked: (url: URL) => URLSearchParams;
  let setSearch: (url: URL, search: string) => void;

  const parseForm = (text: string): Pair[] => ask("form.parse", text) as Pair[];
  const serialize = (list: Pair[]): string => ask("form.serialize", list) as string;

  class URL {
    #parts: Parts;
    #query: URLSearchParams | null = null;
    static {
      setSearch = (url, search) => url.#set("search", search);
    }
    // `URL.length` is 1, as Web IDL counts the required arguments.
    constructor(url: unknown, ...optional: unknown[]) {
      need(arguments.length, 1, "Failed to construct 'URL'");
      const base = optional[0];
      const input = usv(url);
      const parts = ask("url.parse", base === undefined ? [input] : [input, usv(base)]);
      if (parts === null) {
        throw new TypeErrorCtor(
          "Invalid URL: " + JSONstringify(input) +
            (base === undefined ? "" : " with base " + JSONstringify(usv(base))),
        );
      }
      this.#parts = parts as Parts;
    }
    static parse(url: unknown, ...optional: unknown[]): URL | null {
      need(arguments.length, 1, "Failed to execute 'parse' on 'URL'");
      try {
        return new URL(url, optional[0]);
      } catch {
        return null;
      }
    }
    static canParse(url: unknown, ...optional: unknown[]): boolean {
      need(arguments.length, 1, "Failed to execute 'canParse' on 'URL'");
      const input = usv(url);
      const base = optional[0];
      return ask("url.parse", base === undefined ? [input] : [input, usv(base)]) !== null;
    }
    #set(part: string, value: unknown): void {
      this.#parts = ask("url.set", [this.#parts[0], part, usv(value)]) as Parts;
      if (this.#query && (part === "href" || part === "search")) {
        const search = this.#parts[9];
        setList(this.#query, search === "" ? [] : parseForm(search.slice(1)));
      }
    }
    get href(): string {
      return this.#parts[0];
    }
    set href(value: string) {
      this.#set("href", value);
    }
    get origin(): string {
      return this.#parts[1];
    }
    get protocol(): string {
      return this.#parts[2];
    }
    set protocol(value: string) {
      this.#set("protocol", value);
    }
    get username(): string {
      return this.#parts[3];
    }
    set username(value: string) {
      this.#set("username", value);
    }
    get password(): string {
      return this.#parts[4];
    }
    set password(value: string) {
      this.#set("password", value);
    }
    get host(): string {
      return this.#parts[5];
    }
    set host(value: string) {
      this.#set("host", value);
    }
    get hostname(): string {
      return this.#parts[6];
    }
    set hostname(value: string) {
      this.#set("hostname", value);
    }
    get port(): string {
      return this.#parts[7];
    }
    set port(value: string) {
      this.#set("port", value);
    }
    get pathname(): string {
      return this.#parts[8];
    }
    set pathname(value: string) {
      this.#set("pathname", value);
    }
    get search(): string {
      return this.#parts[9];
    }
    set search(value: string) {
      this.#set("search", value);
    }
    get hash(): string {
      return this.#parts[10];
    }
    set hash(value: string) {
      this.#set("hash", value);
    }
    get searchParams(): URLSearchParams {
      if (this.#query === null) {
        this.#query = newLinked(this);
        const search = this.#parts[9];
        setList(this.#query, search === "" ? [] : parseForm(search.slice(1)));
      }
      return this.#query;
    }
    toString(): string {
      return this.#parts[0];
    }
    toJSON(): string {
      return this.#parts[0];
    }
    get [Symbol.toStringTag](): string {
      return "URL";
    }
  }

  class URLSearchParams {
    #list: Pair[] = [];
    #url: URL | null = null;
    static {
      setList = (params, list) => {
        params.#list = list;
      };
      newLinked = (url) => {
        const params = new URLSearchParams();
        params.#url = url;
        return params;
      };
    }
    constructor(init: unknown = "") {
      if ((typeof init === "object" && init !== null) || typeof init === "function") {
        const source = init as Record<PropertyKey, unknown>;
        const method = source[iteratorSymbol];
        if (method !== undefined && method !== null) {
          if (typeof method !== "function") {
            throw new TypeErrorCtor("URLSearchParams: init[Symbol.iterator] is not a function");
          }
          for (const pair of source as unknown as Iterable<unknown>) {
            if ((typeof pair !== "object" || pair === null) && typeof pair !== "function") {
              throw new TypeErrorCtor("URLSearchParams: each pair must be a sequence");
            }
            const items: unknown[] = [];
            for (const item of pair as Iterable<unknown>) arrayPush.call(items, item);
            if (items.length !== 2) {
              throw new TypeErrorCtor("URLSearchParams: each pair must have exactly 2 items");
            }
            arrayPush.call(this.#list, [usv(items[0]), usv(items[1])]);
          }
        } else {
          for (const key of ownKeys(source)) {
            const descriptor = getOwnPropertyDescriptor(source, key);
            if (descriptor && descriptor.enumerable) {
              arrayPush.call(this.#list, [usv(key), usv(source[key])]);
            }
          }
        }
      } else {
        let text = usv(init);
        if (text[0] === "?") text = text.slice(1);
        this.#list = text === "" ? [] : parseForm(text);
      }
    }
    #update(): void {
      if (this.#url) setSearch(this.#url, this.#list.length ? serialize(this.#list) : "");
    }
    get size(): number {
      return this.#list.length;
    }
    append(name: unknown, value: unknown): void {
      need(arguments.length, 2, "Failed to execute 'append' on 'URLSearchParams'");
      arrayPush.call(this.#list, [usv(name), usv(value)]);
      this.#update();
    }
    delete(name: unknown, ...optional: unknown[]): void {
      need(arguments.length, 1, "Failed to execute 'delete' on 'URLSearchParams'");
      const value = optional[0];
      const key = usv(name);
      const only = value === undefined ? undefined : usv(value);
      const list = this.#list;
      for (let i = 0; i < list.length;) {
        if (list[i]![0] === key && (only === undefined || list[i]![1] === only)) {
          arraySplice.call(list, i, 1);
        } else i++;
      }
      this.#update();
    }
    get(name: unknown): string | null {
      need(arguments.length, 1, "Failed to execute 'get' on 'URLSearchParams'");
      const key = usv(name);
      for (const pair of this.#list) if (pair[0] === key) return pair[1];
      return null;
    }
    getAll(name: unknown): string[] {
      need(arguments.length, 1, "Failed to execute 'getAll' on 'URLSearchParams'");
      const key = usv(name);
      const out: string[] = [];
      for (const pair of this.#list) if (pair[0] === key) arrayPush.call(out, pair[1]);
      return out;
    }
    has(name: unknown, ...optional: unknown[]): boolean {
      need(arguments.length, 1, "Failed to execute 'has' on 'URLSearchParams'");
      const value = optional[0];
      const key = usv(name);
      const only = value === undefined ? undefined : usv(value);
      for (const pair of this.#list) {
        if (pair[0] === key && (only === undefined || pair[1] === only)) return true;
      }
      return false;
    }
    set(name: unknown, value: unknown): void {
      need(arguments.length, 2, "Failed to execute 'set' on 'URLSearchParams'");
      const key = usv(name);
      const text = usv(value);
      const list = this.#list;
      let found = false;
      for (let i = 0; i < list.length;) {
        if (list[i]![0] !== key) i++;
        else if (found) arraySplice.call(list, i, 1);
        else {
          list[i] = [key, text];
          found = true;
          i++;
        }
      }
      if (!found) arrayPush.call(list, [key, text]);
      this.#update();
    }
    sort(): void {
      arraySort.call(this.#list, (a: Pair, b: Pair) => {
        const x = a[0], y = b[0];
        return x < y ? -1 : x > y ? 1 : 0;
      });
      this.#update();
    }
    forEach(
      callback: (value: string, name: string, params: URLSearchParams) => void,
      ...optional: unknown[]
    ): void {
      need(arguments.length, 1, "Failed to execute 'forEach' on 'URLSearchParams'");
      const thisArg = optional[0];
      if (typeof callback !== "function") {
        throw new TypeErrorCtor("URLSearchParams.forEach: the callback is not a function");
      }
      for (let i = 0; i < this.#list.length; i++) {
        const pair = this.#list[i]!;
        callback.call(thisArg, pair[1], pair[0], this);
      }
    }
    *entries(): IterableIterator<[string, string]> {
      for (let i = 0; i < this.#list.length; i++) yield [this.#list[i]![0], this.#list[i]![1]];
    }
    *keys(): IterableIterator<string> {
      for (let i = 0; i < this.#list.length; i++) yield this.#list[i]![0];
    }
    *values(): IterableIterator<string> {
      for (let i = 0; i < this.#list.length; i++) yield this.#list[i]![1];
    }
    [Symbol.iterator](): IterableIterator<[string, string]> {
      return this.entries();
    }
    toString(): string {
      return serialize(this.#list);
    }
    get [Symbol.toStringTag](): string {
      return "URLSearchParams";
    }
  }
  for (const ctor of [URL, URLSearchParams]) core.webIdl(ctor);
  return { URL, URLSearchParams };
}

/** The `URL` and `URLSearchParams` globals. */
export const urlModule: GuestModule = {
  name: "url",
  globals: ["URL", "URLSearchParams"],
  factory: urlFactory,
};
