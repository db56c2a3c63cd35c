/**
 * Egress policy: decides whether a task may fetch a URL, and which address the connection
 * must go to.
 *
 * Always refused (unless the host or address is in `allow`): schemes other than `http:` and
 * `https:`, unspecified, broadcast, multicast and link-local addresses, cloud metadata host
 * names and addresses. With `denyPrivate`, also every address that is not global unicast:
 * loopback, private (RFC 1918, carrier-grade NAT, unique local), site-local, reserved,
 * benchmarking and documentation ranges. Address ranges come from `ipaddr.js`; IPv6
 * addresses that embed an IPv4 address (IPv4-mapped, IPv4-translated, IPv4-compatible,
 * NAT64, 6to4, Teredo) are also judged by the address they embed.
 *
 * Host names are resolved by the policy and every address is checked; a name that cannot be
 * resolved is refused (fail closed). The result names the checked address the connection
 * must use ({@link EgressTarget.address}), so a second lookup cannot return another one
 * (DNS rebinding).
 *
 * Calls to this server's own API (any path on the port it listens on) are refused even when
 * allowed, so a task cannot create tasks, forge responses or read other tasks.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

/** An IPv4 or IPv6 address, as `ipaddr.js` parses it. */
export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/** A fetch the egress policy refuses; the message says why. */
export class EgressDeniedError extends Error {
  override name = "EgressDeniedError";
}

/** An entry of the allow list: a host name, or addresses given as an IP or a CIDR. */
export type AllowEntry = { kind: "host"; host: string } | {
  kind: "cidr";
  cidr: [IpAddress, number];
};

/** Where a permitted fetch connects. */
export interface EgressTarget {
  /**
   * The checked address to connect to (text form, IPv6 without brackets), or `undefined`
   * when the host is an allowed name the policy did not resolve (the fetch resolves it).
   */
  address: string | undefined;
}

/** Decides whether a URL may be fetched. */
export interface EgressPolicy {
  /**
   * Resolves with the address to connect to when `url` may be fetched; rejects with an
   * {@link EgressDeniedError} otherwise. `signal` aborts the name resolution.
   */
  check(url: URL, signal?: AbortSignal): Promise<EgressTarget>;
}

/** Resolves a host name to its addresses (text form); may reject or return `[]`. */
export type Resolver = (host: string, signal?: AbortSignal) => Promise<string[]>;

/** Options of {@link createEgressPolicy}. */
export interface EgressPolicyOptions {
  /** Host names, IPs and CIDRs exempt from the policy (but not from the self-call rule). */
  allow: readonly string[];
  /** Also refuse every address that is not global unicast. */
  denyPrivate: boolean;
  /**
   * Origins this server is reachable at (its listening port, the call endpoint); a function
   * when they are known only once the server listens.
   */
  selfOrigins: readonly URL[] | (() => readonly URL[]);
  /** Name resolution. Default: A and AAAA records via `Deno.resolveDns`. */
  resolve?: Resolver;
  /**
   * Addresses of this machine. Default: `Deno.networkInterfaces()` when the `sys`
   * permission for it is granted, else none (the edge's loop check still refuses calls).
   */
  localAddresses?: () => string[];
}

/** Cloud metadata host names, always refused. */
export const METADATA_HOST_NAMES: ReadonlySet<string> = new Set([
  "metadata",
  "metadata.google.internal",
  "metadata.goog",
  "metadata.azure.com",
  "metadata.azure.internal",
  "instance-data",
  "instance-data.ec2.internal",
  "metadata.oraclecloud.com",
  "metadata.tencentyun.com",
  "metadata.platformequinix.com",
  "metadata.packet.net",
]);

/**
 * Cloud metadata addresses outside link-local (which is refused anyway): AWS's IPv6
 * endpoint and Alibaba's. `ipaddr.js` has no range for them.
 */
const METADATA_ADDRESSES: ReadonlySet<string> = new Set(["fd00:ec2::254", "100.100.100.200"]);

/** How an address class is called in refusals, and whether it is refused without denyPrivate. */
export interface AddressVerdict {
  kind: string;
  always: boolean;
}

/** `ipaddr.js` range names mapped to how refusals call them; unlisted ranges are "reserved". */
const RANGE_KINDS: Record<string, AddressVerdict> = {
  unspecified: { kind: "unspecified", always: true },
  broadcast: { kind: "broadcast", always: true },
  multicast: { kind: "multicast", always: true },
  linkLocal: { kind: "link-local", always: true },
  loopback: { kind: "loopback", always: false },
  private: { kind: "private", always: false },
  carrierGradeNat: { kind: "private", always: false },
  uniqueLocal: { kind: "private", always: false },
  deprecatedSiteLocal: { kind: "site-local", always: false },
};

/** IPv6 ranges whose addresses stand for an IPv4 address; judged by it, not themselves. */
const TRANSITION_RANGES = new Set(["ipv4Mapped", "rfc6145", "rfc6052", "6to4", "teredo"]);

/** IPv4-compatible addresses (`::a.b.c.d`, deprecated by RFC 4291); `ipaddr.js` has no range. */
const IPV4_COMPATIBLE = ipaddr.IPv6.parseCIDR("::/96");

