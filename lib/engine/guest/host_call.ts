/**
 * Guest source: `ask`, the guest side of the pure host calls (`host_calls.ts`), shared by the
 * APIs that use them. Internal: it defines no global.
 *
 * @module
 */
import type { GuestAsk, GuestCore, GuestExports, GuestModule } from "./guest_types.ts";

function hostCallFactory(core: GuestCore): GuestExports {
  const { JSONstringify, JSONparse, hasOwn, ErrorCtor } = core;
  const call = core.host.call;
  const errorTypes: Record<string, ErrorConstructor> = {
    TypeError,
    RangeError,
    SyntaxError,
  } as Record<string, ErrorConstructor>;
  const ask: GuestAsk = (op, arg, bytes) => {
    let result;
    try {
      result = call(op, JSONstringify(arg), bytes);
    } catch (error) {
      // The bridge gives host errors as plain errors; rebuild the standard class by name.
      const { name, message } = error as Error;
      const Ctor = hasOwn.call(errorTypes, name) ? errorTypes[name]! : ErrorCtor;
      const rebuilt = new Ctor(message);
      if (Ctor === ErrorCtor) rebuilt.name = name;
      throw rebuilt;
    }
    return typeof result === "string" ? JSONparse(result) : result;
  };
  return { ask };
}

/** The internal `hostcall` module. */
export const hostCallModule: GuestModule = {
  name: "hostcall",
  globals: [],
  factory: hostCallFactory,
};
