/**
 * VMs made from a build's image (a copy of a VM whose guest world is installed) behave as
 * VMs made by evaluating the prelude: the same results for a script that touches the guest
 * world, their own identity (task id, random seed), nothing shared between two of them,
 * limits that hold, and a clean free.
 */
import assert from "node:assert/strict";
import { executeCode, FetchVM, resumeExecution } from "../lib/mod.ts";
import { continueCold, ok, VARIANTS } from "../testing/engine_driver.ts";

/** A script that reads the task id, draws random numbers and uses lazy guest APIs. */
const WORLD = `const u = new URL("https://example.com/a?b=1");
u.searchParams.append("c", "two");
const h = new Headers({ "X-A": "1" });
[FlowState.taskId, Math.random(), Math.random(), u.href, h.get("x-a"),
 new TextDecoder().decode(new TextEncoder().encode("é")), btoa("hi"), typeof structuredClone,
 Date.now() > 0]`;

for (const variant of VARIANTS) {
  Deno.test(`[${variant}] a VM from the image gives what a VM from the prelude gives`, async () => {
    const options = { variant, id: "same-task" };
    const fromImage = await executeCode(WORLD, { ...options, vmImages: true });
    const fromPrelude = await executeCode(WORLD, { ...options, vmImages: false });
    assert.equal(fromImage.type, "completed");
    const [id, r1, r2, ...rest] = fromImage.result as unknown[];
    assert.equal(id, "same-task");
    // Each VM has its own random seed: the draws are numbers in [0, 1), not the other's.
    assert.ok(typeof r1 === "number" && r1 >= 0 && r1 < 1 && r1 !== r2);
    assert.deepEqual(rest, (fromPrelude.result as unknown[]).slice(3));
  });

  Deno.test(`[${variant}] a VM from the image starts with the common guest APIs loaded, and a script may still replace them`, async () => {
    const code = `const d = (name) => Object.getOwnPropertyDescriptor(globalThis, name);
const kinds = ["fetch", "Response", "Headers", "URL", "AbortController", "setTimeout",
  "FlowState", "ReadableStream"].map((name) => typeof d(name).get === "function" ? "lazy" : "loaded");
globalThis.Headers = "mine";
[kinds, Headers, d("fetch").enumerable, d("fetch").writable]`;
    const fromImage = await executeCode(code, { variant, vmImages: true });
    const fromPrelude = await executeCode(code, { variant, vmImages: false });
    const loaded = ["loaded", "loaded", "loaded", "loaded", "loaded", "loaded"];
    // FlowState (per task: its id and input) and the streams (large) load on first use.
    assert.deepEqual(fromImage.result, [[...loaded, "lazy", "lazy"], "mine", false, true]);
    // An accessor has no "writable" (JSON null).
    assert.deepEqual(fromPrelude.result, [Array(8).fill("lazy"), "mine", false, null]);
  });

  Deno.test(`[${variant}] two VMs from the image share nothing`, async () => {
    const a = new FetchVM({ variant, id: "a" });
    const b = new FetchVM({ variant, id: "b" });
    try {
      const first = await a.execute(`globalThis.mine = "a"; Headers.prototype.extra = 1;
await fetch("https://example.com/a"); [FlowState.taskId, mine]`);
      assert.equal(first.type, "paused");
      const other = await b.execute(
        `[FlowState.taskId, typeof mine, "extra" in Headers.prototype]`,
      );
      assert.deepEqual(other.result, ["b", "undefined", false]);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  Deno.test(`[${variant}] a paused task replays the same in a VM from the image and from the prelude`, async () => {
    const code = `let total = Math.random();
for (let i = 0; i < 3; i++) {
  const r = await fetch("https://example.com/n/" + i);
  total += (await r.json()).n;
}
[FlowState.taskId, total, crypto.randomUUID()]`;
    const first = await executeCode(code, { variant, id: "replayed" });
    assert.equal(first.type, "paused");
    const state = JSON.stringify(first.state);
    const run = async (vmImages: boolean) => {
      const resumed = await resumeExecution(
        JSON.parse(state),
        { id: first.fetchRequest!.id, success: true, status: 200, data: { n: 1 } },
        { variant, vmImages },
      );
      return await continueCold(resumed, (_request, index) => ok({ n: index + 1 }), {
        variant,
        vmImages,
      });
    };
    const [image, prelude] = [await run(true), await run(false)];
    assert.equal(image.final.type, "completed");
    assert.deepEqual(image.result, prelude.result);
    assert.equal((image.result as unknown[])[0], "replayed");
  });

  Deno.test(`[${variant}] a hundred VMs from the image are made and freed in turn`, async () => {
    for (let i = 0; i < 100; i++) {
      const done = await executeCode(`[FlowState.taskId, typeof fetch]`, { variant, id: `t${i}` });
      assert.deepEqual(done.result, [`t${i}`, "function"]);
    }
  });
}
