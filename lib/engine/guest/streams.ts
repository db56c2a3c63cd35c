/**
 * Guest source: the WHATWG streams (`ReadableStream`, `WritableStream`, `TransformStream`,
 * their readers, writers and controllers, and the two queuing strategies). The code is
 * `web-streams-polyfill`, the reference implementation made a library, bundled by
 * `deno task build:guest` into `streams_bundle.ts`: about 65 KB, parsed only by a script that
 * reads one of these globals. Streams are pure JavaScript: nothing reaches the host.
 *
 * @module
 */
import type { GuestModule } from "./guest_types.ts";
import { STREAMS_EXPORTS, STREAMS_FACTORY_SOURCE } from "./streams_bundle.ts";

/** The stream globals, each exported by the bundled polyfill. */
export const streamsModule: GuestModule = {
  name: "streams",
  globals: STREAMS_EXPORTS,
  factory: { source: STREAMS_FACTORY_SOURCE },
};