const DEFAULT_PORTS: Record<string, number> = { "http:": 80, "https:": 443 };

/**
 * Parses an IPv4 address in dotted decimal or an IPv6 address (brackets and a zone are
 * accepted); `null` if not one. Legacy IPv4 forms (`0x7f.1`, `0177.0.0.1`) are not
 * addresses here: URLs normalise them before the policy sees them.
 */
export function parseIp(text: string): IpAddress | null {
  const s = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (s.includes(":")) return ipaddr.IPv6.isValid(s) ? ipaddr.IPv6.parse(s) : null;
  return ipaddr.IPv4.isValidFourPartDecimal(s) ? ipaddr.IPv4.parse(s) : null;
}

/** The IPv4 addresses an IPv6 address stands for or embeds (none for most addresses). */
export function embeddedIpv4(ip: IpAddress): ipaddr.IPv4[] {
  if (ip.kind() === "ipv4") return [];
  const v6 = ip as ipaddr.IPv6;
  const p = v6.parts;
  const v4 = (high: number, low: number) =>
    new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
  switch (v6.range()) {
    case "ipv4Mapped":
    case "rfc6145":
    case "rfc6052":
      return [v4(p[6]!, p[7]!)];
    case "6to4":
      return [v4(p[1]!, p[2]!)];
    case "teredo":
      // The Teredo server, and the client's address stored with its bits inverted.
      return [v4(p[2]!, p[3]!), v4(~p[6]! & 0xffff, ~p[7]! & 0xffff)];
    case "unicast":
      return v6.match(IPV4_COMPATIBLE) ? [v4(p[6]!, p[7]!)] : [];
    default:
      return [];
  }
}

/**
 * Classifies an address: `null` for a global unicast address, else its class. An IPv6
 * address embedding an IPv4 one takes the stricter verdict of the two.
 */
export function classifyIp(ip: IpAddress): AddressVerdict | null {
  if (METADATA_ADDRESSES.has(ip.toNormalizedString()) || METADATA_ADDRESSES.has(ip.toString())) {
    return { kind: "cloud metadata", always: true };
  }
  const range = ip.range();
  const embedded = embeddedIpv4(ip).map(classifyIp).filter((v) => v !== null);
  const own: AddressVerdict | null = range === "unicast" || TRANSITION_RANGES.has(range)
    ? null
    : RANGE_KINDS[range] ?? { kind: "reserved", always: false };
  const verdicts = [own, ...embedded].filter((v) => v !== null);
  return verdicts.find((v) => v.always) ?? verdicts[0] ?? null;
}

/** Parses one allow-list entry; throws a `TypeError` quoting it when it is not valid. */
export function parseAllowEntry(entry: string): AllowEntry {
  const text = entry.trim().toLowerCase();
  const slash = text.indexOf("/");
  if (slash >= 0) {
    const ip = parseIp(text.slice(0, slash));
    const prefixText = text.slice(slash + 1);
    const bits = ip?.kind() === "ipv4" ? 32 : 128;
    if (ip && /^(0|[1-9][0-9]{0,2})$/.test(prefixText) && Number(prefixText) <= bits) {
      return { kind: "cidr", cidr: [ip, Number(prefixText)] };
    }
  } else {
    const ip = parseIp(text);
    if (ip) return { kind: "cidr", cidr: [ip, ip.kind() === "ipv4" ? 32 : 128] };
    const host = normalizeHostName(text);
    if (host.length > 0 && host.length <= 253 && /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(host)) {
      return { kind: "host", host };
    }
  }
  throw new TypeError(
    `Cannot parse allow-list entry "${entry}": expected a host name, an IP address or a CIDR`,
  );
}

/** Whether `ip` is inside `cidr` (never across IPv4 and IPv6). */
export function cidrContains(cidr: [IpAddress, number], ip: IpAddress): boolean {
  return cidr[0].kind() === ip.kind() && ip.match(cidr);
}

/** The same address, IPv4 if it is an IPv4-mapped IPv6 one. */
function plain(ip: IpAddress): IpAddress {
  return ip.kind() === "ipv6" && (ip as ipaddr.IPv6).isIPv4MappedAddress()
    ? (ip as ipaddr.IPv6).toIPv4Address()
    : ip;
}

function sameAddress(a: IpAddress, b: IpAddress): boolean {
  const [x, y] = [plain(a), plain(b)];
  return x.kind() === y.kind() && x.toNormalizedString() === y.toNormalizedString();
}

