/**
 * The committed streams bundle is what `deno task build:guest` makes from the installed
 * `web-streams-polyfill` at the version `deno.json` imports: regenerating it changes nothing.
 */
import assert from "node:assert/strict";
import { fromFileUrl, join } from "@std/path";
import {
  buildStreamsBundle,
  importedStreamsVersion,
  renderStreamsBundle,
  STREAMS_BUNDLE_PATH,
} from "../scripts/build_guest.ts";
import { STREAMS_EXPORTS, STREAMS_POLYFILL_VERSION } from "../lib/engine/guest/streams_bundle.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));

Deno.test("the committed streams bundle is not stale (deno task build:guest regenerates it)", async () => {
  const committed = await Deno.readTextFile(join(ROOT, STREAMS_BUNDLE_PATH));
  assert.ok(committed === await buildStreamsBundle(), `${STREAMS_BUNDLE_PATH} is stale`);
  assert.equal(STREAMS_POLYFILL_VERSION, await importedStreamsVersion());
  assert.ok(STREAMS_EXPORTS.includes("ReadableStream"));
});

Deno.test("the bundle generator refuses a package shape it does not know", () => {
  const header = "/**\n * @license\n * x\n */\n";
  assert.throws(() => renderStreamsBundle("class A {}", "1.0.0"), /license header/);
  assert.throws(() => renderStreamsBundle(header + "class A {}", "1.0.0"), /final export/);
  assert.throws(
    () => renderStreamsBundle(header + "class A {}export{A as B};", "1.0.0"),
    /renamed exports/,
  );
  assert.throws(
    () => renderStreamsBundle(header + 'import x from "y";class A {}export{A};', "1.0.0"),
    /an import/,
  );
  assert.match(renderStreamsBundle(header + "class A {}export{A};", "1.0.0"), /return \{ A \}/);
});
