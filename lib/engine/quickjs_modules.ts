/**
 * Loading quickjs-emscripten builds: each VM gets its own WebAssembly instance whose
 * linear memory is an imported `WebAssembly.Memory` with a maximum, because
 * `runtime.setMemoryLimit()` does not bound memory in these builds. The compiled
 * `WebAssembly.Module` of each build is shared, so a new instance costs about a
 * millisecond instead of a compilation.
 *
 * @module
 */
import {
  newQuickJSAsyncWASMModuleFromVariant,
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSRuntime,
  type QuickJSWASMModule,
  RELEASE_ASYNC,
  RELEASE_SYNC,
  // deno-lint-ignore no-import-prefix -- the engine is imported by path from other projects
} from "npm:quickjs-emscripten@0.32.0";
import { readFile } from "node:fs/promises";
import type { Variant } from "./types.ts";

const WASM_PAGE_BYTES = 64 * 1024;
/** The builds need at least this many pages of initial memory. */
const MIN_INITIAL_PAGES = 256;
/** Size of a VM's linear memory when it starts, bytes (16 MiB). */
export const INITIAL_MEMORY_BYTES = MIN_INITIAL_PAGES * WASM_PAGE_BYTES;

/**
 * The WebAssembly file of each build. Full specifiers, so the engine imported by path from
 * another project needs no import map; the npm build rewrites them to bare package names.
 */
const WASM_SPECIFIERS: Record<Variant, string> = {
  asyncify: "npm:@jitl/quickjs-wasmfile-release-asyncify@0.32.0/wasm",
  sync: "npm:@jitl/quickjs-wasmfile-release-sync@0.32.0/wasm",
};

const compiled = new Map<Variant, Promise<WebAssembly.Module>>();

/** The compiled WebAssembly module of a build, compiled once per process. */
function compiledModule(variant: Variant): Promise<WebAssembly.Module> {
  let module = compiled.get(variant);
  if (!module) {
    module = wasmLocation(variant).then((location) => readFile(location))
      .then((bytes) => WebAssembly.compile(new Uint8Array(bytes)));
    compiled.set(variant, module);
  }
  return module;
}

/**
 * Where a build's WebAssembly file is: resolved like a module (a `node_modules` directory,
 * Node.js), or else, when the runtime resolves npm packages to no file URL (Deno with its
 * global cache), where the build's own loader finds it, asked once.
 */
async function wasmLocation(variant: Variant): Promise<URL | string> {
  const resolved = import.meta.resolve(WASM_SPECIFIERS[variant]);
  if (resolved.startsWith("file:")) return new URL(resolved);
  let found: string | undefined;
  const locateFile = (file: string, prefix: string) => (found = `${prefix}${file}`);
  if (variant === "asyncify") {
    await newQuickJSAsyncWASMModuleFromVariant(newVariant(RELEASE_ASYNC, { locateFile }));
  } else {
    await newQuickJSWASMModuleFromVariant(newVariant(RELEASE_SYNC, { locateFile }));
  }
  if (found === undefined) {
    throw new Error(`Cannot find the WebAssembly file of the ${variant} QuickJS build`);
  }
  return found.startsWith("file:") ? new URL(found) : found;
}

/** A QuickJS build in its own WebAssembly instance, and that instance's memory. */
export interface CappedModule {
  module: QuickJSWASMModule;
  memory: WebAssembly.Memory;
}

/**
 * A new WebAssembly instance of `variant` whose memory cannot grow past `memoryLimitBytes`
 * (rounded down to whole pages, at least 16 MiB).
 */
export async function newCappedModule(
  variant: Variant,
  memoryLimitBytes: number,
): Promise<CappedModule> {
  const wasmModule = await compiledModule(variant);
  const maximum = Math.max(MIN_INITIAL_PAGES, Math.floor(memoryLimitBytes / WASM_PAGE_BYTES));
  const memory = new WebAssembly.Memory({ initial: MIN_INITIAL_PAGES, maximum });
  const module = variant === "asyncify"
    ? await newQuickJSAsyncWASMModuleFromVariant(
      newVariant(RELEASE_ASYNC, { wasmModule, wasmMemory: memory }),
    )
    : await newQuickJSWASMModuleFromVariant(
      newVariant(RELEASE_SYNC, { wasmModule, wasmMemory: memory }),
    );
  return { module, memory };
}

/** A fresh QuickJS runtime in a new capped instance (see {@link newCappedModule}). */
export async function newCappedRuntime(
  variant: Variant,
  memoryLimitBytes: number,
): Promise<{ runtime: QuickJSRuntime; memory: WebAssembly.Memory }> {
  const { module, memory } = await newCappedModule(variant, memoryLimitBytes);
  return { runtime: module.newRuntime(), memory };
}
