/**
 * The guest world, assembled: the eager prelude evaluated in every QuickJS context before
 * the user's code, and the sources of the guest APIs it loads on first use.
 *
 * The prelude builds the core (captured built-ins and helpers, `core.ts`), installs the
 * loader (`loader.ts`) with one lazy global per API of {@link GUEST_MODULES}, makes
 * `Math.random` and `Date` deterministic (`determinism.ts`), and returns the controller
 * (`controller.ts`) that only the host holds. It is a function the host calls once with the
 * object of its functions (the bridge), which no global ever holds. An API's source is
 * parsed only when the script first reads one of its globals, so creating a VM costs the
 * same however large the guest world grows.
 *
 * To add an API: write `<api>.ts` here exporting a {@link GuestModule} (its factory follows
 * the rules of `guest_types.ts`) and list it in {@link GUEST_MODULES}.
 *
 * @module
 */
import { abortModule } from "./abort.ts";
import { blobModule } from "./blob.ts";
import { bodyModule } from "./body.ts";
import { bodyExtraModule } from "./body_extra.ts";
import { bodyAbortModule } from "./body_abort.ts";
import { bodyPartsModule } from "./body_parts.ts";
import { formDataModule } from "./form_data.ts";
import { multipartModule } from "./multipart.ts";
import { requestModule } from "./request.ts";
import { base64Module } from "./base64.ts";
import { consoleModule } from "./console.ts";
import { cryptoModule } from "./crypto.ts";
import { guestController } from "./controller.ts";
import { guestCore } from "./core.ts";
import { installDeterminism } from "./determinism.ts";
import { domExceptionModule } from "./dom_exception.ts";
import { encodingModule } from "./encoding.ts";
import { eventsModule } from "./events.ts";
import { fetchModule } from "./fetch.ts";
import type { GuestModule } from "./guest_types.ts";
import { headersModule } from "./headers.ts";
import { hostCallModule } from "./host_call.ts";
import { installLoader } from "./loader.ts";
import { microtaskModule } from "./microtask.ts";
import { navigatorModule } from "./navigator.ts";
import { performanceModule } from "./performance.ts";
import { responseModule } from "./response.ts";
import { timersModule } from "./timers.ts";
import { flowStateModule } from "./flowstate.ts";
import { selfModule } from "./self.ts";
import { streamsModule } from "./streams.ts";
import { structuredCloneModule } from "./structured_clone.ts";
import { textStreamsModule } from "./text_streams.ts";
import { urlModule } from "./url.ts";
import { variablesModule } from "./variables.ts";

/** Every guest API loaded on first use, in no particular order. */
export const GUEST_MODULES: readonly GuestModule[] = [
  variablesModule,
  hostCallModule,
  consoleModule,
  headersModule,
  responseModule,
  requestModule,
  bodyModule,
  bodyExtraModule,
  bodyAbortModule,
  bodyPartsModule,
  blobModule,
  formDataModule,
  multipartModule,
  fetchModule,
  timersModule,
  flowStateModule,
  domExceptionModule,
  urlModule,
  encodingModule,
  base64Module,
  eventsModule,
  abortModule,
  microtaskModule,
  structuredCloneModule,
  cryptoModule,
  performanceModule,
  navigatorModule,
  selfModule,
  streamsModule,
  textStreamsModule,
];

/**
 * The guest modules a VM image holds already loaded (see `vm_image.ts`): those most fetch
 * scripts touch. A VM made from the image starts with their globals as plain properties, as
 * if the script had read them, and never parses their sources; VMs made the long way load
 * them on first use like every other module. Only a module whose factory reads nothing of
 * one task (its id, input, clock or seed) may be listed: `flowstate` reads the task's id
 * and input. The streams are left out for their size (they would double the image).
 */
export const IMAGE_MODULES: readonly string[] = [
  "hostcall",
  "variables",
  "console",
  "domexception",
  "headers",
  "body",
  "response",
  "request",
  "fetch",
  "url",
  "encoding",
  "base64",
  "events",
  "abort",
  "timers",
  "microtask",
  "structuredclone",
  "crypto",
];

const LAZY_TABLE = GUEST_MODULES.filter((module) => module.globals.length > 0)
  .map((module) => [module.name, module.globals] as const);

/**
 * Source of the prelude. Evaluated as a script, its value is a function that takes the
 * bridge (the host's functions, see `guest_types.ts` `GuestHost`) and returns the
 * controller: `{ identify(taskId, seed), deliver(id, json, dataText, clockMs): boolean,
 * fire(id, clockMs): string, signal(name, dataText, clockMs), waits(): string,
 * setClock(ms), defineGlobals(json), settle(promise), outcome(): string | undefined,
 * variables(namesJson, maxChars): string }`.
 */
export const GUEST_PRELUDE = compact(`"use strict";
(function prelude(host) {
const core = (${guestCore})(host);
(${installLoader})(core, ${JSON.stringify(LAZY_TABLE)});
(${installDeterminism})(core);
return (${guestController})(core);
})`);

const moduleSources = new Map<string, string>();

/**
 * Source of the lazy guest module `name` (a script whose value is its factory), or
 * `undefined` when there is no such module.
 */
export function guestModuleSource(name: string): string | undefined {
  let source = moduleSources.get(name);
  if (source === undefined) {
    const module = GUEST_MODULES.find((m) => m.name === name);
    if (!module) return undefined;
    const { factory } = module;
    // Generated sources are kept as the package wrote them (they may span lines anywhere).
    source = typeof factory === "function"
      ? compact(`"use strict";\n(${factory})`)
      : `"use strict";\n${factory.source}`;
    moduleSources.set(name, source);
  }
  return source;
}

/**
 * Drops comment lines and indentation: QuickJS parses about 4 characters per microsecond
 * here, and a source is parsed again in every VM that uses it.
 */
export function compact(source: string): string {
  return source.split("\n").map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("//")).join("\n");
}
