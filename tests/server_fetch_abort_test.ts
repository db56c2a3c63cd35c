/**
 * `fetch(url, { signal })` on the real server process with a real upstream and real
 * SIGKILLs: a task that aborts a slow fetch gets the `AbortError`, the server closes the
 * outbound connection, the fetch view marks the fetch aborted, a kill at each pause gives
 * the same result, and an aborted fetch left to an outside worker is answered 409 on `/call`.
 */
import { assert, assertEquals } from "@std/assert";
import type { FetchLogView } from "../lib/service/task_types.ts";
import { startServer, waitFor } from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";

const lit = (value: unknown) => JSON.stringify(value);

/** Counts the journal entries of `type` in a task's journal file. */
async function journalCount(dir: string, id: string, type: string): Promise<number> {
  const text = await Deno.readTextFile(`${dir}/${id}.journal.jsonl`);
  return text.split("\n").filter((line) => line.startsWith(`{"type":${lit(type)}`)).length;
}

Deno.test("a task aborts a slow fetch with an AbortController when told to stop: it gets the AbortError, the upstream sees the connection closed, the fetch shows aborted", async () => {
  await using upstream = startUpstream();
  await using server = await startServer();
  await server.createTask({
    id: "abort",
    code: `const controller = new AbortController();
FlowState.waitForSignal("stop").then(() => controller.abort());
let outcome;
try {
  await fetch(${lit(upstream.url("/hold/abandoned"))}, { signal: controller.signal });
  outcome = "answered";
} catch (error) {
  outcome = [error.name, error instanceof DOMException];
}
const next = await (await fetch(${lit(upstream.url("/number/5"))})).json();
({ outcome, next: next.value })`,
  });
  const [held] = await upstream.waitForRequests("/hold/abandoned");
  const stop = await server.request("/signal", { body: { taskId: "abort", name: "stop" } });
  assertEquals(stop.status, 200);
  const done = await server.waitForTask("abort");
  assertEquals(done.status, "completed");
  assertEquals(done.result, { outcome: ["AbortError", true], next: 5 });
  await waitFor(() => held!.clientLeft === true, {
    message: () => "the upstream to see the aborted request's connection closed",
  });
  const fetches = done.fetches as FetchLogView[];
  assertEquals(fetches.map((f) => [f.url, f.status, f.aborted]), [
    [upstream.url("/hold/abandoned"), null, true],
    [upstream.url("/number/5"), 200, undefined],
  ]);
  assert(!Number.isNaN(Date.parse(fetches[0]!.abortedAt!)), "abortedAt is a date");
  upstream.release("abandoned", "late");
  assertEquals((await server.task("abort")).result, done.result);
});

Deno.test("SIGKILL at each pause of a task that aborts a fetch: the restarted server takes the same path to the same result, the abort journaled once", async () => {
  await using upstream = startUpstream();
  await using server = await startServer();
  await server.createTask({
    id: "killed",
    code: `const controller = new AbortController();
setTimeout(() => controller.abort(new Error("gave up")), 2000);
let outcome;
try {
  await fetch(${lit(upstream.url("/hold/never"))}, { signal: controller.signal });
  outcome = "answered";
} catch (error) {
  outcome = [error.name, error.message];
}
const after = await (await fetch(${lit(upstream.url("/hold/after"))})).json();
({ outcome, after: after.value })`,
  });
  // Pause 1: the slow fetch in flight, the abort's timer armed.
  await upstream.waitForRequests("/hold/never");
  await server.restart();
  // The restarted server sends the pending request again, unless the timer that aborts it
  // fell due first. Pause 2: past the abort, the next fetch in flight.
  await upstream.waitForRequests("/hold/after");
  const never = upstream.requestsTo("/hold/never");
  await waitFor(() => never.every((request) => request.clientLeft), {
    message: () => "the upstream to see every connection of the aborted request closed",
  });
  await server.restart();
  await upstream.waitForRequests("/hold/after", 2);
  upstream.release("after", 9);
  const done = await server.waitForTask("killed");
  assertEquals(done.result, { outcome: ["Error", "gave up"], after: 9 });
  assertEquals(await journalCount(server.statesDir, "killed", "abort"), 1);
  assertEquals(upstream.requestsTo("/hold/never").length, never.length, "not sent after the abort");
});

