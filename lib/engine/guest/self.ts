/**
 * Guest source: `self`, the global object under the name workers and browsers give it.
 *
 * @module
 */
import type { GuestExports, GuestModule } from "./guest_types.ts";

function selfFactory(): GuestExports {
  return { self: globalThis };
}

/** The `self` global. */
export const selfModule: GuestModule = {
  name: "self",
  globals: ["self"],
  factory: selfFactory,
};
