// KeyAction discover_key against real peers: keys made by GnuPG, an SKS key server they were sent to by
// `gpg --send-keys`, and Web Key Directories built by `gpg-wks-client --install-key`, served by a local
// web server standing for the domains. Usable new keys are stored with what gpg says of them; expired,
// revoked, unreadable, foreign and already-known keys are passed over with a reason; a source that is
// down or silent does not stop the others, and the report is saved on the contact.

import { randomUUID } from "node:crypto";
import { cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { discoverKeys, type KeySources } from "../../../actors/keys/key-discovery.ts";
import { parsePublicKey } from "../../../actors/keys/parse-public-key.ts";
import { parseAllowedDestinations } from "../../../actors/network/allowed-destinations.ts";
import { DestinationPolicy } from "../../../actors/network/destination-policy.ts";
import { type Contact, SCHEMA_VERSION } from "../../../actors/store/model.ts";
import { freePort } from "../../../scripts/local-servers/free-port.ts";
import { Gpg } from "../../helpers/gpg.ts";
import { startTestKeyServer, type TestKeyServer } from "../../helpers/hkp-server.ts";
import { startSilentServer, startWebServer, type TestWebServer } from "../../helpers/wkd-server.ts";
import { newContact, type StoreFixture, startStore } from "../store/fixture.ts";

interface Keys {
  /** ann@example.com, on the key server (and in example.com's WKD too). */
  hkp: string;
  /** ann@example.com, expired, on the key server. */
  expired: string;
  /** ann@example.com, revoked, on the key server. */
  revoked: string;
  /** ann@example.org, RSA, in example.org's WKD (advanced method). */
  wkd: string;
  /** ann@example.net, in example.net's WKD (direct method only). */
  direct: string;
  /** other@example.org: served by example.org's WKD for alias@example.org. */
  foreign: string;
  /** known@example.com, on the key server and already on the contact. */
  known: string;
  /** ann.other@example.com, on the key server: its words match a search for ann@example.com. */
  lookalike: string;
}

interface Ctx {
  f: StoreFixture;
  gpg: Gpg;
  sks: TestKeyServer;
  web: TestWebServer;
  dir: string;
  fpr: Keys;
}
const test = suite<Ctx>("KeyAction discover_key");

const ANN = ["ann@example.com", "ann@example.org", "ann@example.net", "bad@example.org", "alias@example.org", "known@example.com"];

test.before(async (ctx) => {
  ctx.f = await startStore();
  ctx.gpg = await Gpg.open();
  ctx.sks = await startTestKeyServer();
  ctx.dir = await mkdtemp(join(tmpdir(), "caliopen-wkd-"));
  const { gpg, dir } = ctx;
  ctx.fpr = {
    hkp: await gpg.generate("Ann Lee <ann@example.com>"),
    expired: await gpg.generate("Old Ann <Ann@Example.com>", { expire: "1d", fakedTime: "20200101T000000" }),
    revoked: await gpg.generate("Lost Ann <ann@example.com>"),
    wkd: await gpg.generate("Ann at org <ann@example.org>", { algorithm: "rsa2048" }),
    direct: await gpg.generate("Ann at net <ann@example.net>", { algorithm: "future-default" }),
    foreign: await gpg.generate("Someone Else <other@example.org>"),
    known: await gpg.generate("Known <known@example.com>"),
    lookalike: await gpg.generate("Ann Example <ann.other@example.com>"),
  };
  await gpg.revoke(ctx.fpr.revoked);
  await gpg.sendKeys(ctx.sks.hkp, ctx.fpr.hkp, ctx.fpr.expired, ctx.fpr.revoked, ctx.fpr.known, ctx.fpr.lookalike);

  // Advanced-method trees (web root of openpgpkey.<domain>) made by GnuPG's own tool.
  const advanced = join(dir, "advanced");
  const wks = join(advanced, ".well-known/openpgpkey");
  await mkdir(wks, { recursive: true });
  await gpg.wksInstall(wks, ctx.fpr.wkd, "ann@example.org");
  await gpg.wksInstall(wks, ctx.fpr.hkp, "ann@example.com");
  // example.org's WKD serves a foreign key for alias@, and garbage for bad@.
  await writeFile(join(wks, "example.org/hu", await gpg.wkdHash("alias@example.org")), await gpg.exportBinary(ctx.fpr.foreign));
  const damaged = await gpg.exportBinary(ctx.fpr.foreign);
  await writeFile(
    join(wks, "example.org/hu", await gpg.wkdHash("bad@example.org")),
    Buffer.concat([damaged.subarray(0, 40), Buffer.from("not the rest of a key")]),
  );
  // example.net has no openpgpkey sub-domain: its key is at the direct-method place of its own web root.
  const scratch = join(dir, "scratch");
  await mkdir(scratch);
  await gpg.wksInstall(scratch, ctx.fpr.direct, "ann@example.net");
  const net = join(dir, "example.net/.well-known/openpgpkey");
  await mkdir(net, { recursive: true });
  await cp(join(scratch, "example.net/hu"), join(net, "hu"), { recursive: true });

  ctx.web = await startWebServer((host) =>
    host.startsWith("openpgpkey.") && host !== "openpgpkey.example.net" ? advanced : host === "example.net" ? join(dir, "example.net") : null,
  );
});

test.after(async (ctx) => {
  await ctx.web?.stop();
  await ctx.sks?.stop();
  await ctx.gpg?.close();
  await ctx.f?.nats.stop();
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

const sources = (ctx: Ctx, change: Partial<KeySources> = {}): KeySources => ({
  hkp: ctx.sks.url,
  wkd: { baseUrl: ctx.web.baseUrl },
  dns: null,
  timeoutMs: 3000,
  ...change,
});

/** The node's policy for WKD hosts: the test's web server (plain HTTP) and the `origins` given, nothing else. */
function admitted(ctx: Ctx, ...origins: string[]): DestinationPolicy {
  const servers = [ctx.web.origin, ...origins].map((origin) => `${new URL(origin).host}+cleartext`);
  return new DestinationPolicy({ allow: parseAllowedDestinations(servers.join(",")) });
}

async function annContact(ctx: Ctx, emails = ANN): Promise<Contact> {
  const userId = randomUUID();
  const contact = await ctx.f.store.contacts.create(newContact(userId, emails, { title: "Ann" }));
  // The contact already has this key (the user uploaded it).
  const known = await parsePublicKey(await ctx.gpg.exportPublic(ctx.fpr.known));
  await ctx.f.store.keys.add({
    schema: SCHEMA_VERSION,
    user_id: userId,
    resource_id: contact.contact_id,
    key_id: known.key_id,
    fingerprint: known.fingerprint,
    armored: known.armored,
    expire_date: known.expire_date,
    label: "mine",
    size: known.size,
    algorithm: known.algorithm,
    emails: known.emails,
    source: "user",
    date_insert: new Date().toISOString(),
  });
  return contact;
}

test("the key server and gpg agree on what was sent", async ({ sks, fpr }) => {
  const answer = await sks.get("ann@example.com");
  assert.ok(answer !== null, "sks finds ann@example.com");
  const search = await sks.get(`0x${fpr.known}`);
  assert.match(search ?? "", /BEGIN PGP PUBLIC KEY BLOCK/);
  assert.is(await sks.get("nobody@example.com"), null);
});

test("keys found on the key server and in WKDs are stored with what gpg says of them", async (ctx) => {
  const { f, gpg, fpr } = ctx;
  const contact = await annContact(ctx);
  const report = await discoverKeys(f.store, { contact_id: contact.contact_id, user_id: contact.user_id }, sources(ctx), { destinations: admitted(ctx) });
  assert.equal(report.errors, [], JSON.stringify(report.errors));
  assert.equal(report.found, [fpr.hkp, fpr.wkd, fpr.direct], JSON.stringify(report, null, 1));

  const stored = await f.store.keys.list(contact.user_id, contact.contact_id);
  const byFpr = new Map(stored.map((key) => [key.fingerprint, key]));
  assert.is(stored.length, 4, "the known key and the three found");
  const expected: [keyof Keys, string, string, number][] = [
    ["hkp", "ann@example.com", "hkp", 256],
    ["wkd", "ann@example.org", "wkd", 2048],
    ["direct", "ann@example.net", "wkd", 256],
  ];
  for (const [which, address, source, size] of expected) {
    const key = byFpr.get(fpr[which]);
    assert.ok(key, `${which} stored`);
    const listing = await gpg.listing(fpr[which]);
    assert.is(key.label, address);
    assert.is(key.source, source, which);
    assert.is(key.size, size, which);
    assert.is(key.key_id, listing.keyId);
    assert.is(key.expire_date, listing.expires?.toISOString() ?? null);
    assert.equal(key.emails, [address]);
    assert.is(key.resource_id, contact.contact_id);
    assert.is(key.user_id, contact.user_id);
    assert.is((await parsePublicKey(key.armored)).fingerprint, fpr[which], "the armored key is the key");
  }
  assert.match(byFpr.get(fpr.wkd)?.algorithm ?? "", /rsa/i);

  // The WKD was asked by the advanced method, then the direct one where the advanced had nothing.
  const asked = ctx.web.requests.filter((request) => request.query === "?l=ann");
  assert.ok(
    asked.some((r) => r.host === "openpgpkey.example.net"),
    "advanced method first",
  );
  assert.ok(
    asked.some((r) => r.host === "example.net" && r.path.startsWith("/.well-known/openpgpkey/hu/")),
    "then the direct one",
  );
  assert.not.ok(
    asked.some((r) => r.host === "example.org"),
    "no direct lookup where the advanced method gave a key",
  );

  const saved = await f.store.contacts.get(contact.user_id, contact.contact_id);
  assert.equal(saved?.key_discovery, report, "the report is saved on the contact");
  assert.equal(saved?.emails, contact.emails, "the rest of the contact is unchanged");
});

test("expired, revoked, malformed, foreign and already-known keys are skipped with their reasons", async (ctx) => {
  const { f, fpr } = ctx;
  const contact = await annContact(ctx);
  const report = await discoverKeys(f.store, { contact_id: contact.contact_id, user_id: contact.user_id }, sources(ctx), { destinations: admitted(ctx) });
  const reasonOf = (fingerprint: string) => report.skipped.filter((s) => s.fingerprint === fingerprint).map((s) => `${s.source} ${s.address}: ${s.reason}`);
  assert.equal(reasonOf(fpr.expired), ["hkp ann@example.com: expired on 2020-01-02T00:00:00.000Z"]);
  assert.equal(reasonOf(fpr.revoked), ["hkp ann@example.com: revoked"]);
  assert.equal(reasonOf(fpr.known), ["hkp known@example.com: already known for this contact"]);
  assert.equal(reasonOf(fpr.foreign), ["wkd alias@example.org: its user ids name other@example.org, not alias@example.org"]);
  // SKS searches words: ann.other@example.com comes back for ann@example.com.
  assert.equal(reasonOf(fpr.lookalike), ["hkp ann@example.com: its user ids name ann.other@example.com, not ann@example.com"]);
  assert.equal(reasonOf(fpr.hkp), ["wkd ann@example.com: already found through hkp in this discovery"]);
  const malformed = report.skipped.filter((s) => s.fingerprint === undefined);
  assert.is(malformed.length, 1, JSON.stringify(report.skipped));
  assert.is(malformed[0]?.address, "bad@example.org");
  assert.is(malformed[0]?.source, "wkd");
  assert.match(malformed[0]?.reason ?? "", /^malformed: /);
  assert.is(report.skipped.length, 7, JSON.stringify(report.skipped, null, 1));
  const stored = (await f.store.keys.list(contact.user_id, contact.contact_id)).map((key) => key.fingerprint);
  for (const which of ["expired", "revoked", "foreign", "lookalike"] as const) assert.not.ok(stored.includes(fpr[which]), `${which} not stored`);

  // A second discovery finds nothing new: everything is known by now.
  const again = await discoverKeys(f.store, { contact_id: contact.contact_id, user_id: contact.user_id }, sources(ctx), { destinations: admitted(ctx) });
  assert.equal(again.found, []);
  for (const fingerprint of [fpr.hkp, fpr.wkd, fpr.direct])
    assert.ok(
      again.skipped.some((s) => s.fingerprint === fingerprint && s.reason === "already known for this contact"),
      fingerprint,
    );
  assert.is((await f.store.keys.list(contact.user_id, contact.contact_id)).length, 4);
  assert.equal((await f.store.contacts.get(contact.user_id, contact.contact_id))?.key_discovery, again, "the last report replaces the previous one");
});

test("a key server that is down does not stop the WKD; the error is listed on the contact", async (ctx) => {
  const { f, fpr } = ctx;
  const contact = await annContact(ctx, ["ann@example.com", "ann@example.org"]);
  const down = `http://127.0.0.1:${await freePort()}`;
  const report = await discoverKeys(f.store, { contact_id: contact.contact_id, user_id: contact.user_id }, sources(ctx, { hkp: down }), {
    destinations: admitted(ctx),
  });
  assert.equal(report.found, [fpr.hkp, fpr.wkd], "both found through the WKD");
  assert.equal(
    report.errors.map((e) => `${e.source} ${e.address}`),
    ["hkp ann@example.com", "hkp ann@example.org"],
  );
  assert.match(report.errors[0]?.message ?? "", /127\.0\.0\.1.*ECONNREFUSED|ECONNREFUSED|connect/i);
  const saved = await f.store.contacts.get(contact.user_id, contact.contact_id);
  assert.equal(saved?.key_discovery?.errors, report.errors);
  assert.is((await f.store.keys.list(contact.user_id, contact.contact_id)).find((key) => key.fingerprint === fpr.hkp)?.source, "wkd");
});

test("a key server that never answers times out without holding up the WKD", async (ctx) => {
  const { f, fpr } = ctx;
  const silent = await startSilentServer();
  try {
    const contact = await annContact(ctx, ["ann@example.org"]);
    const started = Date.now();
    const report = await discoverKeys(
      f.store,
      { contact_id: contact.contact_id, user_id: contact.user_id },
      sources(ctx, { hkp: silent.origin, timeoutMs: 400 }),
      { destinations: admitted(ctx) },
    );
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    assert.equal(report.found, [fpr.wkd]);
    assert.is(report.errors.length, 1);
    assert.is(report.errors[0]?.source, "hkp");
    assert.match(report.errors[0]?.message ?? "", /no answer within 400 ms/);
  } finally {
    await silent.stop();
  }
});

test("a WKD that is down or silent does not stop the key server", async (ctx) => {
  const { f, fpr } = ctx;
  const silent = await startSilentServer();
  const down = `http://127.0.0.1:${await freePort()}`;
  try {
    for (const origin of [down, silent.origin]) {
      const contact = await annContact(ctx, ["ann@example.com"]);
      const report = await discoverKeys(
        f.store,
        { contact_id: contact.contact_id, user_id: contact.user_id },
        sources(ctx, { wkd: { baseUrl: () => origin }, timeoutMs: 400 }),
        { destinations: admitted(ctx, origin) },
      );
      assert.equal(report.found, [fpr.hkp], origin);
      assert.is((await f.store.keys.list(contact.user_id, contact.contact_id)).find((key) => key.fingerprint === fpr.hkp)?.source, "hkp");
      assert.equal(
        report.errors.map((e) => `${e.source} ${e.address}`),
        ["wkd ann@example.com"],
      );
      assert.match(report.errors[0]?.message ?? "", /advanced method: .*; direct method: /);
      assert.equal((await f.store.contacts.get(contact.user_id, contact.contact_id))?.key_discovery?.errors, report.errors);
    }
  } finally {
    await silent.stop();
  }
});

test("sources not configured are not asked; an address with no key anywhere is no error", async (ctx) => {
  const { f, fpr } = ctx;
  const contact = await annContact(ctx, ["ann@example.com", "nobody@example.org"]);
  const before = ctx.web.requests.length;
  const report = await discoverKeys(f.store, { contact_id: contact.contact_id, user_id: contact.user_id }, sources(ctx, { wkd: false }), {
    destinations: admitted(ctx),
  });
  assert.is(ctx.web.requests.length, before, "no WKD request");
  assert.equal(report.found, [fpr.hkp]);
  assert.equal(report.errors, []);
  const nothing = await discoverKeys(f.store, { contact_id: contact.contact_id, user_id: contact.user_id }, sources(ctx, { hkp: null, wkd: false }), {
    destinations: admitted(ctx),
  });
  assert.equal(nothing.found, []);
  assert.equal(nothing.skipped, []);
});

test("WKD hosts from a contact's addresses that the policy refuses (loopback, private, an address literal) are not asked; the report says why, and the key server still answers", async (ctx) => {
  const { f, fpr } = ctx;
  const contact = await annContact(ctx, ["ann@example.com", "bob@evil.example", "carl@127.0.0.1"]);
  // evil.example's DNS points its WKD hosts inside the platform's network; other names do not exist.
  const resolve = async (host: string) => {
    const table: Record<string, string[]> = { "openpgpkey.evil.example": ["127.0.0.1"], "evil.example": ["10.0.0.1"] };
    return table[host] ?? Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" }));
  };
  const report = await discoverKeys(f.store, { contact_id: contact.contact_id, user_id: contact.user_id }, sources(ctx, { wkd: true }), {
    destinations: new DestinationPolicy({ resolve }),
  });
  assert.equal(report.found, [fpr.hkp], "the key server's key");
  const errors = Object.fromEntries(report.errors.map((e) => [`${e.source} ${e.address}`, e.message]));
  assert.equal(Object.keys(errors).sort(), ["wkd bob@evil.example", "wkd carl@127.0.0.1"]);
  assert.match(
    errors["wkd bob@evil.example"] ?? "",
    /^advanced method: web server openpgpkey\.evil\.example:443 is not an allowed destination: openpgpkey\.evil\.example resolves to a loopback address .*; direct method: web server evil\.example:443 is not an allowed destination: evil\.example resolves to a private address/,
  );
  // (`openpgpkey.127.0.0.1` is not even a valid URL host: the advanced method fails before any lookup.)
  assert.match(
    errors["wkd carl@127.0.0.1"] ?? "",
    /direct method: web server 127\.0\.0\.1:443 is not an allowed destination: 127\.0\.0\.1 is a loopback address/,
  );
  assert.equal((await f.store.contacts.get(contact.user_id, contact.contact_id))?.key_discovery?.errors, report.errors, "saved on the contact");
});

test("fan-out is bounded: of 30 addresses the first 16 are looked up, a few at a time, the others reported as skipped", async (ctx) => {
  const { f, fpr } = ctx;
  // The same WKD trees, answering each request after a while: lookups that overlap are seen at once.
  const slow = await startWebServer((host) => (host === "openpgpkey.example.org" ? join(ctx.dir, "advanced") : null), { delayMs: 40 });
  try {
    const others = Array.from({ length: 29 }, (_, n) => `x${n}@example.org`);
    const contact = await annContact(ctx, ["ann@example.org", ...others]);
    const report = await discoverKeys(
      f.store,
      { contact_id: contact.contact_id, user_id: contact.user_id },
      sources(ctx, { hkp: null, wkd: { baseUrl: slow.baseUrl }, concurrency: 3 }),
      { destinations: admitted(ctx, slow.origin) },
    );
    assert.equal(report.found, [fpr.wkd]);
    const looked = [...new Set(slow.requests.map((r) => r.query))].sort();
    assert.equal(
      looked,
      ["ann", ...others.slice(0, 15)].map((address) => `?l=${address.replace("@example.org", "")}`).sort(),
      "the first 16 addresses, no other",
    );
    assert.ok(slow.mostAtOnce <= 3, `${slow.mostAtOnce} requests at once`);
    assert.ok(slow.mostAtOnce >= 2, "lookups do overlap");
    const notLooked = report.skipped.filter((s) =>
      /^not looked up: only the first 16 addresses of a contact are \(CALIOPEN_KEY_DISCOVERY_MAX_ADDRESSES\)$/.test(s.reason),
    );
    assert.equal(
      notLooked.map((s) => `${s.source} ${s.address}`),
      others.slice(15).map((address) => `wkd ${address}`),
    );
    assert.equal(report.errors, []);
  } finally {
    await slow.stop();
  }
});

test("answer size: a WKD answer over its limit (512 KiB by default) is an error naming it; the key server has a limit of its own", async (ctx) => {
  const { f, fpr, gpg } = ctx;
  // 600 KiB served as big@example.org's key: fine for the key server's 4 MiB, too much for a WKD.
  const hu = join(ctx.dir, "advanced/.well-known/openpgpkey/example.org/hu");
  await writeFile(join(hu, await gpg.wkdHash("big@example.org")), Buffer.alloc(600 * 1024, 0x99));
  const big = await annContact(ctx, ["big@example.org"]);
  const report = await discoverKeys(f.store, { contact_id: big.contact_id, user_id: big.user_id }, sources(ctx, { hkp: null }), {
    destinations: admitted(ctx),
  });
  assert.equal(
    report.errors.map((e) => `${e.source} ${e.address}`),
    ["wkd big@example.org"],
  );
  assert.match(report.errors[0]?.message ?? "", /advanced method: .*: the answer is larger than 524288 bytes/);

  // Limits per source: a WKD limit under the size of ann's key refuses it there, the key server still gives it.
  const ann = await annContact(ctx, ["ann@example.com"]);
  const tight = await discoverKeys(f.store, { contact_id: ann.contact_id, user_id: ann.user_id }, sources(ctx, { maxAnswerBytes: { wkd: 100 } }), {
    destinations: admitted(ctx),
  });
  assert.equal(tight.found, [fpr.hkp]);
  assert.equal(
    tight.errors.map((e) => `${e.source} ${e.address}`),
    ["wkd ann@example.com"],
  );
  assert.match(tight.errors[0]?.message ?? "", /the answer is larger than 100 bytes/);
  const both = await annContact(ctx, ["ann@example.com"]);
  const refused = await discoverKeys(
    f.store,
    { contact_id: both.contact_id, user_id: both.user_id },
    sources(ctx, { maxAnswerBytes: { hkp: 100, wkd: 100 } }),
    { destinations: admitted(ctx) },
  );
  assert.equal(refused.found, []);
  assert.equal(
    refused.errors.map((e) => `${e.source} ${e.address}`),
    ["hkp ann@example.com", "wkd ann@example.com"],
  );
  assert.match(refused.errors[0]?.message ?? "", /pks\/lookup: the answer is larger than 100 bytes/);
});

test("an unknown contact is an error naming it", async (ctx) => {
  const contactId = randomUUID();
  try {
    await discoverKeys(ctx.f.store, { contact_id: contactId, user_id: randomUUID() }, sources(ctx), { destinations: admitted(ctx) });
    assert.unreachable("should have thrown");
  } catch (err) {
    assert.match((err as Error).message, new RegExp(`no contact ${contactId}`));
  }
});

test.run();
