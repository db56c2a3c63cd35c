/**
 * `GET /events` and waiting for a task, against a real server process and a real
 * upstream: every transition in order, filters, `Last-Event-ID` resume, `?wait=`.
 */
import { assert, assertEquals } from "@std/assert";
import type { TaskTransition } from "../lib/service/task_events.ts";
import { assertErrorResponse, startServer, stepper } from "../testing/server_process.ts";
import { type SseEvent, SseStream } from "../testing/sse.ts";
import { startUpstream } from "../testing/upstream.ts";

const lit = (value: unknown) => JSON.stringify(value);

/** Guest code that fetches `/number/1` to `/number/<n>` one after the other and sums them. */
function sequentialFetches(url: (path: string) => string, n: number): string {
  const urls = Array.from({ length: n }, (_, i) => url(`/number/${i + 1}`));
  return `let sum = 0;
for (const url of ${lit(urls)}) sum += (await (await fetch(url)).json()).value;
sum`;
}

const parse = (event: SseEvent) => JSON.parse(event.data) as TaskTransition;

Deno.test("GET /events streams every transition of a 5-fetch task in order", async (t) => {
  const upstream = startUpstream();
  const server = await startServer();
  const step = stepper(t, server);
  const origin = server.origin;
  try {
    await step(
      "an SSE client sees created, then paused/resumed five times, then completed",
      async () => {
        const stream = await SseStream.open(`${origin}/events?id=five`);
        assertEquals(
          stream.response.headers.get("content-type"),
          "text/event-stream; charset=utf-8",
        );
        const task = await server.createTask({
          id: "five",
          code: sequentialFetches(upstream.url, 5),
        });
        assertEquals(task.id, "five");
        await stream.until((events) => events.some((e) => e.event === "completed"));
        await stream.close();
        const types = stream.events.map((e) => e.event);
        assertEquals(types, [
          "created",
          ...Array.from({ length: 5 }, () => ["paused", "resumed"]).flat(),
          "completed",
        ]);
        const transitions = stream.events.map(parse);
        for (const [i, event] of transitions.entries()) {
          assertEquals(event.taskId, "five");
          assertEquals(stream.events[i]!.id, event.id);
          if (i > 0) assertEquals(event.seq, transitions[i - 1]!.seq + 1, "no other task's events");
        }
        const pauses = transitions.filter((e) => e.type === "paused");
        assertEquals(
          pauses.map((e) => e.task.fetchRequest?.url),
          [1, 2, 3, 4, 5].map((n) => upstream.url(`/number/${n}`)),
          "each pause says what it waits for",
        );
        assertEquals(transitions.at(-1)!.task.result, 15);
        assertEquals(transitions.at(-1)!.status, "completed");
      },
    );

    await step("Last-Event-ID replays what followed that event, filters apply", async () => {
      const all = await SseStream.open(`${origin}/events?lastEventId=none`);
      await all.until((events) => events.some((e) => e.event === "completed"));
      await all.close();
      const created = all.events.find((e) => e.event === "created")!;
      const resumed = await SseStream.open(`${origin}/events?status=completed,paused`, {
        "last-event-id": created.id,
      });
      await resumed.until((events) => events.some((e) => e.event === "completed"));
      await resumed.close();
      assertEquals(resumed.events.map((e) => e.event), [...Array(5).fill("paused"), "completed"]);
    });

    await step("a task that errors ends its stream of transitions with error", async () => {
      const stream = await SseStream.open(`${origin}/events?id=fails`);
      await server.createTask({ id: "fails", code: `throw new Error("no")` });
      await stream.until((events) => events.some((e) => e.event === "error"));
      await stream.close();
      assertEquals(stream.events.map((e) => e.event), ["created", "error"]);
      assertEquals(parse(stream.events[1]!).task.error?.message, "no");
    });

    await step("bad filters are 400", async () => {
      assertErrorResponse(await server.request("/events?status=sleeping"), 400);
      assertErrorResponse(await server.request("/events?id=../x"), 400);
    });

    await step("a graceful stop ends open streams instead of waiting for them", async () => {
      const stream = await SseStream.open(`${origin}/events`);
      const status = await server.stop();
      await stream.finished();
      assertEquals(status.code, 0);
      assert(stream.ended);
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});

Deno.test("GET /status?wait= and POST /task with wait answer when the task finishes", async (t) => {
  const upstream = startUpstream();
  const server = await startServer();
  const step = stepper(t, server);
  try {
    await step("POST /task with wait answers with the finished task", async () => {
      const res = await server.request("/task", {
        body: { id: "waited", code: sequentialFetches(upstream.url, 3), wait: 20_000 },
      });
      assertEquals(res.status, 200);
      const task = (res.body as { task: Record<string, unknown> }).task;
      assertEquals([task.status, task.result, task.pauseCount], ["completed", 6, 3]);
      assert(!("logs" in task) && !("fetches" in task), "the view of POST /task, not the detail");
    });

    await step(
      "GET /status?wait= answers at completion, or with the current view after ms",
      async () => {
        const held = await server.createTask({
          id: "held",
          code: `(await (await fetch(${lit(upstream.url("/hold/w"))})).json()).value`,
        });
        assertEquals(held.status, "paused");
        const early = await server.request("/status?id=held&wait=50");
        assertEquals((early.body as { task: { status: string } }).task.status, "paused");
        const waiting = server.request("/status?id=held&wait=20000");
        await upstream.waitForRequests("/hold/w");
        upstream.release("w", 7);
        const done = await waiting;
        const task = (done.body as { task: { status: string; result: unknown } }).task;
        assertEquals([task.status, task.result], ["completed", 7]);
      },
    );

    await step("a bad wait is 400", async () => {
      assertErrorResponse(await server.request("/status?id=held&wait=-1"), 400);
      assertErrorResponse(await server.request("/status?id=held&wait=9999999"), 400);
      assertErrorResponse(
        await server.request("/task", { body: { code: "1", wait: "soon" } }),
        400,
      );
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});
