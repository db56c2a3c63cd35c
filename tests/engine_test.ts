/**
 * Core behaviour of the engine, for both QuickJS builds: the FetchFlow README examples,
 * pausing anywhere in the guest's control flow, and what results look like.
 */
import assert from "node:assert/strict";
import { executeCode, ExecutionError, FetchVM, resumeExecution } from "../lib/mod.ts";
import {
  type Answer,
  driveCold,
  driveLive,
  failed,
  ok,
  rejectsWithKind,
  requestShape,
  type Responder,
  VARIANTS,
  viaJson,
} from "../testing/engine_driver.ts";

/**
 * Runs `code` once on a live VM and once cold (JSON and a fresh VM at every pause), checks
 * both agree on the result and the requests, and returns the live run.
 */
async function runBothWays(
  variant: (typeof VARIANTS)[number],
  code: string,
  respond: Responder,
) {
  const live = await driveLive(code, respond, { variant });
  const cold = await driveCold(code, respond, { variant });
  assert.deepEqual(cold.result, live.result, "a cold run gives the live run's result");
  assert.deepEqual(requestShape(cold.requests), requestShape(live.requests));
  return live;
}

/** Answers by URL from a table; an unknown URL fails the test. */
function byUrl(table: Record<string, Answer>): Responder {
  return (request) => {
    const answer = table[request.url];
    if (!answer) throw new Error(`Unexpected request to ${request.url}`);
    return answer;
  };
}

