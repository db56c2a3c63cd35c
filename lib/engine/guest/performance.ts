/**
 * Guest source: `performance`, on the guest clock: `now()` is the milliseconds since the
 * task started as the journal records them, so it stands still within a run segment and a
 * replay reads the same values.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule } from "./guest_types.ts";

function performanceFactory(core: GuestCore): GuestExports {
  const { TypeErrorCtor } = core;
  let allowed = true;
  class Performance {
    constructor() {
      if (!allowed) throw new TypeErrorCtor("Illegal constructor");
    }
    get timeOrigin(): number {
      return core.origin;
    }
    now(): number {
      return core.clock - core.origin;
    }
    toJSON(): { timeOrigin: number } {
      return { timeOrigin: core.origin };
    }
    get [Symbol.toStringTag](): string {
      return "Performance";
    }
  }
  const performance = new Performance();
  allowed = false;
  core.webIdl(Performance);
  return { performance, Performance };
}

/** The `performance` global. */
export const performanceModule: GuestModule = {
  name: "performance",
  globals: ["performance", "Performance"],
  factory: performanceFactory,
};
