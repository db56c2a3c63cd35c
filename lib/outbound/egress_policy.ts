/**
 * Egress policy: decides whether a task may fetch a URL.
 *
 * Always refused (unless the host or address is in `allow`): schemes other than `http:` and
 * `https:`, unspecified addresses (`0.0.0.0/8`, `::`), link-local addresses
 * (`169.254.0.0/16`, `fe80::/10`), cloud metadata host names and addresses. With
 * `denyPrivate`, also loopback and private addresses. Host names are resolved and every
 * address is checked. Calls to this server's own API (any path on its port) are refused even
 * when allowed, so a task cannot create tasks, forge responses or read other tasks.
 *
 * The check resolves names itself; the fetch resolves them again, so a name whose records
 * change in between (DNS rebinding) is not caught here.
 *
 * @module
 */

/** A fetch the egress policy refuses; the message says why. */
export class EgressDeniedError extends Error {
  override name = "EgressDeniedError";
}

/** An IPv4 or IPv6 address as an unsigned integer. */
export interface IpAddress {
  version: 4 | 6;
  value: bigint;
}

/** A network: the address with host bits cleared and the prefix length. */
export interface Cidr {
  version: 4 | 6;
  network: bigint;
  prefix: number;
}

/** An entry of the allow list: a host name, or addresses given as an IP or a CIDR. */
export type AllowEntry = { kind: "host"; host: string } | { kind: "cidr"; cidr: Cidr };

/** Decides whether a URL may be fetched. */
export interface EgressPolicy {
  /**
   * Resolves when `url` may be fetched; rejects with an {@link EgressDeniedError} otherwise.
   * `signal` aborts the name resolution.
   */
  check(url: URL, signal?: AbortSignal): Promise<void>;
}

/** Resolves a host name to its addresses (text form); may reject or return `[]`. */
export type Resolver = (host: string, signal?: AbortSignal) => Promise<string[]>;

/** Options of {@link createEgressPolicy}. */
export interface EgressPolicyOptions {
  /** Host names, IPs and CIDRs exempt from the policy (but not from the self-call rule). */
  allow: readonly string[];
  /** Also refuse loopback and private addresses. */
  denyPrivate: boolean;
  /** Origins this server is reachable at (e.g. the call endpoint). */
  selfOrigins: readonly URL[];
  /** Name resolution. Default: A and AAAA records via `Deno.resolveDns`. */
  resolve?: Resolver;
  /** Addresses of this machine. Default: from `Deno.networkInterfaces()`. */
  localAddresses?: () => string[];
}

const V4_BITS = 32;
const V6_BITS = 128;

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

/** Classes of special addresses. */
export type AddressKind = "unspecified" | "link-local" | "cloud metadata" | "loopback" | "private";

/** Address classes, checked in this order; `always` ones are refused even without denyPrivate. */
const ADDRESS_CLASSES: readonly { kind: AddressKind; always: boolean; cidrs: Cidr[] }[] = [
  { kind: "unspecified", always: true, cidrs: cidrs("0.0.0.0/8", "::/128") },
  { kind: "link-local", always: true, cidrs: cidrs("169.254.0.0/16", "fe80::/10") },
  {
    kind: "cloud metadata",
    always: true,
    cidrs: cidrs("169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32"),
  },
  { kind: "loopback", always: false, cidrs: cidrs("127.0.0.0/8", "::1/128") },
  {
    kind: "private",
    always: false,
    cidrs: cidrs("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"),
  },
];

/** IPv6 ranges that embed an IPv4 address in their low 32 bits. */
const EMBEDDED_V4: readonly Cidr[] = cidrs(
  "::ffff:0:0/96", // IPv4-mapped
  "64:ff9b::/96", // NAT64 well-known prefix
  "::/96", // IPv4-compatible (deprecated); `::` and `::1` are excluded below
);

const DEFAULT_PORTS: Record<string, number> = { "http:": 80, "https:": 443 };

