/**
 * Guest source: loads guest APIs on first use. Each global of a lazy module starts as a
 * configurable accessor on `globalThis`; the first read asks the host for the module's
 * factory, runs it, and replaces every global of the module by a plain data property
 * (writable, configurable, non-enumerable, as built-ins are). Assigning to such a global
 * before it is read replaces it without loading anything. A VM pays only for the APIs its
 * script touches.
 *
 * @module
 */
import type { GuestCore, GuestExports } from "./guest_types.ts";

/** Installs `core.use`, `core.loaded` and the lazy globals of `table` (`[module, globals]`). */
export function installLoader(
  core: GuestCore,
  table: readonly (readonly [string, readonly string[]])[],
): void {
  const { OrigMap, mapGet, mapSet, mapHas, defineProperty, getOwnPropertyDescriptor, hide } = core;
  const ErrorCtor = core.ErrorCtor;
  const loadFactory = core.host.load;
  const exportsOf = new OrigMap<string, GuestExports>();
  const globalsOf = new OrigMap<string, readonly string[]>();
  const getters = new OrigMap<string, () => unknown>();

  const use = (name: string): GuestExports => {
    const done = mapGet.call(exportsOf, name) as GuestExports | undefined;
    if (done !== undefined) return done;
    const factory = loadFactory(name);
    const exports = factory(core, use);
    mapSet.call(exportsOf, name, exports);
    const names = mapGet.call(globalsOf, name) as readonly string[] | undefined;
    if (names !== undefined) {
      for (const global of names) {
        const descriptor = getOwnPropertyDescriptor(globalThis, global);
        // Only a global still in its lazy state is defined: user code may have replaced it.
        if (descriptor && descriptor.get === mapGet.call(getters, global)) {
          hide(globalThis, global, exports[global]);
        }
      }
    }
    return exports;
  };
  core.use = use;
  core.loaded = (name: string) => mapHas.call(exportsOf, name);

  for (const [module, names] of table) {
    mapSet.call(globalsOf, module, names);
    for (const global of names) {
      const get = function () {
        const exports = use(module);
        if (!(global in exports)) throw new ErrorCtor("Guest module has no " + global);
        return exports[global];
      };
      mapSet.call(getters, global, get);
      defineProperty(globalThis, global, {
        configurable: true,
        enumerable: false,
        get,
        set(value: unknown) {
          hide(globalThis, global, value);
        },
      });
    }
  }
}
