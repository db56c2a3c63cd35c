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
 * `{ deliver(id, json, dataText, clockMs): boolean, setClock(ms), defineGlobals(json), settle(promise),
 * outcome(): string | undefined, variables(namesJson, maxChars): string }`.
 */
export const GUEST_PRELUDE = compact(String.raw`(() => {
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

  const hasOwn = Object.prototype.hasOwnProperty;
  const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  // Host messages are built by hand: JSON.stringify of a primitive string never calls guest
  // code, while JSON.stringify of an object would call a guest Object.prototype.toJSON.
  const quote = (text) => JSONstringify(StringCtor(text));
  const own = (obj, key) => (hasOwn.call(obj, key) ? obj[key] : undefined);

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

  class Response {
    #data;
    #dataText;
    #used = false;
    constructor(payload, url, dataText) {
      this.#data = payload.data;
      this.#dataText = dataText;
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
        if (data === undefined) return promiseResolve("");
        return promiseResolve(typeof data === "string" ? data : this.#dataText);
      } catch (error) { return OrigPromise.reject(error); }
    }
    json() {
      try {
        const data = this.#consume();
        if (typeof data === "string") return promiseResolve(JSONparse(data));
        if (data === undefined) throw new SyntaxErrorCtor("Unexpected end of JSON input");
        return promiseResolve(JSONparse(this.#dataText));
      } catch (error) { return OrigPromise.reject(error); }
    }
    clone() {
      if (this.#used) throw new TypeErrorCtor("Response.clone: the body has already been read");
      const payload = { data: typeof this.#data === "string" ? this.#data : JSONparse(this.#dataText), status: this.status, statusText: this.statusText, url: this.url, headers: this.headers.toJSON() };
      return new Response(payload, this.url, this.#dataText);
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
      let headers = "";
      new Headers(headerSource).forEach((value, name) => {
        headers += (headers ? "," : "") + quote(name) + ":" + quote(value);
      });
      const body = options.body === undefined || options.body === null ? undefined : StringCtor(options.body);
      let message = '{"url":' + quote(url) + ',"method":' + quote(method) + ',"headers":{' + headers + "}";
      if (body !== undefined) message += ',"body":' + quote(body);
      const id = hostRecord(message + "}");
      mapSet.call(pending, id, { resolve, reject, url });
    });
  }

  hide(globalThis, "fetch", fetch);
  hide(globalThis, "Headers", Headers);
  hide(globalThis, "Response", Response);

  const errorJson = (error) => {
    let name = "Error";
    let message;
    let stack = "";
    try {
      if (error instanceof ErrorCtor) {
        name = StringCtor(error.name);
        message = StringCtor(error.message);
        stack = error.stack === undefined ? "" : StringCtor(error.stack);
      } else {
        message = describe(error);
      }
    } catch {
      message = "[unprintable error]";
    }
    return '{"name":' + quote(name) + ',"message":' + quote(message) + ',"stack":' + quote(stack) + "}";
  };

  let outcome;
  let currentStep = -1;
  const baselineGlobals = new Set(getOwnPropertyNames(globalThis));
  const setHas = Set.prototype.has;

  return {
    deliver(id, json, dataText, clockMs) {
      clock = clockMs;
      const waiter = mapGet.call(pending, id);
      if (waiter === undefined) return false;
      mapDelete.call(pending, id);
      const raw = JSONparse(json);
      const payload = {
        success: own(raw, "success"),
        status: own(raw, "status"),
        statusText: own(raw, "statusText"),
        url: own(raw, "url"),
        headers: own(raw, "headers"),
        data: dataText === "" ? undefined : JSONparse(dataText),
      };
      if (payload.success === false && payload.status === undefined) {
        const reason = own(raw, "error");
        waiter.reject(new TypeErrorCtor("fetch failed: " + (reason === undefined ? "unknown error" : reason)));
      } else {
        waiter.resolve(new Response(payload, waiter.url, dataText));
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
            outcome = '{"done":true' + (json === undefined ? "" : ',"json":' + quote(json)) + "}";
          } catch (error) {
            outcome = '{"done":true,"result":true,"error":' + errorJson(error) + "}";
          }
        },
        (error) => {
          if (step !== currentStep) return;
          outcome = '{"done":true,"error":' + errorJson(error) + "}";
        },
      );
    },
    outcome() { return outcome; },
    variables(namesJson, maxChars) {
      // Reads data only: accessors are skipped and toJSON is never called, so computing this
      // view runs no guest code (except Proxy traps) and cannot change what a replay sees.
      const names = JSONparse(namesJson);
      for (const name of getOwnPropertyNames(globalThis)) {
        if (!setHas.call(baselineGlobals, name) && !arrayIncludes.call(names, name)) arrayPush.call(names, name);
      }
      let budget = maxChars;
      const seen = [];
      const walk = (value, depth) => {
        if (budget <= 0) return '"[truncated]"';
        switch (typeof value) {
          case "string": {
            const text = value.length > 200 ? stringSlice.call(value, 0, 200) + "…" : value;
            budget -= text.length + 2;
            return quote(text);
          }
          case "number": budget -= 8; return value === value && value !== Infinity && value !== -Infinity ? StringCtor(value) : "null";
          case "boolean": budget -= 5; return value ? "true" : "false";
          case "bigint": budget -= 8; return quote(StringCtor(value) + "n");
          case "object": {
            if (value === null) { budget -= 4; return "null"; }
            if (depth > 4 || arrayIncludes.call(seen, value)) return '"[…]"';
            arrayPush.call(seen, value);
            let out = "";
            if (isArray(value)) {
              const length = value.length;
              for (let i = 0; i < length && budget > 0; i++) {
                const d = getOwnPropertyDescriptor(value, i);
                out += (i ? "," : "") + (d && hasOwn.call(d, "value") ? walk(d.value, depth + 1) ?? "null" : "null");
              }
              return "[" + out + "]";
            }
            for (const key of objectKeys(value)) {
              if (budget <= 0) break;
              const d = getOwnPropertyDescriptor(value, key);
              if (!d || !hasOwn.call(d, "value")) continue;
              const text = walk(d.value, depth + 1);
              if (text === undefined) continue;
              budget -= key.length + 3;
              out += (out ? "," : "") + quote(key) + ":" + text;
            }
            return "{" + out + "}";
          }
          default: return undefined;
        }
      };
      let out = "";
      for (const name of names) {
        let value;
        const d = getOwnPropertyDescriptor(globalThis, name);
        if (d) {
          if (!hasOwn.call(d, "value")) continue;
          value = d.value;
        } else {
          try { value = indirectEval(name); } catch { continue; }
        }
        const text = walk(value, 0);
        if (text === undefined) continue;
        out += (out ? "," : "") + quote(name) + ":" + text;
        if (budget <= 0) break;
      }
      return "{" + out + "}";
    },
  };
})()`);

/**
 * Drops comment lines and indentation: QuickJS parses about 4 characters per microsecond
 * here, and the prelude is parsed again for every new VM.
 */
function compact(source: string): string {
  return source.split("\n").map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("//")).join("\n");
}
