/**
 * Tests of the edge's request guard alone: the `Host` check (DNS rebinding), the cross-site
 * check (`Sec-Fetch-Site`, `Origin`) and the body media types of a route.
 */
import { assertEquals, assertThrows } from "@std/assert";
import { ForbiddenError, HttpError, UnsupportedMediaTypeError } from "../lib/errors.ts";
import {
  createRequestGuard,
  JSON_BODY_TYPES,
  type RequestGuardOptions,
} from "../lib/http/request_guard.ts";
import type { Route } from "../lib/http/route.ts";

const JSON_ROUTE: Pick<Route, "bodyTypes"> = {};

function guard(options: Partial<RequestGuardOptions> = {}) {
  return createRequestGuard({ allowedHosts: [], allowedOrigins: [], ...options });
}

function request(
  method: string,
  headers: Record<string, string> = {},
  url = "http://localhost:8080/task",
): Request {
  return new Request(url, { method, headers });
}

/** The status the guard answers `req` with: 0 when it lets it through. */
function verdict(g: ReturnType<typeof guard>, req: Request, route = JSON_ROUTE): number {
  try {
    g.checkOrigin(req);
    g.checkBodyType(req, route);
    return 0;
  } catch (error) {
    if (error instanceof HttpError) return error.status;
    throw error;
  }
}

const json = { "content-type": "application/json" };

Deno.test("loopback names and IP addresses are served by default; other host names are 403", () => {
  const g = guard();
  for (const host of ["localhost:8080", "LOCALHOST", "app.localhost", "127.0.0.1:9", "[::1]:80"]) {
    assertEquals(verdict(g, request("GET", { host })), 0, host);
  }
  for (const host of ["10.1.2.3", "192.168.1.20:8080", "[fd00::1]"]) {
    assertEquals(verdict(g, request("GET", { host })), 0, host);
  }
  for (const host of ["evil.example", "evil.example:8080", "localhost.evil.example", "x.local"]) {
    assertEquals(verdict(g, request("GET", { host })), 403, host);
  }
  const error = assertThrows(() => g.checkOrigin(request("GET", { host: "rebind.test" })));
  assertEquals((error as Error).message.includes("ALLOWED_HOSTS"), true);
});

Deno.test("allowed hosts: exact names, .domain with its subdomains, * for any", () => {
  const g = guard({ allowedHosts: ["flow.test", ".corp.test"] });
  for (const host of ["flow.test", "FLOW.test:8080", "corp.test", "a.b.corp.test", "flow.test."]) {
    assertEquals(verdict(g, request("GET", { host })), 0, host);
  }
  for (const host of ["other.test", "xflow.test", "evilcorp.test"]) {
    assertEquals(verdict(g, request("GET", { host })), 403, host);
  }
  assertEquals(verdict(guard({ allowedHosts: ["*"] }), request("GET", { host: "any.test" })), 0);
});

Deno.test("an unparsable Host header is a 400", () => {
  for (const host of ["a b", "a/b", "user@localhost", "localhost?x"]) {
    assertEquals(verdict(guard(), request("GET", { host })), 400, host);
  }
});

Deno.test("a POST from another site or origin is 403, whatever its content type", () => {
  const g = guard();
  for (const site of ["cross-site", "same-site", "CROSS-SITE"]) {
    const req = request("POST", { ...json, "sec-fetch-site": site });
    const error = assertThrows(() => g.checkOrigin(req), ForbiddenError);
    assertEquals(error.message.includes("Cross-site request refused"), true);
  }
  for (const origin of ["https://evil.example", "http://localhost:3000", "null"]) {
    assertEquals(verdict(g, request("POST", { ...json, origin })), 403, origin);
  }
  // Sec-Fetch-Site wins over an Origin that looks like ours.
  const spoofed = { ...json, origin: "http://localhost:8080", "sec-fetch-site": "cross-site" };
  assertEquals(verdict(g, request("POST", spoofed)), 403);
  for (const method of ["PUT", "PATCH", "DELETE"]) {
    assertEquals(verdict(g, request(method, { ...json, origin: "https://evil.example" })), 403);
  }
});

Deno.test("same-origin POSTs and requests from no browser pass", () => {
  const g = guard();
  assertEquals(verdict(g, request("POST", { ...json, "sec-fetch-site": "same-origin" })), 0);
  assertEquals(verdict(g, request("POST", { ...json, "sec-fetch-site": "none" })), 0);
  assertEquals(verdict(g, request("POST", { ...json, origin: "http://localhost:8080" })), 0);
  assertEquals(verdict(g, request("POST", json)), 0, "curl sends neither header");
});

Deno.test("GET and HEAD from another site pass: they change nothing and CORS hides the answer", () => {
  const g = guard();
  const headers = { origin: "https://evil.example", "sec-fetch-site": "cross-site" };
  assertEquals(verdict(g, request("GET", headers)), 0);
  assertEquals(verdict(g, request("HEAD", headers)), 0);
});

Deno.test("allowed origins may POST cross-site", () => {
  const g = guard({ allowedOrigins: ["https://app.example"] });
  const headers = { ...json, origin: "https://app.example", "sec-fetch-site": "cross-site" };
  assertEquals(verdict(g, request("POST", headers)), 0);
  assertEquals(
    verdict(g, request("POST", { ...headers, origin: "https://app.example:8443" })),
    403,
  );
});

Deno.test("a POST body must be application/json unless the route lists other types", () => {
  const g = guard();
  for (const type of ["application/json", "Application/JSON; charset=utf-8"]) {
    assertEquals(verdict(g, request("POST", { "content-type": type })), 0, type);
  }
  for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]) {
    assertEquals(verdict(g, request("POST", { "content-type": type })), 415, type);
  }
  const error = assertThrows(
    () => g.checkBodyType(request("POST"), JSON_ROUTE),
    UnsupportedMediaTypeError,
  );
  assertEquals(error.message, "Cannot read a body with no Content-Type: send application/json");
  assertEquals(error.headers["accept-post"], "application/json");
  assertEquals(verdict(g, request("GET", { "content-type": "text/plain" })), 0);

  const scripts: Pick<Route, "bodyTypes"> = {
    bodyTypes: [...JSON_BODY_TYPES, "application/javascript"],
  };
  const js = request("POST", { "content-type": "application/javascript" });
  assertEquals(verdict(g, js, scripts), 0);
  assertEquals(verdict(g, request("POST", { "content-type": "text/plain" }), scripts), 415);
});

Deno.test("a request carrying the server's own self mark is refused, another value passes", () => {
  const g = guard({ selfMark: { header: "flowstate-loop", value: "mark-1" } });
  assertEquals(verdict(g, request("GET", { "flowstate-loop": "mark-1" })), 403);
  assertEquals(verdict(g, request("POST", { ...json, "flowstate-loop": "mark-1" })), 403);
  assertEquals(verdict(g, request("GET", { "flowstate-loop": "another-server" })), 0);
  assertEquals(verdict(g, request("GET")), 0);
  assertEquals(verdict(guard(), request("GET", { "flowstate-loop": "mark-1" })), 0);
});
