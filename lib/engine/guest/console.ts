/**
 * Guest source: `console`. Every level writes one line to the host, which keeps it with its
 * level and time (and writes nothing while replaying).
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule } from "./guest_types.ts";

function consoleFactory(core: GuestCore): GuestExports {
  const { hide, describe } = core;
  const hostLog = core.host.log;
  const consoleObject = {};
  for (const level of ["log", "info", "warn", "error", "debug"]) {
    hide(consoleObject, level, function (...args: unknown[]) {
      let line = "";
      for (let i = 0; i < args.length; i++) line += (i ? " " : "") + describe(args[i]);
      hostLog(level, line);
    });
  }
  return { console: consoleObject };
}

/** The `console` global. */
export const consoleModule: GuestModule = {
  name: "console",
  globals: ["console"],
  factory: consoleFactory,
};
