/**
 * Guest source: `navigator` (`userAgent`, `language`, `languages`, `hardwareConcurrency`),
 * fixed values: a task runs the same wherever it is resumed.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule } from "./guest_types.ts";

function navigatorFactory(core: GuestCore): GuestExports {
  const { TypeErrorCtor } = core;
  const freeze = Object.freeze;
  let allowed = true;
  class Navigator {
    constructor() {
      if (!allowed) throw new TypeErrorCtor("Illegal constructor");
    }
    get userAgent(): string {
      return "FlowState (QuickJS)";
    }
    get language(): string {
      return "en-US";
    }
    get languages(): readonly string[] {
      return freeze(["en-US"]);
    }
    get hardwareConcurrency(): number {
      return 1;
    }
    get [Symbol.toStringTag](): string {
      return "Navigator";
    }
  }
  const navigator = new Navigator();
  allowed = false;
  core.webIdl(Navigator);
  return { navigator, Navigator };
}

/** The `navigator` global. */
export const navigatorModule: GuestModule = {
  name: "navigator",
  globals: ["navigator", "Navigator"],
  factory: navigatorFactory,
};