Deno.test("an external fetch aborted by AbortSignal.timeout: the task completes without it and POST /call for it is a 409", async () => {
  await using server = await startServer();
  const created = await server.createTask({
    id: "external",
    code: `try {
  await fetch("https://worker.invalid/approve", {
    external: true,
    signal: AbortSignal.timeout(500),
  });
  "answered";
} catch (error) {
  error.name;
}`,
  });
  const done = await server.waitForTask("external");
  assertEquals(done.result, "TimeoutError");
  const id = created.fetchRequests?.[0]?.id ?? done.fetches[0]!.id;
  assertEquals(done.fetches[0]!.aborted, true);
  const late = await server.call("external", { id, success: true, status: 200, data: 1 });
  assertEquals(late.status, 409);
});

Deno.test("a fetch with AbortSignal.timeout and a retry loop over mirrors survives SIGKILL at every fetch: same result, hung connections closed", async () => {
  const code = await Deno.readTextFile(new URL("fixtures/fetch_timeout_retry.js", import.meta.url));
  const run = async (killed: boolean) => {
    await using upstream = startUpstream();
    await using server = await startServer();
    // Two mirrors that hang, then one that answers.
    const mirrors = [
      upstream.url("/hold/mirror-a"),
      upstream.url("/hold/mirror-b"),
      upstream.url("/number/7"),
    ];
    await server.createTask({
      id: "mirrors",
      code,
      // Ample for the mirror that answers, on a loaded machine too.
      input: { mirrors, timeoutMs: 3000, backoffMs: 100 },
    });
    for (const key of ["a", "b"]) {
      await upstream.waitForRequests(`/hold/mirror-${key}`);
      // Killed while the attempt is out and its timeout armed; the timer survives the restart.
      if (killed) await server.restart();
    }
    const done = await server.waitForTask("mirrors");
    for (const key of ["a", "b"]) {
      const requests = upstream.requestsTo(`/hold/mirror-${key}`);
      await waitFor(() => requests.every((r) => r.clientLeft), {
        message: () => `every request to mirror ${key} to be cancelled`,
      });
    }
    return { done, aborts: await journalCount(server.statesDir, "mirrors", "abort"), mirrors };
  };
  const reference = await run(false);
  const [a, b, c] = reference.mirrors;
  const expected = {
    document: { value: 7 },
    attempts: [
      { url: a, outcome: "TimeoutError" },
      { url: b, outcome: "TimeoutError" },
      { url: c, outcome: "ok" },
    ],
  };
  assertEquals(reference.done.result, expected);
  assertEquals(reference.aborts, 2);
  assertEquals(reference.done.fetches.length, 3);
  const killed = await run(true);
  const paths = (result: unknown) => JSON.stringify(result).replaceAll(/:\d+\//g, ":PORT/");
  assertEquals(killed.done.status, "completed");
  assertEquals(paths(killed.done.result), paths(expected));
  assertEquals(killed.aborts, 2);
});

Deno.test("a fork of a task that aborted a fetch replays the abort under the request's new id and runs on", async () => {
  await using upstream = startUpstream();
  await using server = await startServer();
  await server.createTask({
    id: "forked-abort",
    code: `const controller = new AbortController();
const held = fetch(${lit(upstream.url("/hold/forked"))}, { signal: controller.signal });
const first = await (await fetch(${lit(upstream.url("/number/1"))})).json();
controller.abort();
const caught = await held.catch((error) => error.name);
const second = await (await fetch(${lit(upstream.url("/number/2"))})).json();
[caught, first.value, second.value]`,
  });
  const original = await server.waitForTask("forked-abort");
  assertEquals(original.result, ["AbortError", 1, 2]);
  const res = await server.request("/fork", {
    body: { taskId: "forked-abort", id: "the-fork", atFetch: 2 },
  });
  assertEquals(res.status, 200);
  const fork = await server.waitForTask("the-fork");
  assertEquals(fork.result, original.result);
  const aborted = fork.fetches.filter((f) => f.aborted).map((f) => f.id);
  assertEquals(aborted.length, 1);
  assert(aborted[0] !== original.fetches[0]!.id, "the aborted request has the fork's own id");
});
