/**
 * The guest's `DOMException`, `Event`, `EventTarget`, `AbortController` and `AbortSignal`
 * behave as the DOM and Web IDL standards say (the cases the web-platform-tests check).
 */
import assert from "node:assert/strict";
import { executeCode, FetchVM } from "../lib/mod.ts";

async function guest(code: string): Promise<unknown> {
  return (await executeCode(code)).result;
}

Deno.test("DOMException has name, message, the legacy code and the constants", async () => {
  assert.deepEqual(
    await guest(`const e = new DOMException("gone", "NotFoundError");
[e.name, e.message, e.code, e instanceof Error, new DOMException().name, new DOMException("x", "Custom").code,
 DOMException.ABORT_ERR, e.DATA_CLONE_ERR, Object.prototype.toString.call(e), String(e)]`),
    ["NotFoundError", "gone", 8, true, "Error", 0, 20, 25, "[object Error]", "NotFoundError: gone"],
  );
});

Deno.test("EventTarget calls listeners in order, once, with handleEvent, and removes them", async () => {
  assert.deepEqual(
    await guest(`const t = new EventTarget(); const log = [];
const f = (e) => log.push("f:" + e.type + ":" + (e.currentTarget === t) + ":" + e.eventPhase);
t.addEventListener("ping", f); t.addEventListener("ping", f);
t.addEventListener("ping", { handleEvent(e) { log.push("object:" + (this !== t)); } });
t.addEventListener("ping", () => log.push("once"), { once: true });
t.addEventListener("ping", () => log.push("capture"), true);
t.dispatchEvent(new Event("ping")); t.dispatchEvent(new Event("ping"));
t.removeEventListener("ping", f);
t.dispatchEvent(new Event("ping"));
log`),
    [
      "capture",
      "f:ping:true:2",
      "object:true",
      "once",
      "capture",
      "f:ping:true:2",
      "object:true",
      "capture",
      "object:true",
    ],
  );
});

Deno.test("dispatchEvent returns false when a listener cancels a cancelable event", async () => {
  assert.deepEqual(
    await guest(`const t = new EventTarget();
t.addEventListener("x", (e) => e.preventDefault());
t.addEventListener("p", (e) => e.preventDefault(), { passive: true });
const e = new Event("x", { cancelable: true });
let again; try { t.addEventListener("y", () => t.dispatchEvent(e)); t.dispatchEvent(new Event("y")); } catch (err) { again = err.name; }
[t.dispatchEvent(e), e.defaultPrevented, t.dispatchEvent(new Event("x")),
 t.dispatchEvent(new Event("p", { cancelable: true })), e.target === t, e.eventPhase, e.isTrusted]`),
    [false, true, true, true, true, 0, false],
  );
});

Deno.test("a listener that throws is reported to the global error event and the dispatch goes on", async () => {
  const done = await executeCode(`const log = [];
addEventListener("error", (e) => { log.push("reported " + e.error.message); if (log.length > 1) e.preventDefault(); });
const t = new EventTarget();
t.addEventListener("x", () => { throw new Error("boom"); });
t.addEventListener("x", () => log.push("second"));
t.dispatchEvent(new Event("x"));
t.dispatchEvent(new Event("x"));
log`);
  assert.deepEqual(done.result, ["reported boom", "second", "reported boom", "second"]);
  assert.equal(done.logs.length, 1);
  assert.equal(done.logs[0]!.level, "error");
  assert.match(done.logs[0]!.message, /^Uncaught Error: boom/);
});

