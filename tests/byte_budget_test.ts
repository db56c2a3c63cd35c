import { assertEquals } from "@std/assert";
import { ByteBudget } from "../lib/outbound/byte_budget.ts";

const never = new AbortController().signal;

/** Whether `promise` has settled after pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => done = true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  return done;
}

Deno.test("a reservation over the total waits until bytes are released", async () => {
  const budget = new ByteBudget(10, 100);
  const first = budget.open("a");
  const second = budget.open("b");
  assertEquals(await first.reserve(8, never), true);
  const waiting = second.reserve(5, never);
  assertEquals(await settled(waiting), false);
  first.release();
  assertEquals(await waiting, true);
  assertEquals(budget.used, 5);
  second.release();
  assertEquals(budget.used, 0);
});

Deno.test("the oldest response in flight always proceeds, so readers never deadlock", async () => {
  const budget = new ByteBudget(10, 100);
  const oldest = budget.open("a");
  const younger = budget.open("b");
  assertEquals(await younger.reserve(9, never), true);
  // Over the total, but the oldest hold may always read on.
  assertEquals(await oldest.reserve(50, never), true);
  assertEquals(budget.used, 59);
  const blocked = younger.reserve(1, never);
  assertEquals(await settled(blocked), false);
  oldest.release();
  // Now the younger one is the oldest.
  assertEquals(await blocked, true);
  younger.release();
});

Deno.test("a task over its own share waits while other tasks read on", async () => {
  const budget = new ByteBudget(100, 10);
  const first = budget.open("greedy");
  const second = budget.open("greedy");
  const other = budget.open("other");
  assertEquals(await first.reserve(10, never), true);
  const waiting = second.reserve(1, never);
  assertEquals(await settled(waiting), false);
  assertEquals(await other.reserve(10, never), true);
  first.release();
  assertEquals(await waiting, true);
  second.release();
  other.release();
  assertEquals(budget.used, 0);
});

Deno.test("an aborted reservation resolves false and takes nothing", async () => {
  const budget = new ByteBudget(10, 10);
  const first = budget.open("a");
  const second = budget.open("b");
  await first.reserve(10, never);
  const abort = new AbortController();
  const waiting = second.reserve(5, abort.signal);
  abort.abort();
  assertEquals(await waiting, false);
  first.release();
  second.release();
  assertEquals(budget.used, 0);
});
