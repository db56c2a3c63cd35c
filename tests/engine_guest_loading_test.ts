/**
 * How the guest world is assembled: every API is loaded on first use through a lazy global
 * that replaces itself, user code can replace a global before or after it is loaded, and
 * the guest sources obey the rules that let them be shipped by their source text.
 */
import assert from "node:assert/strict";
import { executeCode } from "../lib/mod.ts";
import { GUEST_MODULES, guestModuleSource } from "../lib/engine/guest/prelude.ts";
import { driveCold, ok, VARIANTS } from "../testing/engine_driver.ts";

const ALL_GLOBALS = GUEST_MODULES.flatMap((module) => module.globals);

for (const variant of VARIANTS) {
  // A VM made from an image starts with the common APIs loaded (engine_vm_image_test.ts):
  // the lazy globals are seen in a VM made the long way.
  Deno.test(`[${variant}] without an image, a guest API global is an accessor until first read, then a data property`, async () => {
    const done = await executeCode(
      `const before = Object.getOwnPropertyDescriptor(globalThis, "Headers");
typeof Headers;
const after = Object.getOwnPropertyDescriptor(globalThis, "Headers");
[typeof before.get, before.enumerable, before.configurable,
 typeof after.value, after.writable, after.enumerable, after.configurable]`,
      { variant, vmImages: false },
    );
    assert.deepEqual(done.result, ["function", false, true, "function", true, false, true]);
  });

  Deno.test(`[${variant}] every guest API global is defined once read`, async () => {
    const done = await executeCode(
      `${JSON.stringify(ALL_GLOBALS)}.map((name) => typeof globalThis[name])`,
      { variant },
    );
    assert.ok((done.result as string[]).every((type) => type !== "undefined"), String(done.result));
  });

  Deno.test(`[${variant}] guest API globals are not enumerable on globalThis`, async () => {
    const done = await executeCode(`Object.keys(globalThis)`, { variant });
    assert.deepEqual(done.result, []);
  });

  Deno.test(`[${variant}] assigning a guest API global before reading it replaces it`, async () => {
    const done = await executeCode(
      `Headers = 5; globalThis.console = "mine"; var fetch; [Headers, console, typeof fetch]`,
      { variant },
    );
    assert.deepEqual(done.result, [5, "mine", "function"]);
  });

  Deno.test(`[${variant}] a declared function named like a guest API shadows it`, async () => {
    const done = await executeCode(`function Headers() { return 1; }\nHeaders()`, { variant });
    assert.equal(done.result, 1);
  });

  Deno.test(`[${variant}] replacing Headers does not change the Headers fetch() uses`, async () => {
    const run = await driveCold(
      `Headers = null;
const r = await fetch("https://api.example/", { headers: { "X-A": "1" } });
r.headers.get("content-type")`,
      () => ok({ a: 1 }, { headers: { "content-type": "application/json" } }),
      { variant },
    );
    assert.deepEqual(run.requests[0]!.options.headers, { "x-a": "1" });
    assert.equal(run.result, "application/json");
  });
}

Deno.test("every guest module has a source, and only the internal ones define no global", () => {
  for (const module of GUEST_MODULES) {
    assert.equal(typeof guestModuleSource(module.name), "string", module.name);
  }
  const internal = GUEST_MODULES.filter((module) => module.globals.length === 0);
  assert.deepEqual(internal.map((module) => module.name).sort(), [
    "body",
    "bodyabort",
    "bodyextra",
    "bodyparts",
    "hostcall",
    "multipart",
    "variables",
  ]);
  assert.equal(guestModuleSource("no-such-module"), undefined);
  assert.equal(new Set(ALL_GLOBALS).size, ALL_GLOBALS.length, "a global is listed twice");
});

Deno.test("guest sources have no multi-line template literal (each line is trimmed)", () => {
  for (const module of GUEST_MODULES) {
    if (typeof module.factory !== "function") continue;
    for (const line of String(module.factory).split("\n")) {
      const ticks = line.split("`").length - 1;
      assert.equal(ticks % 2, 0, `${module.name}: ${line.trim()}`);
    }
  }
});
