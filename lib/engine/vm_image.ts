/**
 * VM images: a QuickJS VM whose prelude has run, at rest (nothing on its stack, no job
 * pending), is entirely in its WebAssembly linear memory. Its bytes, up to the last one in
 * use, are taken once per build and process (the image); a new VM is then a new instance of
 * the same compiled module with the image copied into its memory, and the JavaScript
 * wrappers (runtime, context, the host functions' references, the controller's handles)
 * rebuilt around the pointers the image holds. Neither the prelude nor a context is made
 * again: a new VM costs an instantiation and a copy of a few hundred KB.
 *
 * A copy is exact: an instance's memory, once its constructors ran, is the same in every
 * instance of a module, and beyond the image's length the template's memory and a new
 * instance's are both zero. The wrappers are rebuilt with quickjs-emscripten 0.32.0's own
 * classes, whose constructors take existing pointers; what this relies on beyond its
 * documented API (the module's `ffi` and `callbacks`, the runtime's `contextMap`, host
 * reference ids allocated in order) is checked when a VM is made from an image, and any
 * mismatch makes the caller fall back to evaluating the prelude. The version is pinned.
 *
 * @module
 */
import {
  Lifetime,
  QuickJSAsyncContext,
  QuickJSAsyncRuntime,
  QuickJSContext,
  type QuickJSHandle,
  QuickJSRuntime,
  // deno-lint-ignore no-import-prefix -- the engine is imported by path from other projects
} from "npm:quickjs-emscripten@0.32.0";
import {
  callController,
  type Controller,
  disposeController,
  type HostFunctions,
  type HostFunctionTable,
  hostFunctionTable,
  installPrelude,
} from "./host_bridge.ts";
import { IMAGE_MODULES } from "./guest/prelude.ts";
import { INITIAL_MEMORY_BYTES, newCappedModule } from "./quickjs_modules.ts";
import type { Variant } from "./types.ts";

/** What a VM made from an image is: the same as a VM made by evaluating the prelude. */
export interface ImageVM {
  runtime: QuickJSRuntime;
  context: QuickJSContext;
  controller: Controller;
  memory: WebAssembly.Memory;
}

/** An initialised VM's memory and the pointers the wrappers are rebuilt around. */
interface VMImage {
  variant: Variant;
  /** The pages of memory that differ from a new instance's, merged into runs. */
  runs: { offset: number; bytes: Uint8Array }[];
  /** Bytes of memory the VM needs (its memory's size when it was taken). */
  size: number;
  runtimePointer: number;
  contextPointer: number;
  /** The `JSValue *` of each controller handle. */
  handles: Record<keyof Controller, number>;
  /** The host reference id of each host function, in the table's order. */
  hostRefIds: number[];
}

/**
 * The parts of quickjs-emscripten's module object the wrappers are built from, typed with
 * plain numbers for its branded pointer types.
 */
interface ModuleInternals {
  module: unknown;
  ffi: {
    QTS_FreeRuntime(runtime: number): void;
    QTS_FreeContext(context: number): void;
    QTS_DupValuePointer(context: number, value: number): number;
    QTS_FreeValuePointer(context: number, value: number): void;
  };
  callbacks: { deleteRuntime(runtime: number): void; deleteContext(context: number): void };
}

/** What the wrappers keep that is read or set here. */
interface RuntimeInternals {
  rt: Lifetime<number>;
  contextMap: Map<number, QuickJSContext>;
  hostRefs: { put(value: unknown): number };
}

/** The wrappers' constructors, which take their pointers in an argument object. */
type Wrapper<T> = new (args: Record<string, unknown>) => T;

/** The host of the image's own VM: its prelude calls none of these. */
const NO_HOST: HostFunctions = {
  record: () => {
    throw new Error("A VM image has no host");
  },
  abortRequest: () => {},
  log: () => {},
  setTimer: () => {
    throw new Error("A VM image has no host");
  },
  clearTimer: () => {},
  calls: {
    call: () => {
      throw new Error("A VM image has no host");
    },
  },
};

