/**
 * `GET /definitions`: the named task definitions (`tasks/<name>.js`, `tasks/<name>.ts`)
 * that `POST /task` runs with `"task": "<name>"`.
 *
 * @module
 */
import { json } from "./json_io.ts";
import type { AppDeps, Routes } from "./route.ts";

/** The definitions route. */
export function definitionRoutes(deps: AppDeps): Routes {
  return {
    "/definitions": {
      auth: true,
      methods: {
        GET: async () =>
          json(200, { success: true, definitions: await deps.service.definitions() }),
      },
    },
  };
}
