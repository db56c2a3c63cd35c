import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  cidrContains,
  classifyIp,
  createEgressPolicy,
  EgressDeniedError,
  type EgressPolicyOptions,
  formatIp,
  type IpAddress,
  parseAllowEntry,
  parseCidr,
  parseIp,
  unwrapIp,
} from "../lib/outbound/egress_policy.ts";

function ip(text: string): IpAddress {
  const parsed = parseIp(text);
  if (!parsed) throw new Error(`test setup: "${text}" is not an IP`);
  return parsed;
}

/** A resolver backed by a table; unknown names fail like NXDOMAIN. */
function table(records: Record<string, string[]>) {
  const asked: string[] = [];
  const resolve = (host: string) => {
    asked.push(host);
    const found = records[host];
    return found ? Promise.resolve(found) : Promise.reject(new Error(`NXDOMAIN ${host}`));
  };
  return { resolve, asked };
}

function policy(options: Partial<EgressPolicyOptions> = {}) {
  return createEgressPolicy({
    allow: [],
    denyPrivate: false,
    selfOrigins: [],
    resolve: table({}).resolve,
    localAddresses: () => [],
    ...options,
  });
}

async function refused(p: ReturnType<typeof policy>, url: string, includes: string) {
  const error = await assertRejects(() => p.check(new URL(url)), EgressDeniedError);
  assertEquals(error.name, "EgressDeniedError");
  assert(error.message.includes(includes), `"${error.message}" should include "${includes}"`);
  return error;
}

Deno.test("parseIp reads dotted IPv4 and rejects other forms", () => {
  assertEquals(ip("0.0.0.0").value, 0n);
  assertEquals(ip("255.255.255.255").value, 0xffffffffn);
  assertEquals(ip("169.254.169.254").value, 0xa9fea9fen);
  for (const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "0xA9FEA9FE", "1.2.3.-4", ""]) {
    assertEquals(parseIp(bad), null, bad);
  }
});

Deno.test("parseIp reads IPv6 with compression, embedded IPv4, brackets and zones", () => {
  assertEquals(ip("::").value, 0n);
  assertEquals(ip("::1").value, 1n);
  assertEquals(ip("[::1]").value, 1n);
  assertEquals(ip("fe80::1%eth0").value, (0xfe80n << 112n) | 1n);
  assertEquals(ip("1:2:3:4:5:6:7:8").value, 0x00010002000300040005000600070008n);
  assertEquals(ip("1::").value, 1n << 112n);
  assertEquals(ip("1:2:3:4:5:6:7::").value, 0x00010002000300040005000600070000n);
  assertEquals(ip("::ffff:169.254.1.1").value, 0xffffa9fe0101n);
  assertEquals(ip("::ffff:169.254.1.1").value, ip("::ffff:a9fe:101").value);
  assertEquals(ip("1:2:3:4:5:6:1.2.3.4").value, 0x00010002000300040005000601020304n);
  assertEquals(ip("FD00:EC2::254").version, 6);
  for (
    const bad of [
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      ":::",
      "1:2:3:4:5:6:7:8::",
      "12345::",
      "g::1",
      ":1.2.3.4",
      "::1.2.3",
      "1::2:",
      "example.com:80",
    ]
  ) {
    assertEquals(parseIp(bad), null, bad);
  }
});

Deno.test("formatIp prints dotted IPv4 and RFC 5952 IPv6", () => {
  assertEquals(formatIp(ip("10.1.2.3")), "10.1.2.3");
  assertEquals(formatIp(ip("0:0:0:0:0:0:0:1")), "::1");
  assertEquals(formatIp(ip("fe80:0:0:0:0:0:0:0")), "fe80::");
  assertEquals(formatIp(ip("1:0:0:2:0:0:0:3")), "1:0:0:2::3");
  assertEquals(formatIp(ip("1:0:2:3:4:5:6:7")), "1:0:2:3:4:5:6:7");
  assertEquals(formatIp(ip("::")), "::");
});

