/**
 * Webhooks against a real server process and a real receiver: a finished task is POSTed
 * to its `callbackUrl`, signed; the receiver checks the signature itself (HMAC-SHA256 of
 * `<t>.<body>` with the shared secret); failures are retried; a delivery still owed at a
 * crash is made after the restart; the egress policy applies.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { assertErrorResponse, startServer, stepper, waitFor } from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";
import { signWebhook, verifyWebhookSignature } from "../lib/outbound/mod.ts";
import { retryAfterMs } from "../lib/outbound/mod.ts";

const SECRET = "whsec_0123456789abcdef";

interface Delivery {
  path: string;
  headers: Headers;
  body: string;
  /** The status the receiver answered with. */
  status: number;
}

/** A webhook receiver: records every delivery, answers with `answer(path, count)`. */
function startReceiver(answer: (path: string, count: number) => number = () => 200) {
  const deliveries: Delivery[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const delivery: Delivery = { path, headers: req.headers, body: await req.text(), status: 0 };
    deliveries.push(delivery);
    delivery.status = answer(path, deliveries.filter((d) => d.path === path).length);
    return new Response(null, { status: delivery.status });
  });
  return {
    deliveries,
    url: (path: string) => `http://127.0.0.1:${server.addr.port}${path}`,
    to: (path: string) => deliveries.filter((d) => d.path === path),
    accepted: (path: string) => deliveries.filter((d) => d.path === path && d.status === 200),
    close: () => server.shutdown(),
  };
}

/** The receiver's own check: the HMAC of `<t>.<body>`, and a timestamp within 5 minutes. */
async function signatureIsValid(header: string | null, body: string): Promise<boolean> {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? "");
  if (!match) return false;
  const [, t, v1] = match;
  if (Math.abs(Date.now() / 1000 - Number(t)) > 300) return false;
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const mac = new Uint8Array(v1!.match(/../g)!.map((hex) => parseInt(hex, 16)));
  return await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode(`${t}.${body}`));
}

const ENV = { WEBHOOK_SECRET: SECRET, WEBHOOK_BACKOFF_MS: "50", WEBHOOK_ATTEMPTS: "4" };