/** Parses an IPv4 or IPv6 address (brackets and an IPv6 zone are accepted); `null` if not one. */
export function parseIp(text: string): IpAddress | null {
  let s = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (s.includes(":")) {
    const zone = s.indexOf("%");
    if (zone > 0) s = s.slice(0, zone);
    const value = parseIpv6(s);
    return value === null ? null : { version: 6, value };
  }
  const value = parseIpv4(s);
  return value === null ? null : { version: 4, value };
}

function parseIpv4(s: string): bigint | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIpv6(s: string): bigint | null {
  let text = s;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(":");
  const last = s.slice(lastColon + 1);
  if (last.includes(".")) {
    const v4 = parseIpv4(last);
    if (v4 === null) return null;
    tail = [Number(v4 >> 16n), Number(v4 & 0xffffn)];
    text = s.slice(0, lastColon + 1);
    if (!text.endsWith("::")) text = text.slice(0, -1);
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const head = parseGroups(halves[0] ?? "");
  const rest = parseGroups(halves[1] ?? "");
  if (head === null || rest === null) return null;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - rest.length - tail.length;
    if (missing < 1) return null;
    groups = [...head, ...new Array<number>(missing).fill(0), ...rest, ...tail];
  } else {
    groups = [...head, ...tail];
  }
  if (groups.length !== 8) return null;
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(group), 0n);
}

function parseGroups(text: string): number[] | null {
  if (text === "") return [];
  const groups: number[] = [];
  for (const group of text.split(":")) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return null;
    groups.push(parseInt(group, 16));
  }
  return groups;
}

/** Formats an address: dotted decimal, or RFC 5952 compressed IPv6. */
export function formatIp(ip: IpAddress): string {
  if (ip.version === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((ip.value >> shift) & 0xffn)).join(".");
  }
  const groups = [...Array(8).keys()].map((i) =>
    Number((ip.value >> BigInt(112 - 16 * i)) & 0xffffn)
  );
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** Parses `address/prefix` (host bits are cleared); `null` if not a CIDR. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  if (slash < 0) return null;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (ip === null || !/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  const bits = ip.version === 4 ? V4_BITS : V6_BITS;
  if (prefix > bits) return null;
  const shift = BigInt(bits - prefix);
  return { version: ip.version, network: (ip.value >> shift) << shift, prefix };
}

/** Whether `ip` is inside `cidr`. */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.version !== ip.version) return false;
  const shift = BigInt((ip.version === 4 ? V4_BITS : V6_BITS) - cidr.prefix);
  return ip.value >> shift === cidr.network >> shift;
}

/** The IPv4 address embedded in an IPv4-mapped, NAT64 or IPv4-compatible IPv6 address. */
export function unwrapIp(ip: IpAddress): IpAddress {
  if (ip.version === 4 || ip.value <= 1n) return ip;
  if (!EMBEDDED_V4.some((cidr) => cidrContains(cidr, ip))) return ip;
  return { version: 4, value: ip.value & 0xffffffffn };
}

/** Parses one allow-list entry; throws a `TypeError` quoting it when it is not valid. */
export function parseAllowEntry(entry: string): AllowEntry {
  const text = entry.trim().toLowerCase();
  const cidr = parseCidr(text);
  if (cidr) return { kind: "cidr", cidr };
  const ip = parseIp(text);
  if (ip) {
    const plain = unwrapIp(ip);
    const prefix = plain.version === 4 ? V4_BITS : V6_BITS;
    return { kind: "cidr", cidr: { version: plain.version, network: plain.value, prefix } };
  }
  const host = normalizeHostName(text);
  if (host.length > 0 && host.length <= 253 && /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(host)) {
    return { kind: "host", host };
  }
  throw new TypeError(
    `Cannot parse allow-list entry "${entry}": expected a host name, an IP address or a CIDR`,
  );
}