Deno.test("parseCidr clears host bits and cidrContains matches by prefix", () => {
  const net = parseCidr("10.1.2.3/8");
  assertEquals(net, { version: 4, network: 0x0a000000n, prefix: 8 });
  assert(cidrContains(net!, ip("10.255.255.255")));
  assert(!cidrContains(net!, ip("11.0.0.0")));
  const v6 = parseCidr("fc00::/7")!;
  assert(cidrContains(v6, ip("fd00:ec2::254")));
  assert(!cidrContains(v6, ip("fe00::")));
  assert(!cidrContains(v6, ip("10.0.0.1")), "a v6 network never contains a v4 address");
  assert(cidrContains(parseCidr("0.0.0.0/0")!, ip("8.8.8.8")));
  assert(cidrContains(parseCidr("::/0")!, ip("2001:db8::1")));
  assertEquals(parseCidr("10.0.0.0/33"), null);
  assertEquals(parseCidr("::/129"), null);
  assertEquals(parseCidr("10.0.0.0/08"), null);
  assertEquals(parseCidr("10.0.0.0"), null);
});

Deno.test("unwrapIp unwraps IPv4-mapped, NAT64 and IPv4-compatible addresses only", () => {
  assertEquals(unwrapIp(ip("::ffff:169.254.1.1")), ip("169.254.1.1"));
  assertEquals(unwrapIp(ip("64:ff9b::a9fe:a9fe")), ip("169.254.169.254"));
  assertEquals(unwrapIp(ip("::127.0.0.1")), ip("127.0.0.1"));
  assertEquals(unwrapIp(ip("::1")), ip("::1"));
  assertEquals(unwrapIp(ip("::")), ip("::"));
  assertEquals(unwrapIp(ip("2001:db8::1")), ip("2001:db8::1"));
});

Deno.test("classifyIp names the class of special addresses and passes public ones", () => {
  const kind = (text: string) => classifyIp(ip(text))?.kind ?? "public";
  assertEquals(kind("0.0.0.0"), "unspecified");
  assertEquals(kind("::"), "unspecified");
  assertEquals(kind("169.254.169.254"), "link-local");
  assertEquals(kind("fe80::1"), "link-local");
  assertEquals(kind("febf::1"), "link-local");
  assertEquals(kind("fd00:ec2::254"), "cloud metadata");
  assertEquals(kind("100.100.100.200"), "cloud metadata");
  assertEquals(kind("127.8.9.10"), "loopback");
  assertEquals(kind("::1"), "loopback");
  assertEquals(kind("::ffff:127.0.0.1"), "loopback");
  assertEquals(kind("10.0.0.1"), "private");
  assertEquals(kind("172.16.0.1"), "private");
  assertEquals(kind("172.31.255.255"), "private");
  assertEquals(kind("172.32.0.1"), "public");
  assertEquals(kind("192.168.1.1"), "private");
  assertEquals(kind("100.64.0.1"), "private");
  assertEquals(kind("100.128.0.1"), "public");
  assertEquals(kind("fc00::1"), "private");
  assertEquals(kind("8.8.8.8"), "public");
  assertEquals(kind("2001:4860:4860::8888"), "public");
});

Deno.test("parseAllowEntry accepts host names, IPs and CIDRs and rejects the rest", () => {
  assertEquals(parseAllowEntry(" Example.COM. "), { kind: "host", host: "example.com" });
  assertEquals(parseAllowEntry("10.0.0.0/8").kind, "cidr");
  assertEquals(parseAllowEntry("[::1]").kind, "cidr");
  assertEquals(parseAllowEntry("169.254.169.254"), {
    kind: "cidr",
    cidr: { version: 4, network: 0xa9fea9fen, prefix: 32 },
  });
  for (const bad of ["", "http://example.com", "example.com:80", "10.0.0.0/40", "a b"]) {
    const error = assertThrows(() => parseAllowEntry(bad), TypeError);
    assert(error.message.includes(`"${bad}"`), error.message);
  }
});

Deno.test("createEgressPolicy throws on an invalid allow entry", () => {
  assertThrows(() => policy({ allow: ["not a host"] }), TypeError, "not a host");
});