const images = new Map<Variant, Promise<VMImage | null>>();

/**
 * A new VM of `variant` made from the build's image (made on first use), with `functions`
 * as its host functions; `null` when this build has no usable image (the caller evaluates
 * the prelude instead).
 */
export async function vmFromImage(
  variant: Variant,
  memoryLimitBytes: number,
  functions: (context: QuickJSContext) => HostFunctionTable,
): Promise<ImageVM | null> {
  let image = images.get(variant);
  if (!image) {
    image = captureImage(variant).catch(() => null);
    images.set(variant, image);
  }
  const ready = await image;
  if (!ready) return null;
  try {
    return await instantiate(ready, memoryLimitBytes, functions);
  } catch {
    // The image does not fit these wrappers after all: never use it again.
    images.set(variant, Promise.resolve(null));
    return null;
  }
}

/** Makes the image of `variant`: a VM with its prelude run, compared with new instances. */
async function captureImage(variant: Variant): Promise<VMImage> {
  const { module, memory } = await newCappedModule(variant, INITIAL_MEMORY_BYTES);
  // What a new instance holds, twice: whatever differs between two is copied as well.
  const fresh = new Uint8Array(memory.buffer).slice();
  const other = await newCappedModule(variant, INITIAL_MEMORY_BYTES);
  const fresh2 = new Uint8Array(other.memory.buffer);
  const runtime = module.newRuntime();
  try {
    const context = runtime.newContext();
    try {
      const table = hostFunctionTable(context, NO_HOST);
      const refs = (runtime as unknown as RuntimeInternals).hostRefs;
      const ids = new Map<unknown, number>();
      const put = refs.put;
      refs.put = function (value: unknown) {
        const id = put.call(this, value);
        ids.set(value, id);
        return id;
      };
      let controller: Controller;
      try {
        controller = installPrelude(context, table);
      } finally {
        refs.put = put;
      }
      try {
        callController(
          context,
          controller.preload,
          [JSON.stringify(IMAGE_MODULES)],
          (info) => new Error(`The image's guest modules did not load: ${info.message}`),
        );
        if (runtime.hasPendingJob()) throw new Error("The prelude left a job pending");
        const hostRefIds = table.map(([name, fn]) => {
          const id = ids.get(fn);
          if (id === undefined) throw new Error(`Host function ${name} has no reference id`);
          return id;
        });
        const handles = {} as Record<keyof Controller, number>;
        for (const [name, handle] of Object.entries(controller)) {
          handles[name as keyof Controller] = (handle as QuickJSHandle).value as number;
        }
        const taken = new Uint8Array(memory.buffer);
        return {
          variant,
          runs: differingRuns(taken, fresh, fresh2),
          size: taken.length,
          runtimePointer: (runtime as unknown as RuntimeInternals).rt.value,
          contextPointer: (context as unknown as { ctx: Lifetime<number> }).ctx.value,
          handles,
          hostRefIds,
        };
      } finally {
        disposeController(controller);
      }
    } finally {
      freeQuietly(context);
    }
  } finally {
    freeQuietly(runtime);
  }
}

/** Granularity of the comparison, bytes. */
const PAGE_BYTES = 4096;

/** The pages of `taken` where it, `fresh` or `fresh2` differ, merged into runs of `taken`. */
function differingRuns(
  taken: Uint8Array,
  fresh: Uint8Array,
  fresh2: Uint8Array,
): VMImage["runs"] {
  const words = (bytes: Uint8Array) =>
    new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2);
  const [a, b, c] = [words(taken), words(fresh), words(fresh2)];
  const runs: VMImage["runs"] = [];
  const perPage = PAGE_BYTES >> 2;
  let start = -1;
  for (let page = 0; page * perPage < a.length; page++) {
    let differs = false;
    const end = Math.min(a.length, (page + 1) * perPage);
    for (let i = page * perPage; i < end && !differs; i++) {
      differs = a[i] !== (b[i] ?? 0) || b[i] !== c[i];
    }
    if (differs && start < 0) start = page;
    if (!differs && start >= 0) {
      runs.push(run(taken, start, page));
      start = -1;
    }
  }
  if (start >= 0) runs.push(run(taken, start, Math.ceil(taken.length / PAGE_BYTES)));
  return runs;
}

