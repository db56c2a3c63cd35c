/**
 * Guest source: the core every other guest source receives. Captures the built-ins before
 * user code can replace them and defines the small helpers the guest APIs share. Runs first,
 * in every VM.
 *
 * @module
 */
import type { GuestCore, GuestHost } from "./guest_types.ts";

/** Builds the {@link GuestCore} (its `use` and `loaded` are filled by the loader). */
export function guestCore(host: GuestHost): GuestCore {
  const JSONstringify = JSON.stringify;
  const StringCtor = String;
  const ErrorCtor = Error;
  const defineProperty = Object.defineProperty;
  const hasOwn = Object.prototype.hasOwnProperty;
  // Host messages are built by hand: JSON.stringify of a primitive string never calls guest
  // code, while JSON.stringify of an object would call a guest Object.prototype.toJSON.
  const quote = (text: unknown) => JSONstringify(StringCtor(text));
  const charCodeAt = String.prototype.charCodeAt;
  /** Whether `text` is an HTTP token (RFC 9110): a method or a header name. */
  const isToken = (text: string) => {
    if (text.length === 0) return false;
    for (let i = 0; i < text.length; i++) {
      const c = charCodeAt.call(text, i);
      const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) ||
        c === 33 || (c >= 35 && c <= 39) || c === 42 || c === 43 || c === 45 || c === 46 ||
        c === 94 || c === 95 || c === 96 || c === 124 || c === 126;
      if (!ok) return false;
    }
    return true;
  };
  const own = (obj: object, key: string) =>
    hasOwn.call(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
  const hide = (obj: object, name: PropertyKey, value: unknown) =>
    defineProperty(obj, name, { value, writable: true, configurable: true, enumerable: false });
  // Web IDL makes the operations and attributes of an interface enumerable, on its
  // prototype and (static ones) on the interface object; a class's are not.
  const getOwnPropertyNames = Object.getOwnPropertyNames;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const enumerate = (target: object, skip: readonly string[]) => {
    const names = getOwnPropertyNames(target);
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      if (skip.indexOf(name) !== -1) continue;
      const descriptor = getOwnPropertyDescriptor(target, name)!;
      if (!descriptor.configurable || descriptor.enumerable) continue;
      descriptor.enumerable = true;
      defineProperty(target, name, descriptor);
    }
  };
  const iterator = Symbol.iterator;
  const webIdl = (ctor: abstract new (...args: never[]) => unknown) => {
    const proto = ctor.prototype as Record<PropertyKey, unknown>;
    enumerate(proto, ["constructor"]);
    enumerate(ctor, ["length", "name", "prototype"]);
    // A pair iterable's @@iterator is its `entries` function itself (the class's own
    // @@iterator, which says to TypeScript that it is iterable, is replaced by it).
    if (hasOwn.call(proto, "entries") && hasOwn.call(proto, iterator)) {
      defineProperty(proto, iterator, {
        value: proto.entries,
        writable: true,
        configurable: true,
        enumerable: false,
      });
    }
  };
  const describe = (value: unknown): string => {
    if (typeof value === "string") return value;
    if (value instanceof ErrorCtor) {
      return value.stack
        ? value.name + ": " + value.message + "\n" + value.stack
        : value.name + ": " + value.message;
    }
    if (typeof value === "function") return "[Function " + (value.name || "anonymous") + "]";
    if (typeof value === "bigint") return StringCtor(value) + "n";
    if (typeof value === "symbol" || value === undefined) return StringCtor(value);
    try {
      const text = JSONstringify(value);
      return text === undefined ? StringCtor(value) : text;
    } catch {
      try {
        return StringCtor(value);
      } catch {
        return "[unprintable]";
      }
    }
  };
  const promiseReject = Promise.reject.bind(Promise);
  // Every Proxy the guest creates is remembered, so that inspecting guest values (the
  // variables view) can skip them: reading a proxy runs its traps, which are guest code.
  const OrigProxy = Proxy;
  const proxies = new WeakSet<object>();
  const weakAdd = WeakSet.prototype.add;
  const weakHas = WeakSet.prototype.has;
  const GuestProxy = function Proxy(this: unknown, target: object, handler: ProxyHandler<object>) {
    if (new.target === undefined) throw new TypeError("Constructor Proxy requires 'new'");
    const proxy = new OrigProxy(target, handler);
    weakAdd.call(proxies, proxy);
    return proxy;
  } as unknown as ProxyConstructor;
  defineProperty(GuestProxy, "name", { value: "Proxy", configurable: true });
  const revocable = OrigProxy.revocable;
  hide(GuestProxy, "revocable", function revocable_(target: object, handler: ProxyHandler<object>) {
    const pair = revocable(target, handler);
    weakAdd.call(proxies, pair.proxy);
    return pair;
  });
  defineProperty(globalThis, "Proxy", {
    value: GuestProxy,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  const isProxy = (value: unknown): boolean =>
    (typeof value === "object" || typeof value === "function") && value !== null &&
    weakHas.call(proxies, value);
  const JSONparse = JSON.parse;
  return {
    isProxy,
    host,
    baselineGlobals: [],
    taskId: "",
    reseed: () => {},
    clock: 0,
    origin: 0,
    clockReads: 0,
    use: () => {
      throw new ErrorCtor("The guest loader is not installed");
    },
    loaded: () => false,
    taskGlobals: {},
    JSONstringify,
    JSONparse,
    OrigPromise: Promise,
    promiseThen: Promise.prototype.then,
    promiseResolve: Promise.resolve.bind(Promise) as GuestCore["promiseResolve"],
    promiseReject,
    OrigDate: Date,
    OrigMap: Map,
    mapGet: Map.prototype.get,
    mapSet: Map.prototype.set,
    mapHas: Map.prototype.has,
    mapDelete: Map.prototype.delete,
    setHas: Set.prototype.has,
    defineProperty,
    objectKeys: Object.keys,
    getOwnPropertyNames: Object.getOwnPropertyNames,
    getOwnPropertyDescriptor: Object.getOwnPropertyDescriptor,
    hasOwn,
    isArray: Array.isArray,
    arrayIncludes: Array.prototype.includes,
    arrayPush: Array.prototype.push,
    arrayShift: Array.prototype.shift,
    arraySplice: Array.prototype.splice,
    arrayIndexOf: Array.prototype.indexOf,
    reflectApply: Reflect.apply,
    StringCtor,
    ErrorCtor,
    TypeErrorCtor: TypeError,
    SyntaxErrorCtor: SyntaxError,
    RangeErrorCtor: RangeError,
    mathImul: Math.imul,
    stringSlice: String.prototype.slice,
    toLowerCase: String.prototype.toLowerCase,
    toUpperCase: String.prototype.toUpperCase,
    indirectEval: eval,
    quote,
    isToken,
    own,
    hide,
    webIdl,
    describe,
  };
}
