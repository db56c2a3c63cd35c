/**
 * The dashboard: a single-page UI served by the server itself at `GET /` (also `/ui`), its
 * modules and style under `/ui/`. The assets are part of the module graph (text imports),
 * so serving them reads no file at run time; the UI library is htm's Preact standalone
 * bundle, taken from the npm package pinned in `deno.json`.
 *
 * The shell and its assets need no token (they hold no data); every API call the page makes
 * carries the bearer token the user typed in. Every answer forbids framing
 * (`frame-ancestors 'none'`, `X-Frame-Options: DENY`) and loads nothing but its own origin.
 *
 * @module
 */
import indexHtml from "./dashboard/index.html" with { type: "text" };
import apiJs from "./dashboard/api.js" with { type: "text" };
import appJs from "./dashboard/app.js" with { type: "text" };
import formatJs from "./dashboard/format.js" with { type: "text" };
import newTaskJs from "./dashboard/new_task.js" with { type: "text" };
import taskListJs from "./dashboard/task_list.js" with { type: "text" };
import taskPageJs from "./dashboard/task_page.js" with { type: "text" };
import timelineJs from "./dashboard/timeline.js" with { type: "text" };
import uiJs from "./dashboard/ui.js" with { type: "text" };
import styleCss from "./dashboard/style.css" with { type: "text" };
import preactJs from "htm/preact/standalone" with { type: "text" };
import type { OperationDoc, Routes } from "./route.ts";

/** What the dashboard's pages may load and who may frame them (nobody). */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Headers of every dashboard answer. */
const HEADERS = {
  "content-security-policy": DASHBOARD_CSP,
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-cache",
};

const JS = "text/javascript; charset=utf-8";

/** The dashboard's assets by path: body and media type (one module a page or concern). */
export const DASHBOARD_ASSETS: Readonly<Record<string, { body: string; type: string }>> = {
  "/": { body: indexHtml, type: "text/html; charset=utf-8" },
  "/ui": { body: indexHtml, type: "text/html; charset=utf-8" },
  "/ui/app.js": { body: appJs, type: JS },
  "/ui/api.js": { body: apiJs, type: JS },
  "/ui/format.js": { body: formatJs, type: JS },
  "/ui/new_task.js": { body: newTaskJs, type: JS },
  "/ui/task_list.js": { body: taskListJs, type: JS },
  "/ui/task_page.js": { body: taskPageJs, type: JS },
  "/ui/timeline.js": { body: timelineJs, type: JS },
  "/ui/ui.js": { body: uiJs, type: JS },
  "/ui/preact.js": { body: preactJs, type: JS },
  "/ui/style.css": { body: styleCss, type: "text/css; charset=utf-8" },
};

/** The dashboard routes: one `GET` per asset, no token needed. */
export function dashboardRoutes(): Routes {
  const routes: Routes = {};
  for (const [path, asset] of Object.entries(DASHBOARD_ASSETS)) {
    const media = asset.type.split(";")[0]!;
    const doc: OperationDoc = {
      summary: path.startsWith("/ui/") ? `Dashboard asset (${media})` : "The dashboard (HTML)",
      responses: {
        "200": { description: "The asset", schema: { type: "string" }, mediaType: media },
      },
    };
    const headers = { ...HEADERS, "content-type": asset.type };
    routes[path] = {
      auth: false,
      docs: { GET: doc },
      methods: { GET: () => Promise.resolve(new Response(asset.body, { headers })) },
    };
  }
  return routes;
}
