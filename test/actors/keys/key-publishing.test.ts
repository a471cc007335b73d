// KeyAction publish_key / delete_key against real peers: the user's own key (made by GnuPG) goes to an
// SKS key server, where `gpg --recv-keys` finds it, and into the platform's Web Key Directory, laid out
// exactly as `gpg-wks-client --install-key` lays out the same key; discovery then finds it there.
// Withdrawing removes it from the WKD (the key server keeps it: HKP has no delete). Keys that are not
// the user's own, or addresses the user does not hold, are not published.

import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { discoverKeys } from "../../../actors/keys/key-discovery.ts";
import { type KeyPublishTarget, publishKey, withdrawKey } from "../../../actors/keys/key-publishing.ts";
import { parsePublicKey } from "../../../actors/keys/parse-public-key.ts";
import { wkdAddress } from "../../../actors/keys/wkd.ts";
import { parseAllowedDestinations } from "../../../actors/network/allowed-destinations.ts";
import { DestinationPolicy } from "../../../actors/network/destination-policy.ts";
import { type PublicKey, SCHEMA_VERSION, type User } from "../../../actors/store/model.ts";
import { freePort } from "../../../scripts/local-servers/free-port.ts";
import { Gpg } from "../../helpers/gpg.ts";
import { startTestKeyServer, type TestKeyServer } from "../../helpers/hkp-server.ts";
import { startWebServer, type TestWebServer } from "../../helpers/wkd-server.ts";
import { newContact, type StoreFixture, startStore } from "../store/fixture.ts";

interface Ctx {
  f: StoreFixture;
  gpg: Gpg;
  sks: TestKeyServer;
  web: TestWebServer;
  dir: string;
  /** The WKD web root the code writes. */
  wkd: string;
}
const test = suite<Ctx>("KeyAction publish_key / delete_key");
const DOMAIN = "platform.example";

test.before(async (ctx) => {
  ctx.f = await startStore();
  ctx.gpg = await Gpg.open();
  ctx.sks = await startTestKeyServer();
  ctx.dir = await mkdtemp(join(tmpdir(), "caliopen-wkd-publish-"));
  ctx.wkd = join(ctx.dir, "www");
  await mkdir(ctx.wkd);
  ctx.web = await startWebServer((host) => (host === `openpgpkey.${DOMAIN}` ? ctx.wkd : null));
});

