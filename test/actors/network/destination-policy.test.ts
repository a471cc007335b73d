// The destination policy on its own: what the default refuses (both address families, names that
// resolve there, addresses in disguise), what the operator's allow list admits and with which TLS
// exceptions, the platform's relay and NATS refused whatever the list's networks say, DNS rebinding
// defeated by connecting to the checked address, and the allow list's syntax.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { AllowListError, parseAllowedDestinations } from "../../../actors/network/allowed-destinations.ts";
import {
  DestinationNotFound,
  DestinationPolicy,
  DestinationRefused,
  type ProtectedService,
  type Resolver,
} from "../../../actors/network/destination-policy.ts";
import { pinnedLookup } from "../../../actors/network/pinned-lookup.ts";

/** A resolver answering from a table (names missing from it do not exist). */
function table(entries: Record<string, string[]>): Resolver {
  return async (host) => {
    const found = entries[host];
    if (found === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return found;
  };
}

async function refusal(policy: DestinationPolicy, host: string, port = 143): Promise<string> {
  try {
    await policy.check(host, port, "IMAP server");
  } catch (err) {
    if (err instanceof DestinationRefused) return err.message;
    throw err;
  }
  throw new Error(`${host}:${port} was admitted`);
}

test("the default policy refuses loopback, private, link-local, CGNAT, multicast and unspecified addresses, IPv4 and IPv6, in any disguise", async () => {
  const policy = new DestinationPolicy();
  const cases: [string, RegExp][] = [
    ["127.0.0.1", /127\.0\.0\.1 is a loopback address/],
    ["10.1.2.3", /10\.1\.2\.3 is a private address/],
    ["192.168.1.1", /a private address/],
    ["172.16.5.4", /a private address/],
    ["169.254.169.254", /169\.254\.169\.254 is a link-local address/],
    ["100.64.0.1", /carrier-grade NAT/],
    ["224.0.0.251", /multicast/],
    ["0.0.0.0", /unspecified/],
    ["255.255.255.255", /broadcast/],
    ["[::1]", /::1 is a loopback address/],
    ["::", /unspecified/],
    ["fc00::1", /unique local/],
    ["fd12:3456::1", /unique local/],
    ["fe80::1", /link-local/],
    ["ff02::1", /multicast/],
    // The same addresses written otherwise.
    ["[::ffff:127.0.0.1]", /loopback/],
    ["::ffff:169.254.169.254", /link-local/],
    ["64:ff9b::a01:203", /private address \(embedded in a NAT64 address\)/],
    ["2002:7f00:1::", /loopback/],
    ["127.1", /loopback/],
    ["2130706433", /loopback/],
    ["0x7f.0.0.1", /loopback/],
  ];
  for (const [host, reason] of cases) {
    const message = await refusal(policy, host);
    assert.match(message, reason, host);
    assert.match(message, /^IMAP server .+:143 is not an allowed destination: /, host);
    assert.match(message, /CALIOPEN_ALLOWED_DESTINATIONS/, host);
  }
});

test("a name that resolves to loopback is refused: localhost through the system's resolver, and a name with one private address among public ones", async () => {
  const system = new DestinationPolicy();
  assert.match(await refusal(system, "localhost"), /^IMAP server localhost:143 is not an allowed destination: localhost resolves to a loopback address/);
  assert.match(await refusal(system, "LocalHost."), /localhost resolves to/, "case and a final dot change nothing");
  const policy = new DestinationPolicy({ resolve: table({ "mixed.example": ["93.184.216.34", "10.0.0.7"] }) });
  const mixed = await refusal(policy, "mixed.example", 993);
  assert.match(mixed, /mixed\.example resolves to a private address/);
  assert.not.match(mixed, /10\.0\.0\.7/, "the internal address a name leads to is not shown");
});

test("public destinations pass: every address in the resolver's order, the name kept for TLS, the certificate verified", async () => {
  const policy = new DestinationPolicy({ resolve: table({ "imap.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"] }) });
  const checked = await policy.check("IMAP.Example.com", 993, "IMAP server");
  assert.equal(checked.addresses, ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]);
  assert.is(checked.servername, "imap.example.com");
  assert.equal(checked.exceptions, { cleartext: false, unverifiedTls: false });
  assert.equal(checked.tls, { rejectUnauthorized: true });
  const literal = await policy.check("93.184.216.34", 465, "SMTP server");
  assert.equal(literal.addresses, ["93.184.216.34"]);
  assert.is(literal.servername, undefined, "no SNI for an address");
  try {
    await policy.check("nowhere.example", 993, "IMAP server");
    assert.unreachable("resolved");
  } catch (err) {
    assert.instance(err, DestinationNotFound);
    assert.match((err as Error).message, /nowhere\.example:993: no such host/);
  }
});

