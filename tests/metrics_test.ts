/** `GET /metrics` of a real server process after real work: Prometheus text, behind the token. */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { assertErrorResponse, startServer, stepper } from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";

const TOKEN = "metrics-test-token";
const lit = (value: unknown) => JSON.stringify(value);

/** The value of the sample `name` (with its labels, as written) in `text`. */
function sample(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

Deno.test("GET /metrics counts tasks, segments, fetches and times them", async (t) => {
  const upstream = startUpstream();
  const server = await startServer({ token: TOKEN, env: { FLOWSTATE_TOKEN: TOKEN } });
  const step = stepper(t, server);
  try {
    const code = `const a = await fetch(${lit(upstream.url("/number/1"))});
const b = await fetch(${lit(upstream.url("/status/500"))});
[a.status, b.status]`;
    const res = await server.request("/task", { body: { code, wait: 20_000 } });
    assertEquals((res.body as { task: { result: unknown } }).task.result, [200, 500]);
    await server.request("/task", { body: { code: "throw new Error('x')" } });

    await step("it needs the token", async () => {
      assertErrorResponse(await server.request("/metrics", { token: null }), 401);
    });

    await step("it is Prometheus text with the work done so far", async () => {
      const scrape = await server.request("/metrics");
      assertEquals(scrape.status, 200);
      assertMatch(scrape.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
      const text = scrape.text;
      assertEquals(sample(text, `flowstate_tasks{status="completed"}`), 1);
      assertEquals(sample(text, `flowstate_tasks{status="error"}`), 1);
      assertEquals(sample(text, `flowstate_segments_total{outcome="paused"}`), 2);
      assertEquals(sample(text, `flowstate_segments_total{outcome="completed"}`), 1);
      assertEquals(sample(text, `flowstate_segments_total{outcome="error"}`), 1);
      assertEquals(sample(text, `flowstate_fetches_total{outcome="ok"}`), 1);
      assertEquals(sample(text, `flowstate_fetches_total{outcome="http_error"}`), 1);
      assertEquals(sample(text, "flowstate_segment_duration_seconds_count"), 4);
      assertEquals(sample(text, "flowstate_fetch_cycle_seconds_count"), 2);
      assertEquals(
        sample(text, "flowstate_save_duration_seconds_count"),
        6,
        "2 creates, 4 commits",
      );
      for (const gauge of ["live_vms", "segment_queue_depth", "outbound_in_flight"]) {
        assert(sample(text, `flowstate_${gauge}`) !== undefined, `flowstate_${gauge} is there`);
      }
      assertMatch(text, /# TYPE flowstate_segment_duration_seconds histogram/);
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});
