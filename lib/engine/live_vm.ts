/**
 * A live QuickJS VM for one execution: its own capped WebAssembly instance, stack limit,
 * interrupt handler and the guest world installed.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- the engine is imported by path from other projects
import type { QuickJSContext, QuickJSRuntime } from "npm:quickjs-emscripten@0.32.0";
import {
  type Controller,
  disposeController,
  type HostFunctions,
  installPrelude,
} from "./host_bridge.ts";
import { newCappedRuntime } from "./quickjs_modules.ts";
import type { Variant } from "./types.ts";

/** A VM with the guest world installed. */
export interface LiveVM {
  runtime: QuickJSRuntime;
  context: QuickJSContext;
  controller: Controller;
  /** Its linear memory (capped). */
  memory: WebAssembly.Memory;
}

/** Settings of a new {@link LiveVM}. */
export interface LiveVMOptions {
  variant: Variant;
  memoryLimitBytes: number;
  maxStackBytes: number;
  /** Called often while the guest runs; `true` stops it. */
  shouldInterrupt(): boolean;
  host: HostFunctions;
}

/** Creates a VM and evaluates the prelude in it. */
export async function createLiveVM(options: LiveVMOptions): Promise<LiveVM> {
  const { runtime, memory } = await newCappedRuntime(options.variant, options.memoryLimitBytes);
  let context: QuickJSContext | undefined;
  try {
    runtime.setMaxStackSize(options.maxStackBytes);
    runtime.setInterruptHandler(() => options.shouldInterrupt());
    context = runtime.newContext();
    const controller = installPrelude(context, options.host);
    return { runtime, context, controller, memory };
  } catch (error) {
    context?.dispose();
    runtime.dispose();
    throw error;
  }
}

/** Frees a VM; never throws. */
export function disposeLiveVM(live: LiveVM): void {
  try {
    disposeController(live.controller);
    live.context.dispose();
    live.runtime.dispose();
  } catch {
    // A VM that hit a fatal wasm error cannot be freed cleanly; dropping every reference
    // lets the garbage collector reclaim its whole WebAssembly instance.
  }
}