function run(taken: Uint8Array, fromPage: number, toPage: number) {
  const offset = fromPage * PAGE_BYTES;
  return { offset, bytes: taken.slice(offset, Math.min(taken.length, toPage * PAGE_BYTES)) };
}

/** A new instance with `image` in its memory and wrappers rebuilt around it. */
async function instantiate(
  image: VMImage,
  memoryLimitBytes: number,
  functions: (context: QuickJSContext) => HostFunctionTable,
): Promise<ImageVM> {
  const { module, memory } = await newCappedModule(image.variant, memoryLimitBytes);
  const missing = image.size - memory.buffer.byteLength;
  if (missing > 0) memory.grow(Math.ceil(missing / 65536));
  const view = new Uint8Array(memory.buffer);
  for (const { offset, bytes } of image.runs) view.set(bytes, offset);
  const { module: emscripten, ffi, callbacks } = module as unknown as ModuleInternals;
  const asyncify = image.variant === "asyncify";
  const Runtime = (asyncify ? QuickJSAsyncRuntime : QuickJSRuntime) as unknown as Wrapper<
    QuickJSRuntime
  >;
  const Context = (asyncify ? QuickJSAsyncContext : QuickJSContext) as unknown as Wrapper<
    QuickJSContext
  >;
  // Freeing the runtime finalizes the host functions, whose callbacks need it registered.
  const rt = new Lifetime(image.runtimePointer, undefined, (pointer) => {
    ffi.QTS_FreeRuntime(pointer);
    callbacks.deleteRuntime(pointer);
  });
  const runtime = new Runtime({ module: emscripten, ffi, rt, callbacks });
  try {
    const internals = runtime as unknown as RuntimeInternals;
    const ctx = new Lifetime(image.contextPointer, undefined, (pointer) => {
      internals.contextMap.delete(pointer);
      callbacks.deleteContext(pointer);
      ffi.QTS_FreeContext(pointer);
    });
    const context = new Context({
      module: emscripten,
      ffi,
      rt,
      ctx,
      runtime,
      callbacks,
      ownedLifetimes: [],
    });
    internals.contextMap.set(image.contextPointer, context);
    try {
      functions(context).forEach(([name, fn], i) => {
        const id = internals.hostRefs.put(fn);
        if (id !== image.hostRefIds[i]) {
          throw new Error(`Host function ${name} got reference ${id}, the image has another`);
        }
      });
      const copy = (pointer: number) => ffi.QTS_DupValuePointer(image.contextPointer, pointer);
      const free = (pointer: number) => ffi.QTS_FreeValuePointer(image.contextPointer, pointer);
      const controller = {} as Record<keyof Controller, QuickJSHandle>;
      for (const [name, pointer] of Object.entries(image.handles)) {
        const handle = new Lifetime(pointer, copy, free, runtime);
        controller[name as keyof Controller] = handle as unknown as QuickJSHandle;
      }
      return { runtime, context, controller: controller as Controller, memory };
    } catch (error) {
      freeQuietly(context);
      throw error;
    }
  } catch (error) {
    freeQuietly(runtime);
    throw error;
  }
}

/** Frees what a failed copy made; a half-built VM may not free cleanly, and need not. */
function freeQuietly(disposable: { dispose(): void }): void {
  try {
    disposable.dispose();
  } catch {
    // Dropping the last reference lets the garbage collector take the whole instance.
  }
}
