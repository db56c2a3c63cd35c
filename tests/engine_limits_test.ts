/**
 * Limits and failures: every limit of the engine stops the guest with its own kind and
 * leaves the host able to run the next VM; guest errors keep their name, message and line;
 * VMs do not leak.
 */
import assert from "node:assert/strict";
import { executeCode, ExecutionError, FetchVM, resumeExecution, type Variant } from "../lib/mod.ts";
import {
  driveCold,
  driveLive,
  ok,
  rejectsWithKind,
  VARIANTS,
  viaJson,
} from "../testing/engine_driver.ts";

/** A fresh VM in this process still works after a failure. */
async function assertHostHealthy(variant: Variant): Promise<void> {
  const done = await executeCode("1 + 1", { variant });
  assert.equal(done.type, "completed");
  assert.equal(done.result, 2);
}

const INFINITE_LOOP = "let spins = 0;\nwhile (true) { spins++; }";
const MEMORY_BOMB = `const hoard = [];
while (true) hoard.push("x".repeat(1000) + hoard.length);`;
const DEEP_RECURSION = "function down(n) { return down(n + 1) + 1; }\ndown(0)";

for (const variant of VARIANTS) {
  // --- time ----------------------------------------------------------------------------------

  Deno.test(`[${variant}] an infinite loop stops with kind "timeout"`, async () => {
    const error = await rejectsWithKind(
      executeCode(INFINITE_LOOP, { variant, timeLimitMs: 200 }),
      "timeout",
    );
    assert.match(error.message, /200 ms/);
    await assertHostHealthy(variant);
  });

  Deno.test(`[${variant}] an infinite loop after a resumed fetch stops with kind "timeout"`, async () => {
    const code = `const r = await fetch("https://x.example/");\nawait r.json();\n${INFINITE_LOOP}`;
    const options = { variant, timeLimitMs: 200 };
    using vm = new FetchVM(options);
    const paused = await vm.execute(code);
    assert.equal(paused.type, "paused");
    const answer = { ...ok({}), id: paused.fetchRequest!.id };
    await rejectsWithKind(vm.resume(paused.state!, answer), "timeout");
    assert.equal(vm.isLive, false, "a VM stopped by a limit is dropped");
    // cold, from the saved state: replaying the journal is fine, the loop after it is not
    await rejectsWithKind(resumeExecution(viaJson(paused.state!), answer, options), "timeout");
    await assertHostHealthy(variant);
  });

  // BUG: when the time limit interrupts the *replay* of a journal (cold resume), the guest's
  // top-level promise just rejects, the replay goes on, and the engine reports kind
  // "nondeterminism" ("Fetch #0 was recorded as GET https://x.example/ but replaying the code
  // did not ask for it") instead of "timeout". Related: the whole replay runs under a single
  // segment's `timeLimitMs`, so a cold resume of a script whose segments each fit the limit
  // can still be interrupted once the replayed segments add up to more than the limit.
  Deno.test({
    name: `[${variant}] a time limit hit while replaying the journal is reported as "timeout"`,

    fn: async () => {
      const paused = await executeCode(
        `let x = 0;
for (let i = 0; i < 2000000; i++) x += i;
const r = await fetch("https://x.example/");
x`,
        { variant },
      );
      assert.equal(paused.type, "paused");
      await rejectsWithKind(
        resumeExecution(
          viaJson(paused.state!),
          { ...ok(null), id: paused.fetchRequest!.id },
          { timeLimitMs: 1 },
        ),
        "timeout",
      );
    },
  });

  // --- memory and stack --------------------------------------------------------------------

  Deno.test(`[${variant}] a memory bomb stops with kind "memory"`, async () => {
    const error = await rejectsWithKind(
      executeCode(MEMORY_BOMB, { variant, memoryLimitBytes: 32 * 1024 * 1024 }),
      "memory",
    );
    assert.ok(error instanceof ExecutionError);
    await assertHostHealthy(variant);
  });

  Deno.test(`[${variant}] memory bombs of other shapes stop with kind "memory" too`, async () => {
    for (
      const code of [
        `const a = []; while (true) a.push({ i: a.length, s: "v" + a.length });`,
        `const a = []; while (true) a.push(new Array(1000).fill(a.length));`,
        `const a = []; while (true) a.push("x".repeat(100000) + a.length);`,
      ]
    ) {
      await rejectsWithKind(
        executeCode(code, { variant, memoryLimitBytes: 32 * 1024 * 1024 }),
        "memory",
      );
    }
    await assertHostHealthy(variant);
  });

  // BUG: when the guest runs out of memory at some points (here: pushing 4 KiB strings built
  // from three parts, or 1,000-character ones of that shape), QuickJS cannot allocate the
  // rejection of the top-level promise, which then never settles: the engine reports kind
  // "deadlock" ("waiting on a promise that can never settle: no fetch is pending") instead
  // of "memory". Same in both builds.
  Deno.test({
    name: `[${variant}] a memory bomb that exhausts memory while rejecting is still kind "memory"`,

    fn: async () => {
      for (const size of [1000, 4096]) {
        await rejectsWithKind(
          executeCode(
            `const hoard = [];
while (true) hoard.push("chunk-" + hoard.length + "-" + "x".repeat(${size}));`,
            { variant, memoryLimitBytes: 32 * 1024 * 1024 },
          ),
          "memory",
        );
      }
    },
  });

  Deno.test(`[${variant}] deep recursion stops with kind "stack"`, async () => {
    const error = await rejectsWithKind(executeCode(DEEP_RECURSION, { variant }), "stack");
    assert.match(error.guestStack, /down \(task\.js:1/);
    assert.ok(error.guestStack.split("\n").length <= 20, "the guest stack is trimmed");
    await assertHostHealthy(variant);
  });

  Deno.test(`[${variant}] a guest try/catch around deep recursion catches the overflow and completes`, async () => {
    const done = await executeCode(
      `function down(n) { return down(n + 1) + 1; }
let caught = "nothing";
try { down(0); } catch (e) { caught = e.name + ": " + e.message; }
caught`,
      { variant },
    );
    assert.equal(done.type, "completed");
    assert.match(String(done.result), /^InternalError: .*stack overflow/i);
  });

  // --- size limits --------------------------------------------------------------------------

  Deno.test(`[${variant}] code over maxCodeBytes is refused with kind "limit", counting UTF-8 bytes`, async () => {
    const ascii = `"${"a".repeat(600)}".length`;
    await rejectsWithKind(executeCode(ascii, { variant, maxCodeBytes: 500 }), "limit");
    // 300 characters but 600 bytes
    const wide = `"${"é".repeat(300)}".length`;
    assert.ok(wide.length < 500);
    const error = await rejectsWithKind(executeCode(wide, { variant, maxCodeBytes: 500 }), "limit");
    assert.match(error.message, /500/);
    const fits = await executeCode(`"${"a".repeat(100)}".length`, { variant, maxCodeBytes: 500 });
    assert.equal(fits.result, 100);
    // a later REPL step is checked too, and the VM stays usable
    using vm = new FetchVM({ variant, maxCodeBytes: 500 });
    await vm.execute("let kept = 7;");
    await rejectsWithKind(vm.execute(ascii), "limit");
    assert.equal((await vm.execute("kept")).result, 7);
    await assertHostHealthy(variant);
  });

  Deno.test(`[${variant}] more fetches than maxPendingFetches at once wait their turn, live and cold`, async () => {
    const code = `const all = await Promise.all(Array.from({ length: 50 }, (_, i) =>
  fetch("https://x.example/" + i).then((r) => r.json())));
all.reduce((sum, n) => sum + n, 0)`;
    const first = await executeCode(code, { variant, maxPendingFetches: 3 });
    assert.deepEqual(
      first.fetchRequests?.map((r) => r.url),
      [0, 1, 2].map((i) => `https://x.example/${i}`),
    );
    const answer = (request: { url: string }) => ok(Number(request.url.split("/").at(-1)));
    for (const drive of [driveLive, driveCold]) {
      const run = await drive(code, answer, { variant, maxPendingFetches: 3 });
      assert.equal(run.result, (49 * 50) / 2);
      assert.ok(run.pauses.every((pause) => (pause.fetchRequests?.length ?? 0) <= 3));
    }
    await assertHostHealthy(variant);
  });

  Deno.test(`[${variant}] more fetches than maxJournalEntries allows is refused with kind "limit"`, async () => {
    const code = `let n = 0;
for (let i = 0; i < 10; i++) { await fetch("https://x.example/" + i); n++; }
n`;
    const within = await driveLive(code, () => ok(null), { variant, maxJournalEntries: 21 });
    assert.equal(within.result, 10);
    const error = await rejectsWithKind(
      driveLive(code, () => ok(null), { variant, maxJournalEntries: 8 }),
      "limit",
    );
    assert.match(error.message, /8/);
    await assertHostHealthy(variant);
  });

  Deno.test(`[${variant}] a response larger than maxJournalBytes is refused with kind "limit"; the state still resumes`, async () => {
    const options = { variant, maxJournalBytes: 8 * 1024 };
    using vm = new FetchVM(options);
    const paused = await vm.execute(`(await (await fetch("https://x.example/")).text()).length`);
    const copy = structuredClone(paused.state);
    const id = paused.fetchRequest!.id;
    const huge = { ...ok("x".repeat(20_000)), id };
    await rejectsWithKind(vm.resume(paused.state!, huge), "limit");
    await rejectsWithKind(resumeExecution(viaJson(paused.state!), huge, options), "limit");
    assert.deepEqual(paused.state, copy);
    const done = await vm.resume(paused.state!, { ...ok("small"), id });
    assert.equal(done.result, 5);
    await assertHostHealthy(variant);
  });

  Deno.test(`[${variant}] a result larger than maxResultBytes is refused with kind "limit"`, async () => {
    const error = await rejectsWithKind(
      executeCode(`"r".repeat(5000)`, { variant, maxResultBytes: 4096 }),
      "limit",
    );
    assert.match(error.message, /4096/);
    const fits = await executeCode(`"r".repeat(1000)`, { variant, maxResultBytes: 4096 });
    assert.equal(fits.result, "r".repeat(1000));
    await assertHostHealthy(variant);
  });

  // --- guest errors ------------------------------------------------------------------------

  Deno.test(`[${variant}] a guest TypeError keeps its name, message and line`, async () => {
    const error = await rejectsWithKind(
      executeCode("const a = 1;\nconst b = null;\nb.x;\n", { variant }),
      "exception",
    );
    assert.equal(error.guestName, "TypeError");
    assert.match(error.message, /null/);
    assert.ok(error.guestStack.includes("task.js:3"), error.guestStack);
    assert.deepEqual(error.toJSON(), {
      kind: "exception",
      name: "TypeError",
      message: error.message,
      stack: error.guestStack,
    });
  });

  Deno.test(`[${variant}] a guest error thrown after a cold resume keeps its line`, async () => {
    const paused = await executeCode(
      `const r = await fetch("https://x.example/");
const d = await r.json();
function check(v) {
  if (!v.ok) throw new RangeError("not ok: " + v.why);
}
check(d);`,
      { variant },
    );
    const error = await rejectsWithKind(
      resumeExecution(viaJson(paused.state!), {
        ...ok({ ok: false, why: "nope" }),
        id: paused.fetchRequest!.id,
      }),
      "exception",
    );
    assert.equal(error.guestName, "RangeError");
    assert.equal(error.message, "not ok: nope");
    assert.ok(error.guestStack.includes("task.js:4"), error.guestStack);
  });

  Deno.test(`[${variant}] a custom error class keeps its name`, async () => {
    const error = await rejectsWithKind(
      executeCode(
        `class QuotaError extends Error { constructor(m) { super(m); this.name = "QuotaError"; } }
throw new QuotaError("over quota");`,
        { variant },
      ),
      "exception",
    );
    assert.equal(error.guestName, "QuotaError");
    assert.equal(error.message, "over quota");
  });

  Deno.test(`[${variant}] a syntax error fails with kind "syntax" and its line`, async () => {
    const error = await rejectsWithKind(
      executeCode("const a = 1;\nconst b = ;\n", { variant }),
      "syntax",
    );
    assert.equal(error.guestName, "SyntaxError");
    assert.ok(error.guestStack.includes("task.js:2"), error.guestStack);
    await assertHostHealthy(variant);
  });

  Deno.test(`[${variant}] throwing a non-error gives its JSON as the message, never [object Object]`, async () => {
    const object = await rejectsWithKind(executeCode("throw { a: 1 }", { variant }), "exception");
    assert.equal(object.message, '{"a":1}');
    const afterAwait = await rejectsWithKind(
      executeCode("await null;\nthrow { a: 1 }", { variant }),
      "exception",
    );
    assert.equal(afterAwait.message, '{"a":1}');
    const text = await rejectsWithKind(executeCode(`throw "plain text"`, { variant }), "exception");
    assert.equal(text.message, "plain text");
    for (const error of [object, afterAwait, text]) {
      assert.ok(!error.message.includes("[object Object]"));
    }
  });

  // --- leaks -------------------------------------------------------------------------------

  Deno.test(`[${variant}] many execute/resume/dispose cycles: dispose never throws and memory stays bounded`, async () => {
    const cycles = variant === "sync" ? 300 : 50;
    const code = `const r = await fetch("https://x.example/" + Math.random());
const d = await r.json();
console.log("got", d.n);
({ n: d.n, blob: "y".repeat(10000).length })`;
    const cycle = async (i: number) => {
      const vm = new FetchVM({ variant });
      try {
        const paused = await vm.execute(code);
        const done = await vm.resume(paused.state!, {
          ...ok({ n: i }),
          id: paused.fetchRequest!.id,
        });
        assert.deepEqual(done.result, { n: i, blob: 10000 });
      } finally {
        vm.dispose();
        vm.dispose(); // a second call is harmless
      }
      assert.equal(vm.isLive, false);
    };
    for (let i = 0; i < 20; i++) await cycle(i);
    const before = Deno.memoryUsage().rss;
    for (let i = 0; i < cycles; i++) await cycle(i);
    const growth = Deno.memoryUsage().rss - before;
    assert.ok(growth < 200 * 1024 * 1024, `rss grew by ${Math.round(growth / 1024 / 1024)} MiB`);
  });

  Deno.test(`[${variant}] disposing a VM stopped by a limit, or never started, does not throw`, async () => {
    const fresh = new FetchVM({ variant });
    fresh.dispose();
    const vm = new FetchVM({ variant, memoryLimitBytes: 32 * 1024 * 1024 });
    await rejectsWithKind(vm.execute(MEMORY_BOMB), "memory");
    vm.dispose();
    vm.dispose();
    const err = await vm.execute("1").then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ExecutionError, "a VM stopped by a limit refuses more steps");
    await assertHostHealthy(variant);
  });
}