Deno.test("AbortController aborts its signal once, with an AbortError by default", async () => {
  assert.deepEqual(
    await guest(`const c = new AbortController(); const s = c.signal; const log = [];
s.onabort = function (e) { log.push(["onabort", e.type, e.isTrusted, this === s]); };
s.addEventListener("abort", () => log.push("listener"));
const before = [s.aborted, s.reason];
c.abort(); c.abort("again");
let thrown; try { s.throwIfAborted(); } catch (e) { thrown = e === s.reason; }
const custom = new AbortController(); custom.abort("why");
let illegal; try { new AbortSignal(); } catch (e) { illegal = e instanceof TypeError; }
[before, s.aborted, s.reason.name, s.reason instanceof DOMException, log, thrown, custom.signal.reason, illegal]`),
    [
      [false, null],
      true,
      "AbortError",
      true,
      [["onabort", "abort", true, true], "listener"],
      true,
      "why",
      true,
    ],
  );
});

Deno.test("AbortSignal.abort() is aborted already and a listener with an aborted signal is never added", async () => {
  assert.deepEqual(
    await guest(`const s = AbortSignal.abort(new Error("no"));
const t = new EventTarget(); const log = [];
t.addEventListener("x", () => log.push("never"), { signal: s });
const c = new AbortController();
t.addEventListener("x", () => log.push("until abort"), { signal: c.signal });
t.dispatchEvent(new Event("x")); c.abort(); t.dispatchEvent(new Event("x"));
[s.aborted, s.reason.message, log]`),
    [true, "no", ["until abort"]],
  );
});

Deno.test("AbortSignal.any follows its sources, flattens dependents and fires after the source", async () => {
  assert.deepEqual(
    await guest(`const a = new AbortController(), b = new AbortController(); const log = [];
const any = AbortSignal.any([a.signal, b.signal]);
const nested = AbortSignal.any([any]);
a.signal.addEventListener("abort", () => log.push(["source", any.aborted, nested.aborted]));
any.addEventListener("abort", () => log.push("any"));
nested.addEventListener("abort", () => log.push("nested"));
a.abort("a first"); b.abort("b later");
const done = AbortSignal.any([new AbortController().signal, AbortSignal.abort("early")]);
[log, any.reason, nested.reason, done.aborted, done.reason, AbortSignal.any([]).aborted]`),
    [[["source", true, true], "any", "nested"], "a first", "a first", true, "early", false],
  );
});

Deno.test("AbortSignal.timeout aborts with a TimeoutError when its durable timer fires", async () => {
  using vm = new FetchVM();
  const paused = await vm.execute(`const s = AbortSignal.timeout(300);
const name = await new Promise((resolve) => { s.onabort = () => resolve(s.reason.name); });
[name, s.aborted, s.reason instanceof DOMException]`);
  let done = paused;
  for (let i = 0; done.type === "paused" && i < 10; i++) {
    const wait = done.timers![0]!.dueAt - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait + 2));
    done = await vm.apply({ type: "timers" });
  }
  assert.equal(done.type, "completed");
  assert.deepEqual(done.result, ["TimeoutError", true, true]);
});

Deno.test("AbortSignal.timeout runs on the host timers, whatever the script did to setTimeout; bad delays are TypeErrors", async () => {
  using vm = new FetchVM();
  const paused = await vm.execute(
    `let negative; try { AbortSignal.timeout(-1); } catch (e) { negative = e instanceof TypeError; }
setTimeout = undefined;
const s = AbortSignal.timeout(0);
await new Promise((resolve) => { s.onabort = resolve; });
[negative, s.reason.name]`,
  );
  const done = paused.type === "completed" ? paused : await vm.apply({ type: "timers" });
  assert.deepEqual(done.result, [true, "TimeoutError"]);
});

Deno.test("an AbortSignal.timeout still armed does not keep a task whose code has finished from completing", async () => {
  using vm = new FetchVM();
  const paused = await vm.execute(`const signal = AbortSignal.timeout(60_000);
const response = await fetch("https://fast.example/", { signal });
const value = await response.json();
setTimeout(() => {}, 0);
value`);
  assert.equal(paused.type, "paused");
  const done = await vm.deliver({
    id: paused.fetchRequest!.id,
    success: true,
    status: 200,
    data: 5,
  });
  assert.equal(done.type, "completed");
  assert.equal(done.result, 5);
});
