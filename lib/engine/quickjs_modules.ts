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
  RELEASE_ASYNC,
  RELEASE_SYNC,
} from "quickjs-emscripten";
import type { Variant } from "./types.ts";

const WASM_PAGE_BYTES = 64 * 1024;
/** The builds need at least this many pages of initial memory. */
const MIN_INITIAL_PAGES = 256;
/** Size of a VM's linear memory when it starts, bytes (16 MiB). */
export const INITIAL_MEMORY_BYTES = MIN_INITIAL_PAGES * WASM_PAGE_BYTES;

const WASM_URLS: Record<Variant, string> = {
  asyncify: import.meta.resolve("@jitl/quickjs-wasmfile-release-asyncify/wasm"),
  sync: import.meta.resolve("@jitl/quickjs-wasmfile-release-sync/wasm"),
};

const compiled = new Map<Variant, Promise<WebAssembly.Module>>();

/** The compiled WebAssembly module of a build, compiled once per process. */
function compiledModule(variant: Variant): Promise<WebAssembly.Module> {
  let module = compiled.get(variant);
  if (!module) {
    module = Deno.readFile(new URL(WASM_URLS[variant])).then((bytes) => WebAssembly.compile(bytes));
    compiled.set(variant, module);
  }
  return module;
}

/**
 * A fresh QuickJS runtime in its own WebAssembly instance whose memory cannot grow past
 * `memoryLimitBytes` (rounded down to whole pages, at least 16 MiB).
 */
export async function newCappedRuntime(
  variant: Variant,
  memoryLimitBytes: number,
): Promise<{ runtime: QuickJSRuntime; memory: WebAssembly.Memory }> {
  const wasmModule = await compiledModule(variant);
  const maximum = Math.max(MIN_INITIAL_PAGES, Math.floor(memoryLimitBytes / WASM_PAGE_BYTES));
  const wasmMemory = new WebAssembly.Memory({ initial: MIN_INITIAL_PAGES, maximum });
  if (variant === "asyncify") {
    const module = await newQuickJSAsyncWASMModuleFromVariant(
      newVariant(RELEASE_ASYNC, { wasmModule, wasmMemory }),
    );
    return { runtime: module.newRuntime(), memory: wasmMemory };
  }
  const module = await newQuickJSWASMModuleFromVariant(
    newVariant(RELEASE_SYNC, { wasmModule, wasmMemory }),
  );
  return { runtime: module.newRuntime(), memory: wasmMemory };
}