test.after(async (ctx) => {
  await ctx.web?.stop();
  await ctx.sks?.stop();
  await ctx.gpg?.close();
  await ctx.f?.nats.stop();
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

const target = (ctx: Ctx, change: Partial<KeyPublishTarget> = {}): KeyPublishTarget => ({
  hkp: ctx.sks.url,
  wkd: { dir: ctx.wkd, domains: [DOMAIN] },
  ...change,
});

/** Discovery may ask the test's WKD web server (plain HTTP on loopback), and nothing else. */
const wkdServer = (ctx: Ctx) => new DestinationPolicy({ allow: parseAllowedDestinations(`${new URL(ctx.web.origin).host}+cleartext`) });

/** A user whose local address is `<name>@platform.example`. */
async function newUser(ctx: Ctx, name: string): Promise<{ user: User; address: string }> {
  const address = `${name}@${DOMAIN}`;
  const { user } = await createUser(ctx.f.store, { name: `${name}-${randomUUID()}`, email: address });
  return { user, address };
}

/** Stores a key made by gpg on a contact, as the API does. */
async function storeKey(ctx: Ctx, userId: string, contactId: string, fingerprint: string): Promise<PublicKey> {
  const parsed = await parsePublicKey(await ctx.gpg.exportPublic(fingerprint));
  return ctx.f.store.keys.add({
    schema: SCHEMA_VERSION,
    user_id: userId,
    resource_id: contactId,
    key_id: parsed.key_id,
    fingerprint: parsed.fingerprint,
    armored: parsed.armored,
    expire_date: parsed.expire_date,
    label: parsed.emails[0] ?? "",
    size: parsed.size,
    algorithm: parsed.algorithm,
    emails: parsed.emails,
    source: "user",
    date_insert: new Date().toISOString(),
  });
}

const order = (key: PublicKey) => ({ key_id: key.key_id, resource_id: key.resource_id, user_id: key.user_id });

async function filesBelow(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(relative(dir, join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

test("the WKD hash is gpg-wks-client's", async ({ gpg }) => {
  for (const address of ["ann@platform.example", "Joe.Doe@Example.ORG", "x@y.example"]) {
    assert.is(wkdAddress(address)?.hash, await gpg.wkdHash(address), address);
  }
});

test("publish_key puts the user's key on the key server (gpg --recv-keys gets it) and in the WKD as gpg-wks-client would", async (ctx) => {
  const { f, gpg, sks } = ctx;
  const { user, address } = await newUser(ctx, "ann");
  const fpr = await gpg.generate(`Ann <${address}>`, { algorithm: "future-default" });
  await gpg.addUserId(fpr, "Ann elsewhere <ann@elsewhere.example>");
  await gpg.addUserId(fpr, `Not Ann <boss@${DOMAIN}>`);
  const key = await storeKey(ctx, user.user_id, user.contact_id, fpr);
  assert.is(await sks.get(`0x${fpr}`), null, "not on the key server before");

  const report = await publishKey(f.store, order(key), target(ctx));
  assert.ok(report.hkp);
  const file = join(ctx.wkd, ".well-known/openpgpkey", DOMAIN, "hu", await gpg.wkdHash(address));
  assert.equal(report.wkd, [{ address, file, action: "written" }]);
  assert.equal(report.notes, [`boss@${DOMAIN} is not one of the user's own addresses on this platform: not put in the Web Key Directory`]);

  // The key server has it: another keyring fetches it with gpg.
  const other = await Gpg.open();
  try {
    await other.receiveKeys(sks.hkp, fpr);
    assert.ok(await other.has(fpr), "gpg --recv-keys found it on the key server");
  } finally {
    await other.close();
  }

  // gpg-wks-client installs the same key for the same address: the same files, the same packets.
  const reference = join(ctx.dir, `reference-${randomUUID()}`);
  await mkdir(reference);
  await gpg.wksInstall(reference, fpr, address);
  const written = join(ctx.wkd, ".well-known/openpgpkey");
  const hash = await gpg.wkdHash(address);
  // (Other tests write other users' files into the same tree.)
  const ours = (await filesBelow(written)).filter((path) => path === `${DOMAIN}/policy` || path === `${DOMAIN}/hu/${hash}`);
  assert.equal(ours, await filesBelow(reference));
  assert.is(await readFile(join(written, DOMAIN, "policy"), "utf8"), await readFile(join(reference, DOMAIN, "policy"), "utf8"));
  const referenceFile = join(reference, DOMAIN, "hu", await gpg.wkdHash(address));
  assert.is(await gpg.listPackets(file), await gpg.listPackets(referenceFile));
  assert.ok((await gpg.listPackets(file)).includes(`Ann <${address}>`));
  assert.not.ok((await gpg.listPackets(file)).includes("elsewhere"), "only the address's user id is served");

  // And key discovery finds it there, through the WKD's advanced method.
  const reader = await f.store.contacts.create(newContact(randomUUID(), [address]));
  const found = await discoverKeys(
    f.store,
    { contact_id: reader.contact_id, user_id: reader.user_id },
    { hkp: null, wkd: { baseUrl: ctx.web.baseUrl }, dns: null, timeoutMs: 3000 },
    { destinations: wkdServer(ctx) },
  );
  assert.equal(found.found, [fpr]);
  assert.equal(found.errors, []);

  // delete_key (the API has removed the key already): out of the WKD; the key server keeps it.
  await f.store.keys.delete(user.user_id, user.contact_id, key.key_id);
  const withdrawn = await withdrawKey(f.store, order(key), target(ctx));
  assert.equal(withdrawn.wkd, [{ address, file, action: "removed" }]);
  assert.not.ok(await exists(file), "the WKD file is gone");
  assert.ok(await exists(join(written, DOMAIN, "policy")), "the domain's policy file stays");
  assert.is(withdrawn.hkp, false);
  assert.match(withdrawn.notes.join("\n"), /HKP has no standard way to delete a key: .* keeps/);
  assert.ok((await sks.get(`0x${fpr}`)) !== null, "the key server still has it, as the report says");
  const after = await f.store.contacts.create(newContact(randomUUID(), [address]));
  const none = await discoverKeys(
    f.store,
    { contact_id: after.contact_id, user_id: after.user_id },
    { hkp: null, wkd: { baseUrl: ctx.web.baseUrl }, dns: null, timeoutMs: 3000 },
    { destinations: wkdServer(ctx) },
  );
  assert.equal(none.found, [], "discovery no longer finds it in the WKD");
});

test("withdrawing one of two keys of an address leaves the other in the WKD; another key's withdrawal leaves the file alone", async (ctx) => {
  const { f, gpg } = ctx;
  const { user, address } = await newUser(ctx, "bea");
  const first = await storeKey(ctx, user.user_id, user.contact_id, await gpg.generate(`Bea <${address}>`));
  const second = await storeKey(ctx, user.user_id, user.contact_id, await gpg.generate(`Bea new <${address}>`));
  await publishKey(f.store, order(first), target(ctx));
  await publishKey(f.store, order(second), target(ctx));
  const file = join(ctx.wkd, ".well-known/openpgpkey", DOMAIN, "hu", await gpg.wkdHash(address));
  assert.ok((await gpg.listPackets(file)).includes("Bea new"), "the latest published is served");

  // Withdrawing the first (not served) changes nothing.
  await f.store.keys.delete(user.user_id, user.contact_id, first.key_id);
  assert.equal((await withdrawKey(f.store, order(first), target(ctx))).wkd, []);
  assert.ok((await gpg.listPackets(file)).includes("Bea new"));

  // Withdrawing the served one while another usable key remains: that one is served instead.
  const third = await storeKey(ctx, user.user_id, user.contact_id, await gpg.generate(`Bea third <${address}>`));
  await f.store.keys.delete(user.user_id, user.contact_id, second.key_id);
  const report = await withdrawKey(f.store, order(second), target(ctx));
  assert.equal(report.wkd, [{ address, file, action: "replaced" }]);
  const listing = await gpg.listPackets(file);
  assert.ok(listing.includes("Bea third"), listing);
  assert.ok(listing.includes(third.key_id), "the remaining key's packets");
});

test("a key on another contact than the user's own is not published anywhere", async (ctx) => {
  const { f, gpg, sks } = ctx;
  const { user } = await newUser(ctx, "carl");
  const friend = await f.store.contacts.create(newContact(user.user_id, [`dora@${DOMAIN}`]));
  const fpr = await gpg.generate(`Dora <dora@${DOMAIN}>`);
  const key = await storeKey(ctx, user.user_id, friend.contact_id, fpr);
  const report = await publishKey(f.store, order(key), target(ctx));
  assert.is(report.hkp, false);
  assert.equal(report.wkd, []);
  assert.match(report.notes[0] ?? "", /not on the user's own contact card/);
  assert.is(await sks.get(`0x${fpr}`), null, "not uploaded");
  assert.not.ok(await exists(join(ctx.wkd, ".well-known/openpgpkey", DOMAIN, "hu", await gpg.wkdHash(`dora@${DOMAIN}`))));
});

test("an expired own key goes to the key server but not into the WKD", async (ctx) => {
  const { f, gpg, sks } = ctx;
  const { user, address } = await newUser(ctx, "eve");
  const fpr = await gpg.generate(`Eve <${address}>`, { expire: "1d", fakedTime: "20200101T000000" });
  const key = await storeKey(ctx, user.user_id, user.contact_id, fpr);
  const report = await publishKey(f.store, order(key), target(ctx));
  assert.ok(report.hkp);
  assert.equal(report.wkd, []);
  assert.equal(report.notes, [`key ${key.key_id} is expired: not put in the Web Key Directory`]);
  assert.ok((await sks.get(`0x${fpr}`)) !== null);
});

test("failures throw with what failed: key server down, WKD not writable, unknown key or user", async (ctx) => {
  const { f, gpg } = ctx;
  const { user, address } = await newUser(ctx, "fay");
  const key = await storeKey(ctx, user.user_id, user.contact_id, await gpg.generate(`Fay <${address}>`));
  const down = `http://127.0.0.1:${await freePort()}`;
  await assertThrows(
    () => publishKey(f.store, order(key), target(ctx, { hkp: down, wkd: null })),
    new RegExp(`uploading ${key.key_id} to ${down.replace(/\./g, "\\.")} failed`),
  );

  const blocked = join(ctx.dir, `blocked-${randomUUID()}`);
  await mkdir(join(blocked, ".well-known"), { recursive: true });
  await writeFile(join(blocked, ".well-known/openpgpkey"), "a file where the WKD should be");
  await assertThrows(
    () => publishKey(f.store, order(key), target(ctx, { hkp: null, wkd: { dir: blocked, domains: [DOMAIN] } })),
    /cannot write the WKD file .*platform\.example\/hu\//,
  );

  await assertThrows(() => publishKey(f.store, { ...order(key), key_id: "0123456789ABCDEF" }, target(ctx)), /has no key 0123456789ABCDEF on contact/);
  await assertThrows(() => publishKey(f.store, { ...order(key), user_id: randomUUID() }, target(ctx)), /no user /);
  await assertThrows(() => withdrawKey(f.store, { ...order(key), user_id: randomUUID() }, target(ctx)), /no user /);
});

test("nothing configured: nothing done, no failure", async (ctx) => {
  const { f, gpg, sks } = ctx;
  const { user, address } = await newUser(ctx, "gus");
  const fpr = await gpg.generate(`Gus <${address}>`);
  const key = await storeKey(ctx, user.user_id, user.contact_id, fpr);
  assert.equal(await publishKey(f.store, order(key), { hkp: null, wkd: null }), { hkp: false, wkd: [], notes: [] });
  assert.equal(
    await publishKey(f.store, order(key), target(ctx, { hkp: null, wkd: { dir: ctx.wkd, domains: ["other.example"] } })),
    { hkp: false, wkd: [], notes: [] },
    "a domain the platform does not host",
  );
  assert.is(await sks.get(`0x${fpr}`), null);
});

async function assertThrows(run: () => Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await run();
  } catch (err) {
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected an error matching ${message}`);
}

test.run();