test("the allow list admits its networks and servers, and its TLS exceptions apply to the entries that carry them only", async () => {
  const policy = new DestinationPolicy({
    allow: parseAllowedDestinations(
      "10.0.0.0/8, mail.internal:143+cleartext, legacy.example:993+unverified-tls, fd00::/8, [fd00::25]:587+cleartext, 127.0.0.0/8+cleartext+unverified-tls",
    ),
    ca: ["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"],
    resolve: table({ "mail.internal": ["192.168.7.7"], "legacy.example": ["93.184.216.34"], "inside.example": ["10.20.30.40"] }),
  });
  const none = { cleartext: false, unverifiedTls: false };
  assert.equal((await policy.check("10.1.2.3", 993, "IMAP server")).exceptions, none, "a network admits, without exceptions");
  assert.equal((await policy.check("inside.example", 993, "IMAP server")).addresses, ["10.20.30.40"], "a name resolving into an admitted network");
  assert.equal(
    (await policy.check("mail.internal", 143, "IMAP server")).exceptions,
    { cleartext: true, unverifiedTls: false },
    "a server entry admits its name wherever it resolves",
  );
  assert.match(await refusal(policy, "mail.internal", 993), /mail\.internal resolves to a private address/, "at its port only");
  const legacy = await policy.check("legacy.example", 993, "IMAP server");
  assert.equal(legacy.exceptions, { cleartext: false, unverifiedTls: true });
  assert.is(legacy.tls.rejectUnauthorized, false);
  assert.ok(legacy.tls.ca !== undefined && legacy.tls.ca.length > 1 && legacy.tls.ca.at(-1)?.includes("MIIB"), "the operator's CA beside Node's own");
  assert.equal((await policy.check("legacy.example", 143, "IMAP server")).exceptions, none, "the exception is for that port");
  assert.equal((await policy.check("[fd00::9]", 993, "IMAP server")).addresses, ["fd00::9"]);
  assert.equal((await policy.check("fd00::25", 587, "SMTP server")).exceptions, { cleartext: true, unverifiedTls: false });
  assert.equal((await policy.check("127.0.0.1", 143, "IMAP server")).exceptions, { cleartext: true, unverifiedTls: true });
  assert.match(await refusal(policy, "172.16.0.1"), /private address/, "other networks stay refused");
  assert.match(await refusal(policy, "fc00::1"), /unique local/);
});