Deno.test("only http and https URLs are allowed", async () => {
  const p = policy();
  await refused(p, "ftp://example.com/x", `only http: and https: URLs are allowed, not "ftp:"`);
  await refused(p, "file:///etc/passwd", `"file:"`);
  await refused(p, "data:text/plain,hi", `"data:"`);
});

Deno.test("link-local and metadata addresses are refused even without denyPrivate", async () => {
  const p = policy();
  const error = await refused(p, "http://169.254.169.254/latest", "link-local");
  assertEquals(
    error.message,
    `Fetch to "http://169.254.169.254/latest" refused: 169.254.169.254 is a link-local address`,
  );
  await refused(p, "http://[fe80::1]/", "fe80::1 is a link-local address");
  await refused(p, "http://[fd00:ec2::254]/", "cloud metadata address");
  await refused(p, "http://100.100.100.200/", "cloud metadata address");
  await refused(p, "http://0.0.0.0:8080/", "0.0.0.0 is an unspecified address");
  await refused(p, "http://[::]/", "is an unspecified address");
});

Deno.test("odd IPv4 forms are checked after URL normalisation", async () => {
  const p = policy();
  await refused(p, "http://2852039166/", "169.254.169.254 is a link-local address");
  await refused(p, "http://0xA9FEA9FE/", "169.254.169.254");
  await refused(p, "http://0251.0376.0251.0376/", "169.254.169.254");
  await refused(p, "http://169.254.43518/", "169.254.169.254");
  await refused(p, "http://0/", "0.0.0.0 is an unspecified address");
});

Deno.test("IPv4-mapped IPv6 addresses are unwrapped before checking", async () => {
  const p = policy();
  await refused(p, "http://[::ffff:169.254.1.1]/", "link-local");
  await refused(p, "http://[::ffff:a9fe:a9fe]/", "link-local");
});

Deno.test("metadata host names are refused without resolving them", async () => {
  const dns = table({ "metadata.google.internal": ["8.8.8.8"] });
  const p = policy({ resolve: dns.resolve });
  await refused(p, "http://metadata.google.internal/x", "metadata.google.internal is a cloud");
  await refused(p, "http://METADATA.google.internal./x", "cloud metadata host name");
  await refused(p, "http://metadata/", "cloud metadata host name");
  await refused(p, "http://metadata.azure.com/", "cloud metadata host name");
  await refused(p, "http://instance-data/", "cloud metadata host name");
  assertEquals(dns.asked, []);
});

Deno.test("loopback and private addresses pass unless denyPrivate", async () => {
  const open = policy();
  for (
    const url of ["http://127.0.0.1:9/", "http://[::1]/", "http://10.1.1.1/", "http://localhost/"]
  ) {
    await open.check(new URL(url));
  }
  const closed = policy({ denyPrivate: true });
  await refused(closed, "http://127.0.0.1:9/", "127.0.0.1 is a loopback address");
  await refused(closed, "http://[::1]/", "::1 is a loopback address");
  await refused(closed, "http://10.1.1.1/", "10.1.1.1 is a private address");
  await refused(closed, "http://172.20.0.1/", "private address");
  await refused(closed, "http://192.168.0.10/", "private address");
  await refused(closed, "http://100.64.1.1/", "private address");
  await refused(closed, "http://[fd12::1]/", "private address");
  await refused(closed, "http://[::ffff:10.0.0.1]/", "private address");
  await closed.check(new URL("http://8.8.8.8/"));
});

Deno.test("localhost and *.localhost are loopback without asking DNS", async () => {
  const dns = table({});
  const p = policy({ denyPrivate: true, resolve: dns.resolve });
  await refused(p, "http://localhost:3000/", "localhost is a loopback host name");
  await refused(p, "http://api.localhost/", "api.localhost is a loopback host name");
  assertEquals(dns.asked, []);
});

