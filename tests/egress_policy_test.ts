import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  classifyIp,
  createEgressPolicy,
  EgressDeniedError,
  type EgressPolicyOptions,
  embeddedIpv4,
  type IpAddress,
  parseAllowEntry,
  parseIp,
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

Deno.test("parseIp reads dotted IPv4 and IPv6 and rejects other forms", () => {
  assertEquals(ip("169.254.169.254").toString(), "169.254.169.254");
  assertEquals(ip("[::1]").toString(), "::1");
  assertEquals(ip("fe80::1%eth0").range(), "linkLocal");
  assertEquals(ip("::ffff:169.254.1.1").toNormalizedString(), "0:0:0:0:0:ffff:a9fe:101");
  for (
    const bad of [
      "256.0.0.1",
      "1.2.3",
      "01.2.3.4",
      "0xA9FEA9FE",
      "2852039166",
      "",
      "1::2::3",
      "g::1",
      "example.com:80",
    ]
  ) {
    assertEquals(parseIp(bad), null, bad);
  }
});

Deno.test("embeddedIpv4 reads the IPv4 address of every transition range", () => {
  const embedded = (text: string) => embeddedIpv4(ip(text)).map((a) => a.toString());
  assertEquals(embedded("::ffff:169.254.1.1"), ["169.254.1.1"]);
  assertEquals(embedded("::ffff:0:a9fe:a9fe"), ["169.254.169.254"]); // IPv4-translated
  assertEquals(embedded("64:ff9b::a9fe:a9fe"), ["169.254.169.254"]); // NAT64
  assertEquals(embedded("::7f00:1"), ["127.0.0.1"]); // IPv4-compatible
  assertEquals(embedded("2002:a9fe:a9fe::1"), ["169.254.169.254"]); // 6to4
  // Teredo: server 65.54.227.120, client 169.254.169.254 stored inverted.
  assertEquals(embedded("2001:0:4136:e378:8000:63bf:5601:5601"), [
    "65.54.227.120",
    "169.254.169.254",
  ]);
  assertEquals(embedded("::1"), []);
  assertEquals(embedded("::"), []);
  assertEquals(embedded("2606:4700::1111"), []);
  assertEquals(embedded("8.8.8.8"), []);
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
  assertEquals(kind("::ffff:100.100.100.200"), "cloud metadata");
  assertEquals(kind("255.255.255.255"), "broadcast");
  assertEquals(kind("224.0.0.1"), "multicast");
  assertEquals(kind("ff02::1"), "multicast");
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
  assertEquals(kind("fec0::1"), "site-local");
  assertEquals(kind("198.18.0.1"), "reserved");
  assertEquals(kind("198.19.255.255"), "reserved");
  assertEquals(kind("192.0.0.8"), "reserved");
  assertEquals(kind("2001:db8::1"), "reserved");
  // Transition ranges are judged by the address they embed.
  assertEquals(kind("::ffff:0:a9fe:a9fe"), "link-local");
  assertEquals(kind("2002:a9fe:a9fe::1"), "link-local");
  assertEquals(kind("2001:0:4136:e378:8000:63bf:5601:5601"), "link-local");
  assertEquals(kind("2002:0a00:0001::1"), "private");
  assertEquals(kind("::7f00:1"), "loopback");
  assertEquals(kind("2002:808:808::1"), "public");
  assertEquals(kind("::ffff:8.8.8.8"), "public");
  assertEquals(kind("8.8.8.8"), "public");
  assertEquals(kind("2001:4860:4860::8888"), "public");
  // A stricter embedded verdict wins over the range's own one.
  assertEquals(classifyIp(ip("2002:a9fe:a9fe::1"))?.always, true);
});

Deno.test("parseAllowEntry accepts host names, IPs and CIDRs and rejects the rest", () => {
  assertEquals(parseAllowEntry(" Example.COM. "), { kind: "host", host: "example.com" });
  assertEquals(parseAllowEntry("10.0.0.0/8").kind, "cidr");
  assertEquals(parseAllowEntry("[::1]").kind, "cidr");
  const entry = parseAllowEntry("169.254.169.254");
  if (entry.kind !== "cidr") throw new Error("expected a CIDR entry");
  assertEquals([entry.cidr[0].toString(), entry.cidr[1]], ["169.254.169.254", 32]);
  for (
    const bad of ["", "http://example.com", "example.com:80", "10.0.0.0/40", "10.0.0.0/08", "a b"]
  ) {
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

Deno.test("a name that cannot be resolved is refused (fail closed)", async () => {
  for (const denyPrivate of [false, true]) {
    const p = policy({ denyPrivate });
    await refused(p, "https://does-not-exist.test/", "cannot resolve does-not-exist.test");
  }
  const empty = policy({ resolve: () => Promise.resolve([]) });
  await refused(empty, "https://empty.test/", "empty.test has no A or AAAA record");
});

Deno.test("the check names the address to connect to, IPv4 first", async () => {
  const dns = table({
    "dual.test": ["2606:2800:220:1::1", "93.184.216.34"],
    "six.test": ["2606:2800:220:1::1"],
    "intranet.test": ["10.0.0.5"],
  });
  const p = policy({ resolve: dns.resolve, allow: ["intranet.test"] });
  assertEquals(await p.check(new URL("https://dual.test/")), { address: "93.184.216.34" });
  assertEquals(await p.check(new URL("https://six.test/")), { address: "2606:2800:220:1::1" });
  assertEquals(await p.check(new URL("http://[2606:4700::1]/")), { address: "2606:4700::1" });
  assertEquals(await p.check(new URL("http://localhost:9/")), { address: "127.0.0.1" });
  // An allowed name the policy did not need to resolve is left to the fetch.
  assertEquals(await p.check(new URL("http://intranet.test/")), { address: undefined });
});

Deno.test("special ranges that embed or denote special addresses are refused", async () => {
  const open = policy();
  await refused(open, "http://[::ffff:0:a9fe:a9fe]/", "a link-local address");
  await refused(open, "http://[2002:a9fe:a9fe::1]/", "a link-local address");
  await refused(open, "http://[2001:0:4136:e378:8000:63bf:5601:5601]/", "a link-local address");
  await refused(open, "http://[64:ff9b::a9fe:a9fe]/", "a link-local address");
  await refused(open, "http://255.255.255.255/", "a broadcast address");
  await open.check(new URL("http://198.18.0.1/"));
  const closed = policy({ denyPrivate: true });
  await refused(closed, "http://[fec0::1]/", "a site-local address");
  await refused(closed, "http://198.18.0.1/", "a reserved address");
  await refused(closed, "http://198.19.0.1/", "a reserved address");
  await refused(closed, "http://192.0.0.170/", "a reserved address");
  await refused(closed, "http://[2002:0a00:0001::1]/", "a private address");
  await refused(closed, "http://[::7f00:1]/", "a loopback address");
  await closed.check(new URL("http://[2002:808:808::1]/"));
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
    "flow.example.com": ["93.184.216.34"],
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
