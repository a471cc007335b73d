// Key discovery through DNS OPENPGPKEY records (RFC 7929), against a real DNS server (dnsmasq) serving
// keys made by GnuPG: over UDP, and over TCP when the answer does not fit a UDP packet. A name with no
// record is no error; a resolver that does not answer is an error listed on the contact.

import { randomUUID } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { openPgpKeyName } from "../../../actors/keys/dns-openpgpkey.ts";
import { discoverKeys, type KeySources } from "../../../actors/keys/key-discovery.ts";
import { startTestDns, type TestDns } from "../../helpers/dnsmasq.ts";
import { Gpg } from "../../helpers/gpg.ts";
import { newContact, type StoreFixture, startStore } from "../store/fixture.ts";

interface Ctx {
  f: StoreFixture;
  gpg: Gpg;
  dns: TestDns;
  /** Answers only 512-byte UDP packets: big answers come back truncated. */
  small: TestDns;
  ann: string;
  big: string;
  expired: string;
}
const test = suite<Ctx>("KeyAction discover_key: DNS OPENPGPKEY");
const OPENPGPKEY = 61;

test.before(async (ctx) => {
  ctx.f = await startStore();
  ctx.gpg = await Gpg.open();
  ctx.ann = await ctx.gpg.generate("Ann <ann@example.com>");
  ctx.big = await ctx.gpg.generate("Big <big@example.com>", { algorithm: "rsa2048" });
  ctx.expired = await ctx.gpg.generate("Old <old@example.com>", { expire: "1d", fakedTime: "20200101T000000" });
  const records = [
    { name: openPgpKeyName("ann@example.com"), type: OPENPGPKEY, data: await ctx.gpg.exportBinary(ctx.ann) },
    { name: openPgpKeyName("big@example.com"), type: OPENPGPKEY, data: await ctx.gpg.exportBinary(ctx.big) },
    { name: openPgpKeyName("old@example.com"), type: OPENPGPKEY, data: await ctx.gpg.exportBinary(ctx.expired) },
  ];
  ctx.dns = await startTestDns({ zones: ["example.com"], records });
  ctx.small = await startTestDns({ zones: ["example.com"], records, ednsPacketMax: 512 });
});

test.after(async (ctx) => {
  await ctx.dns?.stop();
  await ctx.small?.stop();
  await ctx.gpg?.close();
  await ctx.f?.nats.stop();
});

const sources = (resolver: string, timeoutMs = 2000): KeySources => ({ hkp: null, wkd: false, dns: { resolver }, timeoutMs });

test("the owner name is RFC 7929's (its example: hugh@example.com)", () => {
  assert.is(openPgpKeyName("hugh@example.com"), "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._openpgpkey.example.com");
  assert.is(openPgpKeyName("Hugh@Example.COM"), openPgpKeyName("hugh@example.com"));
});

test("keys in OPENPGPKEY records are found and stored with source dns; expired ones skipped; no record is no error", async ({ f, dns, ann, big, expired }) => {
  const contact = await f.store.contacts.create(newContact(randomUUID(), ["ann@example.com", "big@example.com", "old@example.com", "nobody@example.com"]));
  const report = await discoverKeys(f.store, { contact_id: contact.contact_id, user_id: contact.user_id }, sources(dns.resolver));
  assert.equal(report.errors, [], JSON.stringify(report.errors));
  assert.equal(report.found, [ann, big]);
  assert.equal(report.skipped, [{ fingerprint: expired, source: "dns", address: "old@example.com", reason: "expired on 2020-01-02T00:00:00.000Z" }]);
  const stored = await f.store.keys.list(contact.user_id, contact.contact_id);
  assert.equal(
    stored.map((key) => [key.fingerprint, key.source, key.label, key.size]).sort(),
    [
      [ann, "dns", "ann@example.com", 256],
      [big, "dns", "big@example.com", 2048],
    ].sort(),
  );
});

test("an answer too big for UDP is fetched again over TCP", async ({ f, small, big }) => {
  const contact = await f.store.contacts.create(newContact(randomUUID(), ["big@example.com"]));
  const report = await discoverKeys(f.store, { contact_id: contact.contact_id, user_id: contact.user_id }, sources(small.resolver));
  assert.equal(report.errors, [], JSON.stringify(report.errors));
  assert.equal(report.found, [big]);
});

test("a resolver that does not answer is an error on the contact", async ({ f }) => {
  const silent: Socket = createSocket("udp4");
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", () => resolve()));
  try {
    const contact = await f.store.contacts.create(newContact(randomUUID(), ["ann@example.com"]));
    const report = await discoverKeys(
      f.store,
      { contact_id: contact.contact_id, user_id: contact.user_id },
      sources(`127.0.0.1:${silent.address().port}`, 300),
    );
    assert.equal(report.found, []);
    assert.is(report.errors.length, 1);
    assert.is(report.errors[0]?.source, "dns");
    assert.match(report.errors[0]?.message ?? "", /no answer within 300 ms/);
    assert.equal((await f.store.contacts.get(contact.user_id, contact.contact_id))?.key_discovery?.errors, report.errors);
  } finally {
    silent.close();
  }
});

test.run();
