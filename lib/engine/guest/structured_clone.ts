/**
 * Guest source: `structuredClone`, the HTML structured clone algorithm over what the guest
 * has: primitives, wrapper objects, `Date`, `RegExp`, `ArrayBuffer` and its views, `Map`,
 * `Set`, errors, arrays and plain objects, with shared and cyclic references kept. Anything
 * else (functions, symbols, promises, weak collections, `Blob` and other platform objects)
 * throws a `DataCloneError`. `transfer` moves `ArrayBuffer`s (the originals are detached).
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";

function structuredCloneFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { OrigMap, mapGet, mapSet, mapHas, objectKeys, TypeErrorCtor, StringCtor } = core;
  const DOMException = use("domexception").DOMException as typeof globalThis.DOMException;
  const objectToString = Object.prototype.toString;
  const ArrayBufferCtor = ArrayBuffer;
  const bufferSlice = ArrayBuffer.prototype.slice;
  const bufferTransfer = (ArrayBuffer.prototype as { transfer?: () => ArrayBuffer }).transfer;
  const isView = ArrayBuffer.isView;
  const mapForEach = Map.prototype.forEach;
  const setForEach = Set.prototype.forEach;
  const setAdd = Set.prototype.add;
  const OrigSet = Set;
  const OrigDate = core.OrigDate;
  const dateValue = Date.prototype.valueOf;
  const OrigRegExp = RegExp;
  const OrigError = core.ErrorCtor;
  const errorCtors: Record<string, ErrorConstructor> = {
    Error,
    EvalError,
    RangeError,
    ReferenceError,
    SyntaxError,
    TypeError,
    URIError,
  } as Record<string, ErrorConstructor>;
  const views: Record<string, new (b: ArrayBuffer, o: number, l: number) => ArrayBufferView> = {
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
    DataView,
  } as unknown as Record<string, new (b: ArrayBuffer, o: number, l: number) => ArrayBufferView>;

  const fail = (what: string): never => {
    throw new DOMException(what + " could not be cloned", "DataCloneError");
  };

  function structuredClone(value: unknown, options?: { transfer?: unknown }): unknown {
    if (arguments.length < 1) {
      throw new TypeErrorCtor(
        "Failed to execute 'structuredClone': 1 argument required, but only 0 present",
      );
    }
    const memory = new OrigMap<unknown, unknown>();
    const transfer: ArrayBuffer[] = [];
    if (options !== undefined && options !== null) {
      const list = (options as { transfer?: unknown }).transfer;
      if (list !== undefined) {
        for (const item of list as Iterable<unknown>) {
          if (!(item instanceof ArrayBufferCtor)) fail("A transfer item other than an ArrayBuffer");
          if (mapHas.call(memory, item)) {
            throw new DOMException("An ArrayBuffer is transferred twice", "DataCloneError");
          }
          if (!bufferTransfer) fail("A transferred ArrayBuffer");
          mapSet.call(memory, item, null);
          transfer.push(item as ArrayBuffer);
        }
      }
    }
    for (const buffer of transfer) {
      // Transferring detaches the original; the clone refers to the moved buffer.
      mapSet.call(memory, buffer, bufferTransfer!.call(buffer));
    }

    const clone = (input: unknown): unknown => {
      if (input === null || (typeof input !== "object" && typeof input !== "function")) {
        if (typeof input === "symbol") fail("A symbol");
        return input;
      }
      if (mapHas.call(memory, input)) return mapGet.call(memory, input);
      if (typeof input === "function") fail("A function");
      const tag = objectToString.call(input);
      let out: unknown;
      switch (tag) {
        case "[object Boolean]":
        case "[object Number]":
        case "[object String]":
        case "[object BigInt]":
          out = Object((input as { valueOf(): unknown }).valueOf());
          break;
        case "[object Date]":
          out = new OrigDate(dateValue.call(input as Date));
          break;
        case "[object RegExp]": {
          const re = input as RegExp;
          out = new OrigRegExp(re.source, re.flags);
          break;
        }
        case "[object ArrayBuffer]": {
          const buffer = input as ArrayBuffer;
          out = bufferSlice.call(buffer, 0);
          break;
        }
        case "[object Map]": {
          const map = new OrigMap();
          mapSet.call(memory, input, map);
          const entries: [unknown, unknown][] = [];
          mapForEach.call(input as Map<unknown, unknown>, (v, k) => entries.push([k, v]));
          for (const [k, v] of entries) mapSet.call(map, clone(k), clone(v));
          return map;
        }
        case "[object Set]": {
          const set = new OrigSet();
          mapSet.call(memory, input, set);
          const items: unknown[] = [];
          setForEach.call(input as Set<unknown>, (v) => items.push(v));
          for (const v of items) setAdd.call(set, clone(v));
          return set;
        }
        case "[object Error]": {
          const error = input as Error;
          const name = StringCtor(error.name);
          if (input instanceof DOMException) {
            const copy = new DOMException(StringCtor(error.message), name);
            mapSet.call(memory, input, copy);
            return copy;
          }
          const Ctor = core.hasOwn.call(errorCtors, name) ? errorCtors[name]! : OrigError;
          const copy = new Ctor(StringCtor(error.message));
          mapSet.call(memory, input, copy);
          const stack = core.getOwnPropertyDescriptor(error, "stack");
          if (stack && "value" in stack) core.hide(copy, "stack", StringCtor(stack.value));
          if (core.hasOwn.call(error, "cause")) core.hide(copy, "cause", clone(error.cause));
          return copy;
        }
        case "[object Array]": {
          const array = new Array((input as unknown[]).length);
          mapSet.call(memory, input, array);
          for (const key of objectKeys(input)) {
            (array as unknown as Record<string, unknown>)[key] = clone(
              (input as Record<string, unknown>)[key],
            );
          }
          return array;
        }
        case "[object Object]": {
          if (isView(input)) break;
          const object: Record<string, unknown> = {};
          mapSet.call(memory, input, object);
          for (const key of objectKeys(input)) {
            object[key] = clone((input as Record<string, unknown>)[key]);
          }
          return object;
        }
      }
      if (out !== undefined) {
        mapSet.call(memory, input, out);
        return out;
      }
      if (isView(input)) {
        const view = input as ArrayBufferView & { length?: number };
        const name = tag.slice(8, -1);
        const Ctor = core.hasOwn.call(views, name) ? views[name]! : undefined;
        if (!Ctor) return fail("A " + name);
        const buffer = clone(view.buffer) as ArrayBuffer;
        const length = name === "DataView" ? view.byteLength : view.length!;
        const copy = new Ctor(buffer, view.byteOffset, length);
        mapSet.call(memory, input, copy);
        return copy;
      }
      return fail("A " + tag.slice(8, -1));
    };
    return clone(value);
  }
  return { structuredClone };
}

/** The `structuredClone` global. */
export const structuredCloneModule: GuestModule = {
  name: "structuredclone",
  globals: ["structuredClone"],
  factory: structuredCloneFactory,
};