Deno.test("a finished task is POSTed to its callbackUrl, signed, and retried until accepted", async (t) => {
  const upstream = startUpstream();
  const receiver = startReceiver((path, count) => path === "/flaky" && count < 3 ? 500 : 200);
  const server = await startServer({ env: ENV });
  const step = stepper(t, server);
  try {
    await step("the receiver verifies the signature of the completed task's view", async () => {
      const created = await server.createTask({
        id: "hooked",
        code: `(await (await fetch(${
          JSON.stringify(upstream.url("/number/4"))
        })).json()).value * 10`,
        callbackUrl: receiver.url("/done"),
      });
      assertEquals(created.callbackUrl, receiver.url("/done"));
      const delivery = await waitFor(() => receiver.to("/done")[0]);
      assert(await signatureIsValid(delivery.headers.get("flowstate-signature"), delivery.body));
      assertEquals(delivery.headers.get("content-type"), "application/json");
      assertEquals(delivery.headers.get("flowstate-event"), "task.completed");
      assertMatch(delivery.headers.get("idempotency-key")!, /^webhook-hooked-\d+$/);
      const payload = JSON.parse(delivery.body);
      assertEquals(payload.type, "task.completed");
      assertEquals([payload.task.id, payload.task.status, payload.task.result], [
        "hooked",
        "completed",
        40,
      ]);
      assert(
        !(await signatureIsValid(
          delivery.headers.get("flowstate-signature"),
          delivery.body.replace("40", "41"),
        )),
        "a changed body fails the check",
      );
      const detail = await waitFor(async () => {
        const { webhook } = await server.task("hooked");
        return webhook?.status === "delivered" ? webhook : undefined;
      });
      assertEquals([detail.attempts, detail.httpStatus], [1, 200]);
    });

    await step("a task that errors is delivered too, as task.error", async () => {
      await server.createTask({
        id: "broken",
        code: `throw new RangeError("nope")`,
        callbackUrl: receiver.url("/broken"),
      });
      const delivery = await waitFor(() => receiver.to("/broken")[0]);
      const payload = JSON.parse(delivery.body);
      assertEquals([payload.type, payload.task.error.message], ["task.error", "nope"]);
      assert(await signatureIsValid(delivery.headers.get("flowstate-signature"), delivery.body));
    });

    await step(
      "failed attempts are retried with the same idempotency key, each signed",
      async () => {
        await server.createTask({ id: "flaky", code: "1", callbackUrl: receiver.url("/flaky") });
        await server.waitForLog((line) =>
          line.msg === "webhook delivered" && line.taskId === "flaky"
        );
        const attempts = receiver.to("/flaky");
        assertEquals(attempts.length, 3);
        for (const attempt of attempts) {
          assertEquals(
            attempt.headers.get("idempotency-key"),
            attempts[0]!.headers.get("idempotency-key"),
          );
          assert(await signatureIsValid(attempt.headers.get("flowstate-signature"), attempt.body));
        }
        const warned = server.logs().filter((line) =>
          line.msg === "webhook attempt failed" && line.taskId === "flaky"
        );
        assertEquals(warned.map((line) => line.level), ["warn", "warn"]);
      },
    );

    await step(
      "the egress policy applies: a metadata address is refused, then given up",
      async () => {
        await server.createTask({
          id: "metadata",
          code: "1",
          callbackUrl: "http://169.254.169.254/latest/meta-data",
        });
        const given = await server.waitForLog((line) =>
          line.msg === "webhook given up" && line.taskId === "metadata"
        );
        assertEquals(given.level, "error");
        assertStringIncludes(String(given.error), "169.254.169.254");
        const { webhook } = await server.task("metadata");
        assertEquals([webhook?.status, webhook?.attempts], ["failed", 4]);
        assertStringIncludes(webhook!.error!, "169.254.169.254");
      },
    );

    await step(
      "a task run on by POST /retry owes a new delivery; DELETE forgets its mark",
      async () => {
        const paused = await server.createTask({
          id: "again",
          autoFetch: false,
          code: `(await (await fetch("https://api.example.com/x")).json()).v`,
          callbackUrl: receiver.url("/again"),
        });
        assertEquals(paused.status, "paused");
        assertEquals((await server.request("/cancel", { body: { taskId: "again" } })).status, 200);
        await waitFor(() => receiver.to("/again")[0]);
        const retried = await server.request("/retry", { body: { taskId: "again" } });
        const request =
          (retried.body as { task: { fetchRequest: { id: string } } }).task.fetchRequest;
        const delivered = await server.call("again", {
          id: request.id,
          success: true,
          status: 200,
          data: { v: 5 },
        });
        assertEquals(delivered.status, 200);
        const [first, second] = await waitFor(() =>
          receiver.to("/again").length >= 2 ? receiver.to("/again") : undefined
        );
        assertEquals(
          [JSON.parse(first!.body).type, JSON.parse(second!.body).type],
          ["task.cancelled", "task.completed"],
        );
        assertEquals(JSON.parse(second!.body).task.result, 5);
        assert(
          first!.headers.get("idempotency-key") !== second!.headers.get("idempotency-key"),
          "each finish is its own delivery",
        );
        await waitFor(async () => (await server.task("again")).webhook?.status === "delivered");
        const mark = `${server.statesDir}/webhooks/again.json`;
        await Deno.stat(mark);
        assertEquals((await server.request("/task?id=again", { method: "DELETE" })).status, 200);
        await waitFor(() => Deno.stat(mark).then(() => false, () => true), {
          message: "the mark removed",
        });
      },
    );

    await step("a bad callbackUrl is 400", async () => {
      for (const callbackUrl of ["not a url", "ftp://x.test/", "http://user:pw@x.test/", 7]) {
        assertErrorResponse(
          await server.request("/task", { body: { code: "1", callbackUrl } }),
          400,
        );
      }
    });
  } finally {
    await server.close();
    await receiver.close();
    await upstream.close();
  }
});

