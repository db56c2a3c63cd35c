/**
 * A live QuickJS VM for one execution: its own capped WebAssembly instance, stack limit,
 * interrupt handler, identity (task id and random seed) and the guest world installed.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- the engine is imported by path from other projects
import type { QuickJSContext, QuickJSRuntime } from "npm:quickjs-emscripten@0.32.0";
import {
  callController,
  type Controller,
  disposeController,
  type HostFunctions,
  type HostFunctionTable,
  hostFunctionTable,
  installPrelude,
} from "./host_bridge.ts";
import { newCappedRuntime } from "./quickjs_modules.ts";
import type { Variant } from "./types.ts";
import { vmFromImage } from "./vm_image.ts";

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
  /** Id of the execution, `FlowState.taskId`. */
  taskId: string;
  /** Seed of the guest `Math.random`. */
  seed: number;
  /** Copy the build's VM image instead of evaluating the prelude (default `true`). */
  fromImage?: boolean;
}

/**
 * Creates a VM with the guest world installed: copied from the build's image when there is
 * one (see `vm_image.ts`), else by evaluating the prelude; then limited and named.
 */
export async function createLiveVM(options: LiveVMOptions): Promise<LiveVM> {
  const functions = (context: QuickJSContext) => hostFunctionTable(context, options.host);
  const live = (options.fromImage !== false &&
    await vmFromImage(options.variant, options.memoryLimitBytes, functions)) ||
    await evaluatePrelude(options, functions);
  try {
    live.runtime.setMaxStackSize(options.maxStackBytes);
    live.runtime.setInterruptHandler(() => options.shouldInterrupt());
    callController(
      live.context,
      live.controller.identify,
      [options.taskId, options.seed],
      (info) => new Error(`The guest world refused its identity: ${info.message}`),
    );
    return live;
  } catch (error) {
    disposeLiveVM(live);
    throw error;
  }
}

/** A new VM made the long way: a new runtime and context, the prelude evaluated. */
async function evaluatePrelude(
  options: LiveVMOptions,
  functions: (context: QuickJSContext) => HostFunctionTable,
): Promise<LiveVM> {
  const { runtime, memory } = await newCappedRuntime(options.variant, options.memoryLimitBytes);
  let context: QuickJSContext | undefined;
  try {
    context = runtime.newContext();
    const controller = installPrelude(context, functions(context));
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
