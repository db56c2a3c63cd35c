/**
 * A task's retry policy against a real server process and a real flaky upstream: the
 * server retries a failed fetch itself (backoff, `Retry-After`) before the guest sees it,
 * and every attempt is in the fetch's history.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { assertErrorResponse, freePort, startServer, stepper } from "../testing/server_process.ts";
import { isRetryable } from "../lib/outbound/mod.ts";

/**
 * An upstream whose `/flaky/<key>?fail=<n>&status=<code>[&retryAfter=<s>]` answers `code`
 * (with `Retry-After` when given) to its first `n` requests for `key`, then 200 `{ value }`.
 */
function startFlaky() {
  const seen = new Map<string, { at: number; key: string | null }[]>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const url = new URL(req.url);
    const key = url.pathname;
    const list = seen.get(key) ?? [];
    list.push({ at: performance.now(), key: req.headers.get("idempotency-key") });
    seen.set(key, list);
    const fail = Number(url.searchParams.get("fail") ?? 0);
    if (list.length <= fail) {
      const headers = new Headers();
      const retryAfter = url.searchParams.get("retryAfter");
      if (retryAfter !== null) headers.set("retry-after", retryAfter);
      return new Response("busy", { status: Number(url.searchParams.get("status")), headers });
    }
    return Response.json({ value: list.length });
  });
  return {
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    requests: (path: string) => seen.get(path) ?? [],
    close: () => server.shutdown(),
  };
}

const fetchStatus = (url: string) =>
  `const r = await fetch(${JSON.stringify(url)}); ({ status: r.status, body: await r.text() })`;

interface Attempt {
  at: string;
  status?: number;
  error?: string;
  retryInMs?: number;
}

Deno.test("a task's retry policy retries its failed fetches before the guest sees them", async (t) => {
  const upstream = startFlaky();
  const server = await startServer();
  const step = stepper(t, server);
  const attemptsOf = async (id: string): Promise<Attempt[] | undefined> =>
    ((await server.task(id)).fetches[0] as { attempts?: Attempt[] }).attempts;
  const run = async (id: string, code: string, retry?: unknown) => {
    const res = await server.request("/task", {
      body: { id, code, wait: 20_000, ...(retry ? { retry } : {}) },
    });
    assertEquals(res.status, 200, res.text);
    return (res.body as { task: { status: string; result: unknown } }).task;
  };
  try {
    await step(
      "two 503s then a 200: the guest sees the 200, the history three attempts",
      async () => {
        const task = await run("flaky", fetchStatus(upstream.url("/a?fail=2&status=503")), {
          attempts: 4,
          backoffMs: 20,
          maxBackoffMs: 1000,
        });
        assertEquals(task.result, { status: 200, body: `{"value":3}` });
        const attempts = await attemptsOf("flaky");
        assertEquals(attempts?.map((a) => [a.status, a.retryInMs]), [
          [503, 20],
          [503, 40],
          [200, undefined],
        ]);
        const requests = upstream.requests("/a");
        assertEquals(requests.length, 3);
        assert(new Set(requests.map((r) => r.key)).size === 1, "one Idempotency-Key for all");
      },
    );

    await step("without a policy the first failure goes to the guest", async () => {
      const task = await run("plain", fetchStatus(upstream.url("/b?fail=2&status=503")));
      assertEquals(task.result, { status: 503, body: "busy" });
      assertEquals(await attemptsOf("plain"), undefined);
      assertEquals(upstream.requests("/b").length, 1);
    });

    await step("only the listed failures are retried", async () => {
      const task = await run("only-429", fetchStatus(upstream.url("/c?fail=1&status=503")), {
        on: ["429"],
      });
      assertEquals(task.result, { status: 503, body: "busy" });
      assertEquals((await attemptsOf("only-429"))?.length, 1);
    });

    await step("attempts run out: the guest sees the last failure", async () => {
      const task = await run("spent", fetchStatus(upstream.url("/d?fail=5&status=500")), {
        attempts: 2,
        backoffMs: 10,
      });
      assertEquals(task.result, { status: 500, body: "busy" });
      assertEquals((await attemptsOf("spent"))?.map((a) => a.status), [500, 500]);
    });

    await step("Retry-After sets the delay; one beyond maxBackoffMs ends the retries", async () => {
      const task = await run(
        "polite",
        fetchStatus(upstream.url("/e?fail=1&status=429&retryAfter=1")),
        {
          backoffMs: 1,
          maxBackoffMs: 5000,
        },
      );
      assertEquals(task.result, { status: 200, body: `{"value":2}` });
      assertEquals((await attemptsOf("polite"))?.map((a) => a.retryInMs), [1000, undefined]);
      const [first, second] = upstream.requests("/e");
      assert(second!.at - first!.at >= 900, "the second attempt waited for Retry-After");

      const later = await run(
        "later",
        fetchStatus(upstream.url("/f?fail=1&status=429&retryAfter=60")),
        {
          maxBackoffMs: 5000,
        },
      );
      assertEquals(later.result, { status: 429, body: "busy" });
      assertEquals((await attemptsOf("later"))?.length, 1);
    });

    await step("network failures are retried, then the guest's fetch rejects", async () => {
      const closed = `http://127.0.0.1:${freePort()}/nothing`;
      const task = await run(
        "unreachable",
        `try { await fetch(${JSON.stringify(closed)}); "reached" } catch (e) { e.name }`,
        { attempts: 3, backoffMs: 10, on: ["network"] },
      );
      assertEquals(task.result, "TypeError");
      const attempts = await attemptsOf("unreachable");
      assertEquals(attempts?.length, 3);
      for (const attempt of attempts!) {
        assertEquals(attempt.status, undefined);
        assertStringIncludes(attempt.error!, closed);
      }
    });

    await step("a refusal by the egress policy is not retried", async () => {
      const task = await run(
        "refused",
        `try { await fetch("http://169.254.169.254/latest"); "reached" } catch (e) { e.name }`,
        { attempts: 5, backoffMs: 10 },
      );
      assertEquals(task.result, "TypeError");
      assertEquals((await attemptsOf("refused"))?.length, 1);
    });

    await step("a bad policy is 400, naming the field", async () => {
      for (
        const [retry, names] of [
          [{ attempts: 0 }, "retry.attempts"],
          [{ attempts: 2.5 }, "retry.attempts"],
          [{ backoffMs: 100, maxBackoffMs: 10 }, "retry.maxBackoffMs"],
          [{ on: ["4xx"] }, "retry.on"],
          [{ on: [] }, "retry.on"],
          [{ tries: 3 }, "tries"],
          ["3", "retry"],
        ] as const
      ) {
        const res = await server.request("/task", { body: { code: "1", retry } });
        assertErrorResponse(res, 400);
        assertStringIncludes(res.text, names);
      }
    });
  } finally {
    await server.close();
    await upstream.close();
  }
});

Deno.test("isRetryable follows the policy's conditions", () => {
  const answer = (status?: number, transient = false) => ({
    response: { id: "x", success: false, ...(status === undefined ? {} : { status }) },
    transient,
  });
  const all = ["network", "5xx", "429"] as const;
  assert(isRetryable(answer(503), all) && isRetryable(answer(429), all));
  assert(isRetryable(answer(undefined, true), all));
  assert(!isRetryable(answer(undefined, false), all), "a permanent failure");
  assert(!isRetryable(answer(404), all) && !isRetryable(answer(200), all));
  assert(!isRetryable(answer(503), ["429"]) && !isRetryable(answer(429), ["5xx"]));
});