Deno.test("every resolved address of a host name is checked", async () => {
  const dns = table({
    "public.test": ["93.184.216.34", "2606:2800:220:1::1"],
    "mixed.test": ["93.184.216.34", "10.0.0.7"],
    "rebind.test": ["169.254.169.254"],
    "mapped.test": ["::ffff:169.254.0.1"],
  });
  const p = policy({ denyPrivate: true, resolve: dns.resolve });
  await p.check(new URL("https://public.test/"));
  await refused(p, "https://mixed.test/", "mixed.test resolves to 10.0.0.7, a private address");
  await refused(p, "https://rebind.test/", "resolves to 169.254.169.254, a link-local address");
  await refused(p, "https://mapped.test/", "a link-local address");
  const open = policy({ resolve: dns.resolve });
  await open.check(new URL("https://mixed.test/"));
  await refused(open, "https://rebind.test/", "link-local");
});

Deno.test("a resolution failure is not a refusal", async () => {
  const p = policy({ denyPrivate: true });
  await p.check(new URL("https://does-not-exist.test/"));
});

Deno.test("allow entries exempt host names, IPs and CIDRs", async () => {
  const dns = table({ "intranet.test": ["10.0.0.5"], "other.test": ["10.0.0.6"] });
  const p = policy({
    denyPrivate: true,
    resolve: dns.resolve,
    allow: ["intranet.test", "127.0.0.1", "192.168.0.0/16", "169.254.169.254", "metadata"],
  });
  await p.check(new URL("http://intranet.test/"));
  await p.check(new URL("http://127.0.0.1:5000/"));
  await p.check(new URL("http://192.168.44.2/"));
  await p.check(new URL("http://[::ffff:192.168.1.1]/"));
  await p.check(new URL("http://169.254.169.254/latest"));
  await p.check(new URL("http://metadata/"));
  await refused(p, "http://127.0.0.2/", "loopback address");
  await refused(p, "http://169.254.1.1/", "link-local");
  await refused(p, "http://other.test/", "resolves to 10.0.0.6");
});

Deno.test("an allowed host name is not resolved", async () => {
  const dns = table({ "intranet.test": ["10.0.0.5"] });
  const p = policy({ denyPrivate: true, resolve: dns.resolve, allow: ["intranet.test"] });
  await p.check(new URL("http://intranet.test/"));
  assertEquals(dns.asked, []);
});

Deno.test("self-calls to any path of this server are refused in every spelling", async () => {
  const p = policy({
    selfOrigins: [new URL("http://localhost:8080/call")],
    allow: ["127.0.0.0/8", "localhost"],
  });
  const message = "a task cannot call this server's own API";
  for (
    const url of [
      "http://localhost:8080/task",
      "http://LOCALHOST:8080/Task/",
      "http://127.0.0.1:8080/call",
      "http://127.0.0.2:8080/CALL//",
      "http://[::1]:8080/call",
      "http://127.0.0.1:8080/x/../call",
      "http://127.0.0.1:8080/%2e%2e/task",
      "http://127.0.0.1:8080/call?taskId=x",
      "http://localhost.:8080/task",
      "http://2130706433:8080/task",
      "http://127.0.0.1:8080/status",
      "http://127.0.0.1:8080/tasks",
    ]
  ) {
    const error = await refused(p, url, message);
    assert(error.message.startsWith("Fetch to "), error.message);
  }
  await p.check(new URL("http://127.0.0.1:8081/task"));
});

Deno.test("self-calls are recognised by the self host name, default port and local addresses", async () => {
  const dns = table({
    "me.test": ["192.0.2.2"],
    "alias.test": ["192.0.2.2"],
    "far.test": ["8.8.8.8"],
  });
  const p = policy({
    selfOrigins: [new URL("https://flow.example.com/call")],
    resolve: dns.resolve,
    localAddresses: () => ["192.0.2.2", "fe80::1%eth0"],
  });
  await refused(p, "https://flow.example.com/task", "cannot call this server");
  await refused(p, "https://flow.example.com:443/call", "cannot call this server");
  await refused(p, "https://192.0.2.2/call", "cannot call this server");
  await refused(p, "https://alias.test/call", "cannot call this server");
  await p.check(new URL("https://far.test/call"));
  await refused(p, "https://flow.example.com/status", "cannot call this server");
  await p.check(new URL("http://flow.example.com/task")); // port 80, not 443
});
