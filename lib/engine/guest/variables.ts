/**
 * Guest source: the human-readable `variables` view of a paused task, a bounded JSON walk of
 * the globals the script declared. It reads data only: accessors and proxies (whose traps
 * are guest code) are skipped and `toJSON` is never called, so computing it runs no guest
 * code and cannot change what a replay sees. The host refuses every host call (`fetch`,
 * `console`) while it runs, as a second wall.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule } from "./guest_types.ts";

/** Exports `view(namesJson, maxChars)`: JSON of the named and the new globals. */
function variablesFactory(core: GuestCore): GuestExports {
  const { JSONparse, getOwnPropertyNames, setHas, arrayIncludes, arrayPush, quote } = core;
  const { stringSlice, StringCtor, isArray, getOwnPropertyDescriptor, hasOwn, objectKeys } = core;
  const { indirectEval, isProxy } = core;
  const baselineGlobals = new Set(core.baselineGlobals);

  const view = (namesJson: string, maxChars: number): string => {
    const names = JSONparse(namesJson) as string[];
    for (const name of getOwnPropertyNames(globalThis)) {
      if (!setHas.call(baselineGlobals, name) && !arrayIncludes.call(names, name)) {
        arrayPush.call(names, name);
      }
    }
    let budget = maxChars;
    const seen: unknown[] = [];
    const walk = (value: unknown, depth: number): string | undefined => {
      if (budget <= 0) return '"[truncated]"';
      switch (typeof value) {
        case "string": {
          const text = value.length > 200 ? stringSlice.call(value, 0, 200) + "…" : value;
          budget -= text.length + 2;
          return quote(text);
        }
        case "number":
          budget -= 8;
          return value === value && value !== Infinity && value !== -Infinity
            ? StringCtor(value)
            : "null";
        case "boolean":
          budget -= 5;
          return value ? "true" : "false";
        case "bigint":
          budget -= 8;
          return quote(StringCtor(value) + "n");
        case "object": {
          if (value === null) {
            budget -= 4;
            return "null";
          }
          if (isProxy(value)) {
            budget -= 9;
            return '"[Proxy]"';
          }
          if (depth > 4 || arrayIncludes.call(seen, value)) return '"[…]"';
          arrayPush.call(seen, value);
          let out = "";
          if (isArray(value)) {
            const length = value.length;
            for (let i = 0; i < length && budget > 0; i++) {
              const d = getOwnPropertyDescriptor(value, i);
              out += (i ? "," : "") +
                (d && hasOwn.call(d, "value") ? walk(d.value, depth + 1) ?? "null" : "null");
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
        default:
          return undefined;
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
        try {
          value = indirectEval(name);
        } catch {
          continue;
        }
      }
      const text = walk(value, 0);
      if (text === undefined) continue;
      out += (out ? "," : "") + quote(name) + ":" + text;
      if (budget <= 0) break;
    }
    return "{" + out + "}";
  };
  return { view };
}

/**
 * The view as a guest module without globals, loaded the first time the host asks for the
 * view: VM creation and replays do not parse it.
 */
export const variablesModule: GuestModule = {
  name: "variables",
  globals: [],
  factory: variablesFactory,
};
