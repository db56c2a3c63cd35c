/**
 * The variables view of a paused task runs no guest code: proxies are skipped (their traps
 * never run) and host calls made while it is computed are refused, so inspecting a task
 * cannot create a request that a replay would not make.
 */
import assert from "node:assert/strict";
import { executeCode, type VMState } from "../lib/mod.ts";
import { driveCold, driveLive, ok, VARIANTS } from "../testing/engine_driver.ts";

const TRAPPED = `let trapCalls = 0;
const hit = () => { trapCalls++; fetch("https://x.example/phantom"); console.log("trap ran"); };
const trap = new Proxy({ a: 1 }, {
  ownKeys(target) { hit(); return Reflect.ownKeys(target); },
  getOwnPropertyDescriptor(target, key) { hit(); return Reflect.getOwnPropertyDescriptor(target, key); },
  get(target, key) { hit(); return target[key]; },
});
const revocable = Proxy.revocable([1, 2], { get() { hit(); return 0; } });
const holder = { inner: trap, list: [revocable.proxy] };
const response = await fetch("https://x.example/real");
const value = (await response.json()).v;
[value, trapCalls]`;

for (const variant of VARIANTS) {
  Deno.test(`[${variant}] the variables view skips proxies and makes no phantom request`, async () => {
    const paused = await executeCode(TRAPPED, { variant });
    assert.equal(paused.type, "paused");
    const state = paused.state as VMState;
    assert.deepEqual(paused.fetchRequests?.map((r) => r.url), ["https://x.example/real"]);
    assert.equal(state.pending.length, 1);
    assert.deepEqual(state.variables.trap, "[Proxy]");
    assert.deepEqual(state.variables.holder, { inner: "[Proxy]", list: ["[Proxy]"] });
    assert.deepEqual(paused.logs, []);
    for (const drive of [driveLive, driveCold]) {
      const run = await drive(TRAPPED, () => ok({ v: 7 }), { variant });
      assert.deepEqual(run.result, [7, 0], "no trap ran, live or replayed");
      assert.deepEqual(run.requests.map((r) => r.url), ["https://x.example/real"]);
      assert.deepEqual(run.logs, []);
    }
  });

  Deno.test(`[${variant}] Proxy still behaves as Proxy for the script`, async () => {
    const code = `const p = new Proxy({}, { get: (_, key) => "got " + String(key) });
let threw = false;
try { Proxy({}, {}); } catch (error) { threw = error instanceof TypeError; }
const { proxy, revoke } = Proxy.revocable({}, {});
revoke();
let revoked = false;
try { proxy.x; } catch (error) { revoked = error instanceof TypeError; }
[p.x, threw, revoked, Proxy.name, Proxy.length, typeof new Proxy(function () {}, {})]`;
    const run = await driveLive(code, () => ok({}), { variant });
    assert.deepEqual(run.result, ["got x", true, true, "Proxy", 2, "function"]);
  });
}