/** Classifies an address by the first matching class, or `null` for a public address. */
export function classifyIp(ip: IpAddress): { kind: AddressKind; always: boolean } | null {
  const plain = unwrapIp(ip);
  for (const { kind, always, cidrs } of ADDRESS_CLASSES) {
    if (cidrs.some((cidr) => cidrContains(cidr, plain))) return { kind, always };
  }
  return null;
}

/** Creates the policy; throws a `TypeError` for an invalid allow entry. */
export function createEgressPolicy(options: EgressPolicyOptions): EgressPolicy {
  const entries = options.allow.filter((e) => e.trim() !== "").map(parseAllowEntry);
  const allowedHosts = new Set(entries.flatMap((e) => (e.kind === "host" ? [e.host] : [])));
  const allowedCidrs = entries.flatMap((e) => (e.kind === "cidr" ? [e.cidr] : []));
  const resolve = options.resolve ?? resolveWithDeno;
  const selfPorts = new Set(options.selfOrigins.map(effectivePort));
  const selfHosts = new Set(options.selfOrigins.map((o) => normalizeHostName(o.hostname)));
  let localCache: IpAddress[] | undefined;
  const localAddresses = (): IpAddress[] => {
    localCache ??= (options.localAddresses ?? interfaceAddresses)()
      .map(parseIp)
      .filter((ip): ip is IpAddress => ip !== null)
      .map(unwrapIp);
    return localCache;
  };
  const isAllowed = (ip: IpAddress) =>
    allowedCidrs.some((cidr) => cidrContains(cidr, ip) || cidrContains(cidr, unwrapIp(ip)));
  const isLocal = (ip: IpAddress) => {
    const plain = unwrapIp(ip);
    if (classifyIp(plain)?.kind === "loopback") return true;
    return localAddresses().some((a) => a.version === plain.version && a.value === plain.value);
  };

  return {
    async check(url: URL, signal?: AbortSignal): Promise<void> {
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
        if (loopbackName) return [parseIp("127.0.0.1")!, parseIp("::1")!];
        resolved ??= await resolveAddresses(resolve, host, signal);
        return resolved;
      };

      if (selfPorts.has(effectivePort(url))) {
        const self = loopbackName || selfHosts.has(host) || (await addresses()).some(isLocal);
        if (self) throw refuse("a task cannot call this server's own API");
      }
      if (allowedHosts.has(host)) return;
      if (!literal && METADATA_HOST_NAMES.has(host)) {
        throw refuse(`${host} is a cloud metadata host name`);
      }
      for (const ip of await addresses()) {
        const verdict = classifyIp(ip);
        if (!verdict || (!verdict.always && !options.denyPrivate) || isAllowed(ip)) continue;
        const article = verdict.kind === "unspecified" ? "an" : "a";
        const what = `${article} ${verdict.kind} address`;
        if (literal) throw refuse(`${host} is ${what}`);
        if (loopbackName) throw refuse(`${host} is a loopback host name`);
        throw refuse(`${host} resolves to ${formatIp(ip)}, ${what}`);
      }
    },
  };
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

async function resolveAddresses(
  resolve: Resolver,
  host: string,
  signal?: AbortSignal,
): Promise<IpAddress[]> {
  let texts: string[];
  try {
    texts = await resolve(host, signal);
  } catch {
    // Not a refusal: the fetch itself will fail to resolve the name.
    return [];
  }
  return texts.map(parseIp).filter((ip): ip is IpAddress => ip !== null);
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

function interfaceAddresses(): string[] {
  try {
    return Deno.networkInterfaces().map((i) => i.address);
  } catch {
    return [];
  }
}

function cidrs(...texts: string[]): Cidr[] {
  return texts.map((text) => {
    const cidr = parseCidr(text);
    if (!cidr) throw new TypeError(`Cannot parse built-in CIDR "${text}"`);
    return cidr;
  });
}