for (const variant of VARIANTS) {
  // --- the FetchFlow README examples ---------------------------------------------------------

  Deno.test(`[${variant}] README basic: a fetch pauses once, resuming gives the title`, async () => {
    const code = `const r = await fetch("https://jsonplaceholder.example/todos/1");
const d = await r.json();
d.title`;
    const paused = await executeCode(code, { variant });
    assert.equal(paused.type, "paused");
    assert.equal("result" in paused, false);
    assert.equal(paused.fetchRequest?.url, "https://jsonplaceholder.example/todos/1");
    assert.equal(paused.fetchRequest?.options.method, "GET");
    assert.deepEqual(paused.fetchRequests, [paused.fetchRequest]);
    assert.deepEqual(paused.state?.pending, [paused.fetchRequest?.id]);

    const done = await resumeExecution(viaJson(paused.state!), {
      id: paused.fetchRequest!.id,
      success: true,
      status: 200,
      statusText: "OK",
      data: { userId: 1, id: 1, title: "delectus aut autem", completed: false },
    });
    assert.equal(done.type, "completed");
    assert.equal(done.result, "delectus aut autem");
    assert.equal(done.fetchRequest, undefined);
    assert.deepEqual(done.state?.pending, []);
  });

  Deno.test(`[${variant}] README: a last expression that is a promise ("result.json();") is awaited`, async () => {
    const run = await runBothWays(
      variant,
      `const result = await fetch("https://api.example/data");\nresult.json();`,
      () => ok({ items: [1, 2, 3], total: 3 }),
    );
    assert.equal(run.pauses.length, 1);
    assert.deepEqual(run.result, { items: [1, 2, 3], total: 3 });
  });

  Deno.test(`[${variant}] README: three fetches in a loop pause three times, then complete`, async () => {
    const code = `const names = [];
for (const id of [1, 2, 3]) {
  const response = await fetch("https://api.example/users/" + id);
  const user = await response.json();
  names.push(user.name);
}
names`;
    const run = await runBothWays(variant, code, (request) => {
      const id = request.url.split("/").pop();
      return ok({ id: Number(id), name: `user-${id}` });
    });
    assert.equal(run.pauses.length, 3);
    for (const pause of run.pauses) assert.equal(pause.fetchRequests?.length, 1);
    assert.deepEqual(run.requests.map((r) => r.url), [
      "https://api.example/users/1",
      "https://api.example/users/2",
      "https://api.example/users/3",
    ]);
    assert.deepEqual(run.result, ["user-1", "user-2", "user-3"]);
  });

  Deno.test(`[${variant}] README processStep REPL: later execute() calls share globals and return the last expression`, async () => {
    using vm = new FetchVM({ variant });
    const first = await vm.execute("let counter = 0;");
    assert.equal(first.type, "completed");
    assert.equal("result" in first, false, "a declaration has no value");
    const second = await vm.execute("counter++; counter");
    assert.equal(second.type, "completed");
    assert.equal(second.result, 1);
    const third = await vm.execute("counter++");
    assert.equal(third.result, 1, "postfix ++ evaluates to the old value");
    const fourth = await vm.execute("counter");
    assert.equal(fourth.result, 2);
    const evals = fourth.state!.journal.filter((e) => e.type === "eval");
    assert.deepEqual(evals.map((e) => e.type === "eval" ? e.code : null), [
      undefined,
      "counter++; counter",
      "counter++",
      "counter",
    ]);
  });

  Deno.test(`[${variant}] README: a REPL step can pause on fetch and be resumed on the same VM`, async () => {
    using vm = new FetchVM({ variant });
    await vm.execute("let total = 10;");
    const paused = await vm.execute(
      `total += (await (await fetch("https://api.example/n")).json()).n; total`,
    );
    assert.equal(paused.type, "paused");
    const done = await vm.resume(paused.state!, { ...ok({ n: 5 }), id: paused.fetchRequest!.id });
    assert.equal(done.result, 15);
    const again = await vm.execute("total * 2");
    assert.equal(again.result, 30);
  });

  Deno.test(`[${variant}] README hello world completes at once without pausing`, async () => {
    const done = await executeCode(`"Hello, " + "world"`, { variant });
    assert.equal(done.type, "completed");
    assert.equal(done.result, "Hello, world");
    assert.equal(done.fetchRequest, undefined);
    assert.equal(done.fetchRequests, undefined);
    assert.deepEqual(done.state?.pending, []);
    assert.equal(done.state?.journal.some((e) => e.type === "request"), false);
  });

  // --- pausing anywhere --------------------------------------------------------------------

  Deno.test(`[${variant}] pauses inside a for loop and resumes the loop where it was`, async () => {
    const code = `let sum = 0;
for (let i = 0; i < 4; i++) {
  const d = await (await fetch("https://n.example/" + i)).json();
  sum += d.n * (i + 1);
}
sum`;
    const run = await runBothWays(variant, code, (request) => {
      return ok({ n: Number(request.url.split("/").pop()) + 1 });
    });
    assert.equal(run.pauses.length, 4);
    // n = i + 1, weighted by (i + 1): 1 + 4 + 9 + 16
    assert.equal(run.result, 30);
  });

  Deno.test(`[${variant}] pauses inside a while loop driven by the responses`, async () => {
    const code = `let page = 1;
const items = [];
while (page !== null) {
  const d = await (await fetch("https://pages.example/?page=" + page)).json();
  items.push(...d.items);
  page = d.next;
}
items`;
    const pages: Record<string, Answer> = {
      "https://pages.example/?page=1": ok({ items: ["a", "b"], next: 2 }),
      "https://pages.example/?page=2": ok({ items: ["c"], next: 3 }),
      "https://pages.example/?page=3": ok({ items: [], next: null }),
    };
    const run = await runBothWays(variant, code, byUrl(pages));
    assert.equal(run.pauses.length, 3);
    assert.deepEqual(run.result, ["a", "b", "c"]);
  });

  Deno.test(`[${variant}] pauses inside nested functions`, async () => {
    const code = `async function outer(x) {
  async function inner(y) {
    const d = await (await fetch("https://n.example/" + y)).json();
    return d.v;
  }
  const a = await inner(x);
  const b = await inner(x + 1);
  return [a, b, a + b];
}
await outer(20)`;
    const run = await runBothWays(variant, code, (request) => {
      return ok({ v: Number(request.url.split("/").pop()) * 2 });
    });
    assert.deepEqual(requestShape(run.requests).map((r) => r.url), [
      "https://n.example/20",
      "https://n.example/21",
    ]);
    assert.deepEqual(run.result, [40, 42, 82]);
  });

  Deno.test(`[${variant}] pauses inside a closure that keeps its captured state`, async () => {
    const code = `function makeCounter(start) {
  let count = start;
  return async () => {
    const d = await (await fetch("https://c.example/" + count)).json();
    count += d.inc;
    return count;
  };
}
const next = makeCounter(100);
const seen = [await next(), await next(), await next()];
seen`;
    const run = await runBothWays(variant, code, (_request, index) => ok({ inc: index + 1 }));
    assert.deepEqual(run.requests.map((r) => r.url), [
      "https://c.example/100",
      "https://c.example/101",
      "https://c.example/103",
    ]);
    assert.deepEqual(run.result, [101, 103, 106]);
  });

  Deno.test(`[${variant}] pauses inside class methods, async methods and getters returning promises`, async () => {
    const code = `class Api {
  #base;
  constructor(base) { this.#base = base; }
  async get(path) {
    const r = await fetch(this.#base + path);
    return r.json();
  }
  get user() { return this.get("/user"); }
  static async connect() {
    const cfg = await (await fetch("https://config.example/")).json();
    return new Api(cfg.base);
  }
}
const api = await Api.connect();
const user = await api.user;
const posts = await api.get("/posts?user=" + user.id);
({ name: user.name, titles: posts.map((p) => p.title) })`;
    const run = await runBothWays(
      variant,
      code,
      byUrl({
        "https://config.example/": ok({ base: "https://api.example" }),
        "https://api.example/user": ok({ id: 7, name: "Ada" }),
        "https://api.example/posts?user=7": ok([{ title: "one" }, { title: "two" }]),
      }),
    );
    assert.equal(run.pauses.length, 3);
    assert.deepEqual(run.result, { name: "Ada", titles: ["one", "two"] });
  });

  Deno.test(`[${variant}] try/catch/finally: a failed fetch rejects with a TypeError the guest catches`, async () => {
    const code = `const trace = [];
try {
  trace.push("try");
  await fetch("https://down.example/");
  trace.push("not reached");
} catch (e) {
  trace.push(e instanceof TypeError, e.name, e.message.includes("boom"));
  const r = await fetch("https://fallback.example/");
  trace.push("catch:" + (await r.json()).v);
} finally {
  const r = await fetch("https://cleanup.example/");
  trace.push("finally:" + (await r.json()).v);
}
trace`;
    const run = await runBothWays(
      variant,
      code,
      byUrl({
        "https://down.example/": failed("boom"),
        "https://fallback.example/": ok({ v: "fb" }),
        "https://cleanup.example/": ok({ v: "done" }),
      }),
    );
    assert.equal(run.pauses.length, 3);
    assert.deepEqual(run.result, ["try", true, "TypeError", true, "catch:fb", "finally:done"]);
  });

  Deno.test(`[${variant}] an uncaught failed fetch fails the execution with the TypeError`, async () => {
    const paused = await executeCode(`await fetch("https://down.example/")`, { variant });
    const error = await rejectsWithKind(
      resumeExecution(viaJson(paused.state!), { ...failed("boom"), id: paused.fetchRequest!.id }),
      "exception",
    );
    assert.equal(error.guestName, "TypeError");
    assert.match(error.message, /boom/);
  });

  Deno.test(`[${variant}] pauses inside a .then chain`, async () => {
    const code = `await fetch("https://a.example/")
  .then((r) => r.json())
  .then((d) => fetch("https://b.example/" + d.next))
  .then((r) => r.json())
  .then((d) => d.v + "!")`;
    const run = await runBothWays(
      variant,
      code,
      byUrl({
        "https://a.example/": ok({ next: "x" }),
        "https://b.example/x": ok({ v: "chained" }),
      }),
    );
    assert.equal(run.pauses.length, 2);
    assert.equal(run.result, "chained!");
  });

  Deno.test(`[${variant}] pauses inside a template literal`, async () => {
    const code = '`a is ${(await (await fetch("https://t.example/")).json()).a}, twice`';
    const run = await runBothWays(variant, code, () => ok({ a: 7 }));
    assert.equal(run.pauses.length, 1);
    assert.equal(run.result, "a is 7, twice");
  });

  Deno.test(`[${variant}] pauses inside a destructuring declaration`, async () => {
    const code = `const { a, b: [first, ...rest], c = "default" } =
  await (await fetch("https://d.example/")).json();
({ a, first, rest, c })`;
    const run = await runBothWays(variant, code, () => ok({ a: 1, b: [2, 3, 4] }));
    assert.deepEqual(run.result, { a: 1, first: 2, rest: [3, 4], c: "default" });
  });

  Deno.test(`[${variant}] Promise.all pauses with both requests pending; answers in reverse order`, async () => {
    const code = `const [x, y] = await Promise.all([
  fetch("https://a.example/"),
  fetch("https://b.example/"),
]);
[(await x.json()).n, (await y.json()).n]`;
    const paused = await executeCode(code, { variant });
    assert.equal(paused.type, "paused");
    assert.equal(paused.fetchRequests?.length, 2);
    assert.deepEqual(paused.fetchRequest, paused.fetchRequests![0]);
    const [a, b] = paused.fetchRequests!;
    assert.equal(a!.url, "https://a.example/");
    assert.equal(b!.url, "https://b.example/");
    assert.notEqual(a!.id, b!.id);
    assert.deepEqual(paused.state?.pending, [a!.id, b!.id]);

    const afterB = await resumeExecution(viaJson(paused.state!), { ...ok({ n: 2 }), id: b!.id });
    assert.equal(afterB.type, "paused");
    assert.deepEqual(afterB.fetchRequests?.map((r) => r.id), [a!.id]);
    assert.deepEqual(afterB.state?.pending, [a!.id]);
    const done = await resumeExecution(viaJson(afterB.state!), { ...ok({ n: 1 }), id: a!.id });
    assert.equal(done.type, "completed");
    assert.deepEqual(done.result, [1, 2]);

    // the same on one live VM, answering the last pending request each time
    const live = await driveLive(code, (r) => ok({ n: r.url.includes("a.") ? 1 : 2 }), {
      variant,
      pick: "last",
    });
    assert.deepEqual(live.answered.map((r) => r.url), ["https://b.example/", "https://a.example/"]);
    assert.deepEqual(live.result, [1, 2]);
  });

  Deno.test(`[${variant}] Promise.race settles with the first answered request; the task completes once the other is answered too`, async () => {
    const code = `await Promise.race([
  fetch("https://slow.example/").then((r) => r.json()).then((d) => "slow:" + d.v),
  fetch("https://fast.example/").then((r) => r.json()).then((d) => "fast:" + d.v),
])`;
    const respond = (request: { url: string }) => ok({ v: request.url.includes("fast") ? 1 : 2 });
    const live = await driveLive(code, respond, { variant, pick: "last" });
    assert.equal(live.pauses.length, 2);
    assert.equal(live.pauses[0]!.fetchRequests?.length, 2);
    assert.equal(live.pauses[1]!.fetchRequests?.length, 1);
    assert.equal(live.result, "fast:1");
    const cold = await driveCold(code, respond, { variant, pick: "last" });
    assert.equal(cold.result, "fast:1");
    const slowFirst = await driveCold(code, respond, { variant, pick: "first" });
    assert.equal(slowFirst.result, "slow:2");
  });

  Deno.test(`[${variant}] Promise.allSettled reports one failed fetch among successes`, async () => {
    const code = `const settled = await Promise.allSettled([
  fetch("https://ok.example/").then((r) => r.json()),
  fetch("https://bad.example/"),
  fetch("https://missing.example/").then((r) => r.status),
]);
settled.map((s) => s.status === "fulfilled"
  ? ["fulfilled", s.value]
  : ["rejected", s.reason.name, s.reason.message.includes("connection refused")])`;
    const run = await runBothWays(
      variant,
      code,
      byUrl({
        "https://ok.example/": ok({ fine: true }),
        "https://bad.example/": failed("connection refused"),
        "https://missing.example/": { success: false, status: 404, statusText: "Not Found" },
      }),
    );
    assert.equal(run.pauses[0]!.fetchRequests?.length, 3);
    assert.deepEqual(run.result, [
      ["fulfilled", { fine: true }],
      ["rejected", "TypeError", true],
      ["fulfilled", 404],
    ]);
  });

  // --- top-level await and results -----------------------------------------------------------

  Deno.test(`[${variant}] an undefined result is absent from the result`, async () => {
    for (const code of ["const x = 1;", "undefined", "void 0", "(() => {})()"]) {
      const done = await executeCode(code, { variant });
      assert.equal(done.type, "completed", code);
      assert.equal("result" in done, false, code);
    }
    const run = await driveCold(
      `const r = await fetch("https://x.example/"); await r.json(); undefined`,
      () => ok({ a: 1 }),
      { variant },
    );
    assert.equal(run.final.type, "completed");
    assert.equal("result" in run.final, false);
  });

  Deno.test(`[${variant}] null, numbers, strings, booleans and arrays are returned as JSON values`, async () => {
    const cases: [string, unknown][] = [
      ["null", null],
      ["42", 42],
      ["-3.5", -3.5],
      ["0.1 + 0.2", 0.1 + 0.2],
      ["1e21", 1e21],
      ["'text'", "text"],
      ["false", false],
      ["[1, 'two', [3], null, { four: 4 }]", [1, "two", [3], null, { four: 4 }]],
      ["[]", []],
    ];
    for (const [code, expected] of cases) {
      const done = await executeCode(code, { variant });
      assert.equal("result" in done, true, code);
      assert.deepEqual(done.result, expected, code);
    }
  });

  Deno.test(`[${variant}] a result survives JSON.stringify with JSON semantics`, async () => {
    const done = await executeCode(
      `({ n: 1, s: "é\\u{1F600}", nested: { arr: [1, null, true] }, gone: undefined, nan: NaN,
  when: new Date(0), fn() {}, list: [undefined, () => 1] })`,
      { variant },
    );
    const expected = {
      n: 1,
      s: "é\u{1F600}",
      nested: { arr: [1, null, true] },
      nan: null,
      when: "1970-01-01T00:00:00.000Z",
      list: [null, null],
    };
    assert.deepEqual(done.result, expected);
    assert.deepEqual(JSON.parse(JSON.stringify(done)).result, expected);
    assert.deepEqual(viaJson(done.state), done.state);
  });

  Deno.test(`[${variant}] a BigInt result fails with kind "exception" and says why`, async () => {
    const error = await rejectsWithKind(executeCode("10n ** 20n", { variant }), "exception");
    assert.ok(error instanceof ExecutionError);
    assert.match(error.message, /JSON/);
    assert.match(error.message, /BigInt/);
  });

  Deno.test(`[${variant}] a cyclic result fails with kind "exception" and says why`, async () => {
    const error = await rejectsWithKind(
      executeCode("const a = { name: 'a' }; a.self = a; a", { variant }),
      "exception",
    );
    assert.match(error.message, /JSON/);
    assert.match(error.message, /circular/i);
  });

  Deno.test(`[${variant}] a non-serializable result after a pause fails on resume`, async () => {
    const paused = await executeCode(
      `const d = await (await fetch("https://x.example/")).json(); BigInt(d.n)`,
      { variant },
    );
    const error = await rejectsWithKind(
      resumeExecution(viaJson(paused.state!), { ...ok({ n: 5 }), id: paused.fetchRequest!.id }),
      "exception",
    );
    assert.match(error.message, /BigInt/);
  });

  Deno.test(`[${variant}] globals given in the options are visible to the code and survive a cold resume`, async () => {
    const code =
      `const r = await fetch(input.url); [input.factor, (await r.json()).n * input.factor]`;
    const options = { variant, globals: { input: { url: "https://g.example/", factor: 3 } } };
    const live = await driveLive(code, () => ok({ n: 4 }), options);
    const cold = await driveCold(code, () => ok({ n: 4 }), options);
    assert.equal(live.requests[0]!.url, "https://g.example/");
    assert.deepEqual(live.result, [3, 12]);
    assert.deepEqual(cold.result, [3, 12]);
  });

  Deno.test(`[${variant}] a script waiting on a promise that never settles fails with kind "deadlock"`, async () => {
    await rejectsWithKind(executeCode("await new Promise(() => {})", { variant }), "deadlock");
  });
}
