/**
 * `GET /openapi.json` is a valid OpenAPI 3.1 document, and it is what the server does: a
 * test walks every path, method, query parameter and body field against a real server.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { Validator } from "@seriousme/openapi-schema-validator";
import { startServer, stepper } from "../testing/server_process.ts";

type Doc = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: object; examples?: unknown[] }> };
};
type Operation = {
  parameters?: { name: string; example: string }[];
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
};

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"];

function routed(res: { status: number; text: string }): boolean {
  return res.status !== 405 && !(res.status === 404 && res.text.includes("Cannot route"));
}

function bodyOf(doc: Doc, op: Operation) {
  const ref = op.requestBody?.content["application/json"]?.schema.$ref;
  if (!ref) return undefined;
  return doc.components.schemas[ref.split("/").at(-1)!]!;
}

Deno.test("GET /openapi.json describes exactly what the server accepts", async (t) => {
  const server = await startServer();
  const step = stepper(t, server);
  try {
    const res = await server.request("/openapi.json", { token: null });
    assertEquals(res.status, 200);
    const doc = res.body as Doc;

    await step("it validates as OpenAPI 3.1", async () => {
      const result = await new Validator().validate(
        doc as unknown as Parameters<Validator["validate"]>[0],
      );
      assertEquals(result.errors ?? [], []);
      assert(result.valid);
    });

    await step("every documented operation is served; every other method is 405", async () => {
      for (const [path, item] of Object.entries(doc.paths)) {
        for (const method of METHODS) {
          const op = item[method.toLowerCase()];
          // A stream does not end: GET /events is opened on its own below.
          if (path === "/events" && op) continue;
          const query = new URLSearchParams();
          // GET /status takes the examples of its list filters here; the rest need a task.
          if (path === "/status") query.set("limit", "10");
          const schema = op ? bodyOf(doc, op) : undefined;
          const body = method === "GET" ? undefined : (schema?.examples?.[0] ?? {});
          const answer = await server.request(`${path}?${query}`, { method, body });
          if (op) assert(routed(answer), `${method} ${path}: ${answer.status} ${answer.text}`);
          else assertEquals(answer.status, 405, `${method} ${path} is not documented`);
        }
      }
    });

    await step("each documented query parameter of GET /status is read", async () => {
      const params = doc.paths["/status"]!.get!.parameters!.map((p) => p.name).sort();
      assertEquals(params, [
        "cursor",
        "fetch",
        "id",
        "journal",
        "limit",
        "name",
        "order",
        "status",
        "wait",
      ]);
      for (const name of ["cursor", "limit", "order", "status"]) {
        const bad = await server.request(`/status?${name}=%00`);
        assertEquals(bad.status, 400, `${name} is validated: ${bad.text}`);
      }
    });

    await step(
      "a JSON body takes its documented fields and refuses any other, naming it",
      async () => {
        for (const [path, item] of Object.entries(doc.paths)) {
          const op = item.post;
          const schema = op && bodyOf(doc, op);
          if (!schema) continue;
          const example = schema.examples![0] as Record<string, unknown>;
          for (const field of Object.keys(schema.properties!)) {
            const answer = await server.request(path, {
              body: { ...example, [field]: example[field] ?? null },
            });
            assert(
              !answer.text.includes("unknown field"),
              `${path} takes "${field}": ${answer.text}`,
            );
          }
          const typo = await server.request(path, { body: { ...example, inputs: 1 } });
          assertEquals(typo.status, 400);
          assertStringIncludes(typo.text, `unknown field \\"inputs\\"`);
        }
      },
    );

    await step("GET /events is served as a stream", async () => {
      const stream = await fetch(
        `${server.origin}/events?${new URLSearchParams({ status: "completed" })}`,
      );
      assertEquals(stream.headers.get("content-type"), "text/event-stream; charset=utf-8");
      await stream.body?.cancel();
    });
  } finally {
    await server.close();
  }
});
