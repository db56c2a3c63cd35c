/**
 * `GET /definitions`: the named task definitions (`tasks/<name>.js`, `tasks/<name>.ts`)
 * that `POST /task` runs with `"task": "<name>"`.
 *
 * @module
 */
import { json } from "./json_io.ts";
import { success } from "./schemas.ts";
import type { AppDeps, Routes } from "./route.ts";

/** The definitions route. */
export function definitionRoutes(deps: AppDeps): Routes {
  return {
    "/definitions": {
      auth: true,
      docs: {
        GET: {
          summary: "The named definitions of the tasks directory",
          responses: {
            "200": {
              description: "The definitions",
              schema: success("definitions", {
                type: "array",
                items: {
                  type: "object",
                  properties: {
                    name: { type: "string" },
                    lang: { enum: ["js", "ts"] },
                    file: { type: "string" },
                    size: { type: "integer" },
                  },
                },
              }),
            },
          },
        },
      },
      methods: {
        GET: async () =>
          json(200, { success: true, definitions: await deps.service.definitions() }),
      },
    },
  };
}
