/**
 * The guest world: JavaScript evaluated in every QuickJS context before the user's code.
 *
 * It defines `fetch`, `Headers`, `Response`, `console`, and makes `Math.random` and `Date`
 * deterministic. It talks to the host through two functions it removes from the global
 * object before user code runs, and returns a controller object that only the host holds.
 * Every built-in it relies on is captured first, so user code that tampers with
 * `JSON`, `Promise` or `Object.prototype` cannot change how the host is answered.
 *
 * @module
 */

/** Global name under which the host passes its functions to the prelude (deleted at once). */
export const HOST_BRIDGE_GLOBAL = "__flowstateHost";

/**
 * Source of the prelude. Evaluated as a script; its value is the controller:
 * `{ deliver(id, json): boolean, setClock(ms), defineGlobals(json), settle(promise),
 * outcome(): string | undefined, variables(namesJson, maxChars): string }`.
 */
export const GUEST_PRELUDE = String.raw`(() => {
  "use strict";
  const host = globalThis.${HOST_BRIDGE_GLOBAL};
  delete globalThis.${HOST_BRIDGE_GLOBAL};
  const hostRecord = host.record;
  const hostLog = host.log;
  let seed = host.seed >>> 0;

  const JSONstringify = JSON.stringify;
  const JSONparse = JSON.parse;
  const OrigPromise = Promise;
  const promiseThen = Promise.prototype.then;
  const promiseResolve = Promise.resolve.bind(Promise);
  const OrigDate = Date;
  const OrigMap = Map;
  const mapGet = Map.prototype.get;
  const mapSet = Map.prototype.set;
  const mapHas = Map.prototype.has;
  const mapDelete = Map.prototype.delete;
  const defineProperty = Object.defineProperty;
  const objectKeys = Object.keys;
  const isArray = Array.isArray;
  const StringCtor = String;
  const TypeErrorCtor = TypeError;
  const ErrorCtor = Error;
  const SyntaxErrorCtor = SyntaxError;
  const mathImul = Math.imul;
  const stringSlice = String.prototype.slice;
  const toLowerCase = String.prototype.toLowerCase;
  const toUpperCase = String.prototype.toUpperCase;
  const indirectEval = eval;
  const getOwnPropertyNames = Object.getOwnPropertyNames;
  const arrayIncludes = Array.prototype.includes;
  const arrayPush = Array.prototype.push;

  const hide = (obj, name, value) =>
    defineProperty(obj, name, { value, writable: true, configurable: true, enumerable: false });

  // Deterministic Math.random (mulberry32): same seed, same sequence, in every replay.
  hide(Math, "random", function random() {
    seed = (seed + 0x6D2B79F5) | 0;
    let t = mathImul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + mathImul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  });

  // Deterministic clock: time stands still within a run segment.
  let clock = 0;
  function FlowDate(...args) {
    if (!new.target) return new OrigDate(clock).toString();
    return args.length === 0 ? new OrigDate(clock) : new OrigDate(...args);
  }
  FlowDate.prototype = OrigDate.prototype;
  hide(FlowDate, "now", function now() { return clock; });
  hide(FlowDate, "parse", OrigDate.parse);
  hide(FlowDate, "UTC", OrigDate.UTC);
  hide(OrigDate.prototype, "constructor", FlowDate);
  hide(globalThis, "Date", FlowDate);

  // console: captured by the host with level and time.
  const describe = (value) => {
    if (typeof value === "string") return value;
    if (value instanceof ErrorCtor) {
      return value.stack ? value.name + ": " + value.message + "\n" + value.stack : value.name + ": " + value.message;
    }
    if (typeof value === "function") return "[Function " + (value.name || "anonymous") + "]";
    if (typeof value === "bigint") return StringCtor(value) + "n";
    if (typeof value === "symbol" || value === undefined) return StringCtor(value);
    try {
      const text = JSONstringify(value);
      return text === undefined ? StringCtor(value) : text;
    } catch {
      try { return StringCtor(value); } catch { return "[unprintable]"; }
    }
  };
  const consoleObject = {};
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    hide(consoleObject, level, function (...args) {
      let line = "";
      for (let i = 0; i < args.length; i++) line += (i ? " " : "") + describe(args[i]);
      hostLog(level, line);
    });
  }
  hide(globalThis, "console", consoleObject);

  // Headers: case-insensitive, insertion-ordered.
  class Headers {
    #map = new OrigMap();
    constructor(init) {
      if (init === undefined || init === null) return;
      if (init instanceof Headers) {
        init.forEach((value, name) => this.append(name, value));
      } else if (isArray(init)) {
        for (const pair of init) {
          if (!isArray(pair) || pair.length !== 2) throw new TypeErrorCtor("Headers: each header must be a [name, value] pair");
          this.append(pair[0], pair[1]);
        }
      } else if (typeof init === "object") {
        for (const name of objectKeys(init)) this.append(name, init[name]);
      } else {
        throw new TypeErrorCtor("Headers: init must be an object, an array of pairs or a Headers");
      }
    }
    append(name, value) {
      const key = toLowerCase.call(StringCtor(name));
      const text = StringCtor(value);
      const old = mapGet.call(this.#map, key);
      mapSet.call(this.#map, key, old === undefined ? text : old + ", " + text);
    }
    set(name, value) { mapSet.call(this.#map, toLowerCase.call(StringCtor(name)), StringCtor(value)); }
    get(name) {
      const value = mapGet.call(this.#map, toLowerCase.call(StringCtor(name)));
      return value === undefined ? null : value;
    }
    has(name) { return mapHas.call(this.#map, toLowerCase.call(StringCtor(name))); }
    delete(name) { mapDelete.call(this.#map, toLowerCase.call(StringCtor(name))); }
    forEach(callback, thisArg) { for (const [name, value] of this.#map) callback.call(thisArg, value, name, this); }
    *entries() { yield* this.#map; }
    *keys() { for (const [name] of this.#map) yield name; }
    *values() { for (const [, value] of this.#map) yield value; }
    [Symbol.iterator]() { return this.entries(); }
    toJSON() { const out = {}; for (const [name, value] of this.#map) out[name] = value; return out; }
  }

  const cloneJson = (value) => (value === undefined ? undefined : JSONparse(JSONstringify(value)));

  class Response {
    #data;
    #used = false;
    constructor(payload, url) {
      this.#data = payload.data;
      hide(this, "status", payload.status === undefined ? 0 : payload.status);
      hide(this, "statusText", payload.statusText === undefined ? "" : payload.statusText);
      hide(this, "ok", this.status >= 200 && this.status <= 299);
      hide(this, "url", payload.url === undefined ? url : payload.url);
      hide(this, "headers", new Headers(payload.headers || {}));
      hide(this, "redirected", payload.url !== undefined && payload.url !== url);
      hide(this, "type", "basic");
    }
    get bodyUsed() { return this.#used; }
    #consume() {
      if (this.#used) throw new TypeErrorCtor("Body is unusable: the body has already been read");
      this.#used = true;
      return this.#data;
    }
    text() {
      try {
        const data = this.#consume();
        if (data === undefined || data === null) return promiseResolve(data === null ? "null" : "");
        return promiseResolve(typeof data === "string" ? data : JSONstringify(data));
      } catch (error) { return OrigPromise.reject(error); }
    }
    json() {
      try {
        const data = this.#consume();
        if (typeof data === "string") return promiseResolve(JSONparse(data));
        if (data === undefined) throw new SyntaxErrorCtor("Unexpected end of JSON input");
        return promiseResolve(cloneJson(data));
      } catch (error) { return OrigPromise.reject(error); }
    }
    clone() {
      if (this.#used) throw new TypeErrorCtor("Response.clone: the body has already been read");
      const copy = new Response({ data: this.#data, status: this.status, statusText: this.statusText, url: this.url, headers: this.headers.toJSON() }, this.url);
      return copy;
    }
  }

  const pending = new OrigMap();

  function fetch(input, init) {
    return new OrigPromise((resolve, reject) => {
      let url;
      if (typeof input === "string") url = input;
      else if (input !== null && typeof input === "object" && typeof input.url === "string") url = input.url;
      else url = StringCtor(input);
      const options = init === undefined || init === null ? {} : init;
      let method = options.method;
      if (method === undefined && input !== null && typeof input === "object" && typeof input.method === "string") method = input.method;
      method = method === undefined ? "GET" : toUpperCase.call(StringCtor(method));
      let headerSource = options.headers;
      if (headerSource === undefined && input !== null && typeof input === "object" && input.headers !== undefined) headerSource = input.headers;
      const headers = new Headers(headerSource).toJSON();
      const body = options.body === undefined || options.body === null ? undefined : StringCtor(options.body);
      const request = { url, method, headers };
      if (body !== undefined) request.body = body;
      const id = hostRecord(JSONstringify(request));
      mapSet.call(pending, id, { resolve, reject, url });
    });
  }

  hide(globalThis, "fetch", fetch);
  hide(globalThis, "Headers", Headers);
  hide(globalThis, "Response", Response);

  const errorInfo = (error) => {
    try {
      if (error instanceof ErrorCtor) {
        return { name: StringCtor(error.name), message: StringCtor(error.message), stack: error.stack === undefined ? "" : StringCtor(error.stack) };
      }
      return { name: "Error", message: describe(error), stack: "" };
    } catch {
      return { name: "Error", message: "[unprintable error]", stack: "" };
    }
  };

  let outcome;
  let currentStep = -1;
  const baselineGlobals = new Set(getOwnPropertyNames(globalThis));
  const setHas = Set.prototype.has;

  return {
    deliver(id, json) {
      const waiter = mapGet.call(pending, id);
      if (waiter === undefined) return false;
      mapDelete.call(pending, id);
      const payload = JSONparse(json);
      if (payload.success === false && payload.status === undefined) {
        waiter.reject(new TypeErrorCtor("fetch failed: " + (payload.error === undefined ? "unknown error" : payload.error)));
      } else {
        waiter.resolve(new Response(payload, waiter.url));
      }
      return true;
    },
    setClock(ms) { clock = ms; },
    defineGlobals(json) {
      const values = JSONparse(json);
      for (const name of objectKeys(values)) hide(globalThis, name, values[name]);
    },
    settle(promise) {
      const step = ++currentStep;
      outcome = undefined;
      promiseThen.call(
        promiseThen.call(promise, (record) => record.value),
        (value) => {
          if (step !== currentStep) return;
          try {
            const json = JSONstringify(value);
            outcome = JSONstringify({ done: true, json });
          } catch (error) {
            outcome = JSONstringify({ done: true, error: errorInfo(error), result: true });
          }
        },
        (error) => {
          if (step !== currentStep) return;
          outcome = JSONstringify({ done: true, error: errorInfo(error) });
        },
      );
    },
    outcome() { return outcome; },
    variables(namesJson, maxChars) {
      const names = JSONparse(namesJson);
      for (const name of getOwnPropertyNames(globalThis)) {
        if (!setHas.call(baselineGlobals, name) && !arrayIncludes.call(names, name)) arrayPush.call(names, name);
      }
      const out = {};
      let used = 2;
      for (const name of names) {
        let value;
        try { value = indirectEval(name); } catch { continue; }
        if (typeof value === "function" || value === undefined) continue;
        let json;
        try { json = JSONstringify(value); } catch { json = JSONstringify("[unserializable]"); }
        if (json === undefined) continue;
        if (used + json.length + name.length > maxChars) { out[name] = "[truncated]"; used += name.length + 16; continue; }
        used += json.length + name.length + 4;
        out[name] = JSONparse(json);
      }
      return JSONstringify(out);
    },
  };
})()`;