/** Creates the policy; throws a `TypeError` for an invalid allow entry. */
export function createEgressPolicy(options: EgressPolicyOptions): EgressPolicy {
  const entries = options.allow.filter((e) => e.trim() !== "").map(parseAllowEntry);
  const allowedHosts = new Set(entries.flatMap((e) => (e.kind === "host" ? [e.host] : [])));
  const allowedCidrs = entries.flatMap((e) => (e.kind === "cidr" ? [e.cidr] : []));
  const resolve = options.resolve ?? resolveWithDeno;
  const selfOrigins = typeof options.selfOrigins === "function"
    ? options.selfOrigins
    : () => options.selfOrigins as readonly URL[];
  let localCache: IpAddress[] | undefined;
  const localAddresses = (): IpAddress[] => {
    localCache ??= (options.localAddresses ?? interfaceAddresses)()
      .map(parseIp)
      .filter((ip): ip is IpAddress => ip !== null);
    return localCache;
  };
  const isAllowed = (ip: IpAddress) =>
    [ip, ...embeddedIpv4(ip)].some((a) => allowedCidrs.some((cidr) => cidrContains(cidr, a)));
  const isLocal = (ip: IpAddress) =>
    [ip, ...embeddedIpv4(ip)].some((a) =>
      plain(a).range() === "loopback" || localAddresses().some((l) => sameAddress(l, a))
    );

  return {
    async check(url: URL, signal?: AbortSignal): Promise<EgressTarget> {
      const refuse = (why: string) =>
        new EgressDeniedError(`Fetch to "${url.href}" refused: ${why}`);
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw refuse(`only http: and https: URLs are allowed, not "${url.protocol}"`);
      }
      const host = normalizeHostName(url.hostname);
      const literal = parseIp(host);
      const loopbackName = host === "localhost" || host.endsWith(".localhost");
      let resolved: IpAddress[] | undefined;
      const addresses = async (): Promise<IpAddress[]> => {
        if (literal) return [literal];
        if (loopbackName) return [ipaddr.IPv4.parse("127.0.0.1"), ipaddr.IPv6.parse("::1")];
        resolved ??= await resolveAddresses(resolve, host, signal, refuse);
        return resolved;
      };

      const self = selfOrigins();
      if (self.some((origin) => effectivePort(origin) === effectivePort(url))) {
        const selfHosts = self.map((o) => normalizeHostName(o.hostname));
        const isSelf = loopbackName || selfHosts.includes(host) ||
          (await addresses()).some(isLocal);
        if (isSelf) throw refuse("a task cannot call this server's own API");
      }
      if (allowedHosts.has(host)) {
        return { address: literal || resolved ? connectAddress(await addresses()) : undefined };
      }
      if (!literal && METADATA_HOST_NAMES.has(host)) {
        throw refuse(`${host} is a cloud metadata host name`);
      }
      const checked = await addresses();
      for (const ip of checked) {
        const verdict = classifyIp(ip);
        if (!verdict || (!verdict.always && !options.denyPrivate) || isAllowed(ip)) continue;
        const article = /^[aeiou]/.test(verdict.kind) ? "an" : "a";
        const what = `${article} ${verdict.kind} address`;
        if (literal) throw refuse(`${host} is ${what}`);
        if (loopbackName) throw refuse(`${host} is a loopback host name`);
        throw refuse(`${host} resolves to ${ip.toString()}, ${what}`);
      }
      return { address: connectAddress(checked) };
    },
  };
}

/** The address to connect to: the first IPv4 one, else the first. */
function connectAddress(addresses: IpAddress[]): string {
  const chosen = addresses.find((ip) => ip.kind() === "ipv4") ?? addresses[0]!;
  return chosen.toString();
}

/** Lower-cases a host, strips IPv6 brackets and trailing dots. */
function normalizeHostName(hostname: string): string {
  let host = hostname.toLowerCase();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return host.replace(/\.+$/, "");
}

function effectivePort(url: URL): number {
  return url.port === "" ? DEFAULT_PORTS[url.protocol] ?? 0 : Number(url.port);
}

/** The host's addresses; a failed or empty lookup is a refusal (fail closed). */
async function resolveAddresses(
  resolve: Resolver,
  host: string,
  signal: AbortSignal | undefined,
  refuse: (why: string) => EgressDeniedError,
): Promise<IpAddress[]> {
  let texts: string[];
  try {
    texts = await resolve(host, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    const why = error instanceof Error ? error.message : String(error);
    throw refuse(`cannot resolve ${host} (${why})`);
  }
  const found = texts.map(parseIp).filter((ip): ip is IpAddress => ip !== null);
  if (found.length === 0) throw refuse(`${host} has no A or AAAA record`);
  return found;
}

/** The default resolver: A and AAAA records; fails only when both lookups fail. */
async function resolveWithDeno(host: string, signal?: AbortSignal): Promise<string[]> {
  const results = await Promise.allSettled([
    Deno.resolveDns(host, "A", { signal }),
    Deno.resolveDns(host, "AAAA", { signal }),
  ]);
  const found = results.flatMap((r) => (r.status === "fulfilled" ? r.value : []));
  const failure = results.find((r) => r.status === "rejected");
  if (found.length === 0 && failure) throw failure.reason;
  return found;
}

/** This machine's addresses, when reading them is permitted (never prompts). */
function interfaceAddresses(): string[] {
  try {
    const permission = Deno.permissions.querySync({ name: "sys", kind: "networkInterfaces" });
    if (permission.state !== "granted") return [];
    return Deno.networkInterfaces().map((i) => i.address);
  } catch {
    return [];
  }
}
