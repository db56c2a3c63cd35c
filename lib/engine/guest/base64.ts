/**
 * Guest source: `atob` and `btoa`, the host's forgiving-base64 (pure host calls).
 *
 * @module
 */
import type { GuestAsk, GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";

function base64Factory(core: GuestCore, use: GuestUse): GuestExports {
  const { StringCtor, TypeErrorCtor } = core;
  const ask = use("hostcall").ask as GuestAsk;
  const DOMException = use("domexception").DOMException as typeof globalThis.DOMException;
  const run = (op: string, name: string, args: IArguments): string => {
    if (args.length < 1) {
      throw new TypeErrorCtor(
        "Failed to execute '" + name + "': 1 argument required, but only 0 present",
      );
    }
    try {
      return ask(op, StringCtor(args[0])) as string;
    } catch (error) {
      throw new DOMException((error as Error).message, "InvalidCharacterError");
    }
  };
  return {
    atob: function atob(_data: unknown): string {
      return run("base64.atob", "atob", arguments);
    },
    btoa: function btoa(_data: unknown): string {
      return run("base64.btoa", "btoa", arguments);
    },
  };
}

/** The `atob` and `btoa` globals. */
export const base64Module: GuestModule = {
  name: "base64",
  globals: ["atob", "btoa"],
  factory: base64Factory,
};