Deno.test("callbackUrl is refused while WEBHOOK_SECRET is unset", async () => {
  const server = await startServer();
  try {
    const res = await server.request("/task", {
      body: { code: "1", callbackUrl: "http://127.0.0.1:9/hook" },
    });
    assertErrorResponse(res, 400);
    assertStringIncludes(res.text, "WEBHOOK_SECRET");
  } finally {
    await server.close();
  }
});

Deno.test("a webhook still owed when the server is killed is delivered after the restart, once", async () => {
  let accept = false;
  const receiver = startReceiver(() => accept ? 200 : 503);
  const first = await startServer({ env: { ...ENV, WEBHOOK_ATTEMPTS: "1000" } });
  let second: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    await first.createTask({ id: "owed", code: `"result"`, callbackUrl: receiver.url("/owed") });
    await waitFor(() => receiver.to("/owed").length >= 2);
    await first.kill();
    assertEquals(receiver.accepted("/owed").length, 0);
    accept = true;
    second = await startServer({ statesDir: first.statesDir, env: ENV });
    await second.waitForLog((line) => line.msg === "webhook delivered" && line.taskId === "owed");
    const [delivered] = receiver.accepted("/owed");
    assertEquals(JSON.parse(delivered!.body).task.result, "result");
    assert(await signatureIsValid(delivered!.headers.get("flowstate-signature"), delivered!.body));
    assertEquals((await second.task("owed")).webhook?.status, "delivered");
    await second.stop();

    second = await startServer({ statesDir: first.statesDir, env: ENV });
    await second.createTask({ id: "later", code: "2", callbackUrl: receiver.url("/later") });
    await second.waitForLog((line) => line.msg === "webhook delivered" && line.taskId === "later");
    assertEquals(receiver.to("/owed").filter((d) => d.status === 200).length, 1);
    assertEquals(
      receiver.to("/owed").length,
      receiver.to("/owed").indexOf(delivered!) + 1,
      "a delivered webhook is not sent again",
    );
  } finally {
    await second?.close();
    await first.close();
    await receiver.close();
  }
});

Deno.test("verifyWebhookSignature accepts its own signatures within the replay window only", async () => {
  const body = `{"type":"task.completed"}`;
  const now = 1_800_000_000;
  const header = await signWebhook(SECRET, now, body);
  assert(await verifyWebhookSignature(SECRET, header, body, { now }));
  assert(await verifyWebhookSignature(SECRET, header, body, { now: now + 300 }));
  assert(!(await verifyWebhookSignature(SECRET, header, body, { now: now + 301 })), "too old");
  assert(!(await verifyWebhookSignature("other", header, body, { now })), "another secret");
  assert(!(await verifyWebhookSignature(SECRET, header, `${body} `, { now })), "another body");
  assert(!(await verifyWebhookSignature(SECRET, null, body, { now })));
  assert(!(await verifyWebhookSignature(SECRET, "t=x,v1=00", body, { now })));
});

Deno.test("Retry-After is read as seconds or as an HTTP date", () => {
  const answer = (value: string) => ({
    id: "x",
    success: false,
    headers: { "retry-after": value },
  });
  assertEquals(retryAfterMs(answer("3")), 3000);
  const now = Date.parse("2026-11-21T10:00:00Z");
  assertEquals(retryAfterMs(answer("Sat, 21 Nov 2026 10:00:05 GMT"), now), 5000);
  assertEquals(retryAfterMs(answer("soon")), undefined);
  assertEquals(retryAfterMs({ id: "x", success: false }), undefined);
});
