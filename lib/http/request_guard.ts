/**
 * Checks every request passes before it is routed, so that a web page a developer visits
 * cannot drive the server through their browser:
 *
 * - **Host** (DNS rebinding): the `Host` header must name this server: a loopback name
 *   (`localhost`, `*.localhost`), an IP address, the host it listens on or is called back
 *   at, or an entry of `ALLOWED_HOSTS`. A rebinding page reaches the server under the
 *   attacker's own domain name, which is none of these.
 * - **Cross-site** (request forgery): a request with an unsafe method (anything but `GET`,
 *   `HEAD`, `OPTIONS`) is refused when the browser says it comes from another site or origin
 *   (`Sec-Fetch-Site` other than `same-origin` or `none`), or, from browsers that do not
 *   send that header, when its `Origin` is not this server's own (the `Host`) nor one of
 *   `ALLOWED_ORIGINS`. Requests with neither header (curl, servers, SDKs) pass. This is the
 *   algorithm of Go's `net/http.CrossOriginProtection`.
 * - **Self-calls**: a request carrying this server's {@link SelfMark} was sent by one of
 *   its own tasks (every task fetch carries it), whichever address, port or port forward it
 *   came through; refused, so a task cannot drive the API it runs under.
 * - **Content type**: a body sent with `POST`, `PUT` or `PATCH` must declare one of the
 *   media types its route reads ({@link Route.bodyTypes}, default `application/json`).
 *   A page can send `text/plain` or form bodies cross-site without a preflight; never JSON.
 *
 * @module
 */
import { BadRequestError, ForbiddenError, UnsupportedMediaTypeError } from "../errors.ts";
import { quote } from "./json_io.ts";
import type { Route } from "./route.ts";

/** What a route reads when it names no body types: JSON only. */
export const JSON_BODY_TYPES: readonly string[] = ["application/json"];

/** Methods that change nothing, exempt from the cross-site check. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Methods whose body must have one of the route's media types. */
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** `Sec-Fetch-Site` values of a request made by this server's own pages or by the user. */
const SAME_ORIGIN_SITES = new Set(["same-origin", "none"]);

/** A header and the value this server's own outbound task requests carry. */
export interface SelfMark {
  header: string;
  value: string;
}

/** Options of {@link createRequestGuard}. */
export interface RequestGuardOptions {
  /**
   * Host names served besides loopback names and IP addresses: exact names, `.example.com`
   * for that domain and its subdomains, `*` for any host.
   */
  allowedHosts: readonly string[];
  /** Origins (`https://app.example.com`) allowed to send unsafe requests cross-site. */
  allowedOrigins: readonly string[];
  /** Requests carrying it come from this server's own tasks and are refused. */
  selfMark?: SelfMark;
}

/** The checks of one request: throws an `HttpError` when it is refused. */
export interface RequestGuard {
  /** The `Host` and cross-site checks, before routing. */
  checkOrigin(req: Request): void;
  /** The content-type check of a routed request with a body method. */
  checkBodyType(req: Request, route: Pick<Route, "bodyTypes">): void;
}

/** Builds the guard; throws a `TypeError` for an allowed origin that is not an origin. */
export function createRequestGuard(options: RequestGuardOptions): RequestGuard {
  const anyHost = options.allowedHosts.includes("*");
  const exactHosts = new Set<string>();
  const domains: string[] = [];
  for (const entry of options.allowedHosts) {
    const host = entry.trim().toLowerCase().replace(/\.+$/, "");
    if (host === "*" || host === "") continue;
    if (host.startsWith(".")) domains.push(host);
    else exactHosts.add(host);
  }
  const origins = new Set(options.allowedOrigins.map(parseOrigin));

  const hostAllowed = (hostname: string): boolean =>
    anyHost || isLoopbackName(hostname) || isIpLiteral(hostname) || exactHosts.has(hostname) ||
    domains.some((domain) => hostname.endsWith(domain) || hostname === domain.slice(1));

  return {
    checkOrigin(req) {
      const mark = options.selfMark;
      if (mark && req.headers.get(mark.header) === mark.value) {
        throw new ForbiddenError("A task cannot call this server's own API");
      }
      const host = requestHost(req);
      if (!hostAllowed(host.hostname)) {
        throw new ForbiddenError(
          `Host ${quote(host.host)} is not a name this server answers to; add it to ALLOWED_HOSTS`,
        );
      }
      if (SAFE_METHODS.has(req.method)) return;
      const origin = req.headers.get("origin");
      const site = req.headers.get("sec-fetch-site");
      if (origin !== null && origins.has(origin.toLowerCase())) return;
      if (site !== null) {
        if (SAME_ORIGIN_SITES.has(site.toLowerCase())) return;
        throw crossSite(`Sec-Fetch-Site is ${quote(site)}`);
      }
      if (origin === null) return;
      let originHost: string | undefined;
      try {
        originHost = new URL(origin).host;
      } catch {
        // `null` (sandboxed frames, files) or garbage: not this server.
      }
      if (originHost !== host.host) throw crossSite(`Origin ${quote(origin)} is not this server`);
    },

    checkBodyType(req, route) {
      if (!BODY_METHODS.has(req.method)) return;
      const accepted = route.bodyTypes ?? JSON_BODY_TYPES;
      const declared = req.headers.get("content-type");
      const essence = (declared ?? "").split(";")[0]!.trim().toLowerCase();
      if (accepted.includes(essence)) return;
      const what = declared === null ? "no Content-Type" : `Content-Type ${quote(declared)}`;
      throw new UnsupportedMediaTypeError(
        `Cannot read a body with ${what}: send ${accepted.join(" or ")}`,
        accepted,
      );
    },
  };
}

function crossSite(why: string): ForbiddenError {
  return new ForbiddenError(
    `Cross-site request refused: ${why}; add the page's origin to ALLOWED_ORIGINS to allow it`,
  );
}

/** The request's `Host` (the URL's when the header is missing), parsed. */
function requestHost(req: Request): { host: string; hostname: string } {
  const header = req.headers.get("host");
  if (header === null) {
    const url = new URL(req.url);
    return { host: url.host, hostname: url.hostname };
  }
  try {
    const url = new URL(`http://${header}`);
    if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "") {
      throw new TypeError();
    }
    return { host: url.host, hostname: url.hostname.replace(/\.+$/, "") };
  } catch {
    throw new BadRequestError(`Cannot parse the Host header ${quote(header)}`);
  }
}

/** `localhost` and names under `.localhost`, which resolve to loopback (RFC 6761). */
function isLoopbackName(hostname: string): boolean {
  return hostname === "localhost" || hostname.endsWith(".localhost");
}

/** An IPv4 address or a bracketed IPv6 address, as the URL parser writes them. */
function isIpLiteral(hostname: string): boolean {
  return hostname.startsWith("[") || /^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/.test(hostname);
}

/** The origin `text` names (`scheme://host[:port]`); throws a `TypeError` if it is not one. */
export function parseOrigin(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(`Cannot parse origin ${quote(text)}: expected scheme://host[:port]`);
  }
  if (url.origin === "null" || url.href.replace(/\/$/, "") !== url.origin) {
    throw new TypeError(`Cannot parse origin ${quote(text)}: expected scheme://host[:port]`);
  }
  return url.origin;
}
