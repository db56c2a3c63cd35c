/**
 * `GET /openapi.json`: an OpenAPI 3.1 document generated from the route table itself,
 * with the body schemas validation uses ({@link BodySpec}), so a route, a method or a body
 * field cannot exist without being described, nor be described without existing.
 *
 * @module
 */
import { bodySchema, COMPONENT_SCHEMAS, type JsonSchema, ref } from "./schemas.ts";
import { json } from "./json_io.ts";
import type { OperationDoc, Route, Routes } from "./route.ts";

/** The document for `routes`. */
export function openApiDocument(routes: Routes, version: string): JsonSchema {
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, JsonSchema> = { ...COMPONENT_SCHEMAS };
  for (const [path, route] of Object.entries(routes)) {
    const item: Record<string, unknown> = {};
    for (const method of Object.keys(route.methods)) {
      const doc = route.docs[method];
      if (!doc) throw new TypeError(`Route ${method} ${path} has no OpenAPI description`);
      item[method.toLowerCase()] = operation(doc, route, schemas);
    }
    paths[path] = item;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "FlowState",
      version,
      description: "Durable execution of JavaScript: every fetch() is a durable suspension point.",
    },
    paths,
    components: {
      schemas,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
  };
}

function operation(doc: OperationDoc, route: Route, schemas: Record<string, JsonSchema>) {
  const out: Record<string, unknown> = { summary: doc.summary };
  if (route.auth) out.security = [{ bearer: [] }];
  if (doc.query) {
    out.parameters = Object.entries(doc.query).map(([name, spec]) => ({
      name,
      in: "query",
      description: spec.description,
      schema: spec.schema,
      example: spec.example,
    }));
  }
  if (doc.body || doc.otherBodies) {
    const content: Record<string, unknown> = {};
    if (doc.body) {
      schemas[doc.body.name] = bodySchema(doc.body);
      content["application/json"] = { schema: ref(doc.body.name) };
    }
    for (const [type, schema] of Object.entries(doc.otherBodies ?? {})) {
      content[type] = { schema };
    }
    out.requestBody = { required: true, content };
  }
  const answers = { ...doc.responses };
  if (route.auth) answers["401"] ??= errorAnswer("Missing or wrong bearer token");
  const responses: Record<string, unknown> = {};
  for (const [status, answer] of Object.entries(answers)) {
    responses[status] = {
      description: answer.description,
      ...(answer.schema
        ? { content: { [answer.mediaType ?? "application/json"]: { schema: answer.schema } } }
        : {}),
    };
  }
  out.responses = responses;
  return out;
}

/** An error answer of the API. */
export function errorAnswer(description: string): { description: string; schema: JsonSchema } {
  return { description, schema: ref("Error") };
}

/** The route serving the document of `routes` (itself included). */
export function openApiRoutes(routes: () => Routes, version: string): Routes {
  let cached: JsonSchema | undefined;
  return {
    "/openapi.json": {
      auth: false,
      docs: {
        GET: {
          summary: "This document",
          responses: { "200": { description: "OpenAPI 3.1", schema: { type: "object" } } },
        },
      },
      methods: {
        GET: () => {
          cached ??= openApiDocument(routes(), version);
          return Promise.resolve(json(200, cached));
        },
      },
    },
  };
}