test("the platform's relay and NATS are refused even when the allow list admits their network or names them; other ports of their hosts only by an entry naming that server", async () => {
  const platform: ProtectedService[] = [
    { what: "the platform's SMTP relay (CALIOPEN_SMTP_RELAY)", host: "127.0.0.1", port: 2525 },
    { what: "a NATS server of the platform", host: "10.0.0.5", port: 4222 },
    { what: "the platform's SMTP relay (CALIOPEN_SMTP_RELAY)", host: "mta.internal", port: 25 },
  ];
  const policy = new DestinationPolicy(
    {
      allow: parseAllowedDestinations("127.0.0.0/8,10.0.0.0/8,127.0.0.1:2525,10.0.0.5:4222,10.0.0.5:993"),
      resolve: table({ "mta.internal": ["10.0.0.6"], "smtp.attacker.example": ["10.0.0.6"], "nats.attacker.example": ["10.0.0.5"] }),
    },
    () => platform,
  );
  assert.match(await refusal(policy, "127.0.0.1", 2525), /is not an allowed destination: it is the platform's SMTP relay \(CALIOPEN_SMTP_RELAY\)$/);
  assert.match(await refusal(policy, "[::ffff:127.0.0.1]", 2525), /it is the platform's SMTP relay/);
  assert.match(await refusal(policy, "10.0.0.5", 4222), /it is a NATS server of the platform$/);
  assert.match(await refusal(policy, "nats.attacker.example", 4222), /it is a NATS server of the platform/, "whatever name leads there");
  assert.match(await refusal(policy, "smtp.attacker.example", 25), /it is the platform's SMTP relay/, "the relay's name is resolved too");
  assert.match(await refusal(policy, "10.0.0.5", 8222), /on the host of a NATS server of the platform; only an entry naming this host:port/);
  assert.match(await refusal(policy, "127.0.0.1", 587), /on the host of the platform's SMTP relay/);
  assert.equal((await policy.check("10.0.0.5", 993, "IMAP server")).addresses, ["10.0.0.5"], "an entry naming the server admits another port of that host");
  assert.equal((await policy.check("127.0.0.2", 2525, "SMTP server")).addresses, ["127.0.0.2"], "another loopback address is another host");
});

test("DNS rebinding: the connection is pinned to the address that was checked; the resolver is asked once per check", async () => {
  const answers = [["93.184.216.34"], ["127.0.0.1"]];
  let asked = 0;
  const policy = new DestinationPolicy({ resolve: async () => answers[Math.min(asked++, answers.length - 1)] as string[] });
  const checked = await policy.check("rebind.example", 443, "web server");
  assert.equal(checked.addresses, ["93.184.216.34"]);
  const lookup = pinnedLookup(checked);
  const one = await new Promise<unknown[]>((resolve, reject) =>
    lookup("rebind.example", {}, (err, address, family) => (err ? reject(err) : resolve([address, family]))),
  );
  const all = await new Promise<unknown>((resolve, reject) =>
    lookup("rebind.example", { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))),
  );
  assert.equal(one, ["93.184.216.34", 4], "the connection gets the checked address");
  assert.equal(all, [{ address: "93.184.216.34", family: 4 }]);
  assert.is(asked, 1, "the name was not resolved again for the connection");
  // The next connection checks again, and sees the new answer for what it is.
  assert.match(await refusal(policy, "rebind.example", 443), /rebind\.example resolves to a loopback address/);
  const v6 = await new Promise<unknown>((resolve) => lookup("rebind.example", { family: 6 }, (err) => resolve((err as { code?: string } | null)?.code)));
  assert.is(v6, "ENOTFOUND", "no other address is made up for another family");
});

test("without DNS (the API): address literals and localhost are judged at once, names are left to connect time", () => {
  const policy = new DestinationPolicy({ allow: parseAllowedDestinations("10.9.0.0/16,mail.internal:143") }, () => [
    { what: "a NATS server of the platform", host: "10.9.0.1", port: 4222 },
  ]);
  assert.match(policy.refusalWithoutDns("127.0.0.1", 25) ?? "", /^127\.0\.0\.1 is a loopback address/);
  assert.match(policy.refusalWithoutDns("169.254.169.254", 80) ?? "", /link-local/);
  assert.match(policy.refusalWithoutDns("localhost", 143) ?? "", /loopback/);
  assert.match(policy.refusalWithoutDns("imap.localhost", 143) ?? "", /loopback/);
  assert.match(policy.refusalWithoutDns("10.9.0.1", 4222) ?? "", /NATS server/);
  assert.is(policy.refusalWithoutDns("10.9.3.4", 993), null, "admitted network");
  assert.is(policy.refusalWithoutDns("imap.example.com", 993), null);
  assert.is(policy.refusalWithoutDns("mail.internal", 143), null);
  assert.is(policy.refusalWithoutDns("93.184.216.34", 993), null);
});

test("the allow list's syntax: networks, addresses, servers, markers; anything else is an error naming the entry", () => {
  const entries = parseAllowedDestinations(
    " 10.0.0.0/8 ,192.0.2.7, fd00::/8,mail.Internal.:143+cleartext,[fd00::25]:587+unverified-tls+cleartext,10.1.1.1:25,",
  );
  assert.equal(
    entries.map((entry) => (entry.kind === "network" ? `net ${entry.network[0].toString()}/${entry.network[1]}` : `server ${entry.host} ${entry.port}`)),
    ["net 10.0.0.0/8", "net 192.0.2.7/32", "net fd00::/8", "server mail.internal 143", "server fd00::25 587", "server 10.1.1.1 25"],
  );
  assert.equal(entries[3]?.exceptions, { cleartext: true, unverifiedTls: false });
  assert.equal(entries[4]?.exceptions, { cleartext: true, unverifiedTls: true });
  assert.equal(parseAllowedDestinations(""), []);
  for (const bad of ["10.0.0.0/33", "mail.internal", "mail.internal:143+plaintext", "mail.internal:99999", "http://mail.internal:143", "*.internal:143"]) {
    try {
      parseAllowedDestinations(`10.0.0.0/8,${bad}`);
      assert.unreachable(bad);
    } catch (err) {
      assert.instance(err, AllowListError, bad);
      assert.ok((err as Error).message.includes(`"${bad}"`), `${bad}: ${(err as Error).message}`);
    }
  }
});

test.run();
