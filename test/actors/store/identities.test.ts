import { randomBytes, randomUUID } from "node:crypto";
import { type KV, Kvm } from "@nats-io/kv";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Conflict } from "../../../actors/store/errors.ts";
import type { NewIdentity, StoredIdentity } from "../../../actors/store/identities.ts";
import { openStore } from "../../../actors/store/store.ts";
import { SecretBox, SecretNotOpened } from "../../../runtime/secret-box.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { legacySeal } from "../../helpers/legacy-seal.ts";
import { startTestNats } from "../../helpers/nats-server.ts";
import { type StoreFixture, startStore } from "./fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});

test.after(async () => {
  await f.nats.stop();
});

const PASSWORD = "s3cr3t-Passw0rd-that-must-not-leak";

function remoteImap(userId: string, identifier: string, fields: Partial<NewIdentity> = {}): NewIdentity {
  return {
    user_id: userId,
    type: "remote",
    protocol: "imap",
    identifier,
    infos: { inserver: "imap.example.com:993" },
    credentials: { username: identifier, password: PASSWORD },
    ...fields,
  };
}

async function rejectsWithConflict(what: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
    assert.unreachable(`${what} should have been a Conflict`);
  } catch (err) {
    assert.instance(err, Conflict, `${what}: ${(err as Error).message}`);
  }
}

test("create lowercases and trims the identifier, and fills the default poll interval of remote identities", async () => {
  const userId = randomUUID();
  const imap = await f.store.identities.create(remoteImap(userId, "  Alice.Smith@Example.COM "));
  assert.is(imap.identifier, "alice.smith@example.com");
  assert.is(imap.infos.poll_interval, "15");
  assert.is(imap.infos.inserver, "imap.example.com:993");
  assert.is(imap.status, "active");
  assert.is(imap.has_credentials, true);

  const email = await f.store.identities.create({ user_id: userId, type: "remote", protocol: "email", identifier: "Other@Example.com" });
  assert.is(email.identifier, "other@example.com");
  assert.is(email.infos.poll_interval, "15");
  assert.is(email.has_credentials, false);

  const twitter = await f.store.identities.create({ user_id: userId, type: "remote", protocol: "twitter", identifier: "@SomeOne" });
  assert.is(twitter.identifier, "@someone");
  assert.is(twitter.infos.poll_interval, "2");

  const local = await f.store.identities.create({ user_id: userId, type: "local", protocol: "email", identifier: "Me@Caliopen.LOCAL" });
  assert.is(local.identifier, "me@caliopen.local");
  assert.is(local.infos.poll_interval, undefined);

  const chosen = await f.store.identities.create(remoteImap(userId, "chosen@example.com", { infos: { poll_interval: "5" } }));
  assert.is(chosen.infos.poll_interval, "5");
});

test("credentials are never in get or list, nor readable in the KV bucket, but credentials() returns them", async () => {
  const userId = randomUUID();
  const created = await f.store.identities.create(remoteImap(userId, "secret@example.com"));
  assert.not.ok(JSON.stringify(created).includes(PASSWORD));
  assert.not.ok("sealed_credentials" in created);

  const got = await f.store.identities.get(userId, created.identity_id);
  assert.ok(got);
  assert.not.ok(JSON.stringify(got).includes(PASSWORD));
  assert.not.ok("sealed_credentials" in got);
  assert.equal(got, created);

  const listed = await f.store.identities.list(userId);
  assert.is(listed.length, 1);
  assert.not.ok(JSON.stringify(listed).includes(PASSWORD));
  assert.not.ok(JSON.stringify(await f.store.identities.listAll()).includes(PASSWORD));

  const kv = await new Kvm(f.nc).open("caliopen_identities");
  const raw = await kv.get(`${userId}.${created.identity_id}`);
  assert.ok(raw, "the identity is in caliopen_identities under user.identity");
  const text = raw.string();
  assert.ok(text.includes("sealed_credentials"), "the stored document carries the sealed credentials");
  assert.not.ok(text.includes(PASSWORD), "the password is not in the stored document");
  // Not merely encoded either: no string in it decodes (as base64) to the password.
  const strings: string[] = [];
  JSON.parse(text, (_key, value) => {
    if (typeof value === "string") strings.push(value);
    return value;
  });
  for (const value of strings)
    assert.not.ok(Buffer.from(value, "base64").toString("utf8").includes(PASSWORD), "a stored string is the password, base64-encoded");
  for await (const key of await kv.keys()) {
    assert.not.ok((await kv.get(key))?.string().includes(PASSWORD), `${key} holds the password in the clear`);
  }

  assert.equal(await f.store.identities.credentials(userId, created.identity_id), { username: "secret@example.com", password: PASSWORD });
});

test("an identity without credentials has none to give", async () => {
  const userId = randomUUID();
  const created = await f.store.identities.create({ user_id: userId, type: "local", protocol: "email", identifier: "plain@example.com" });
  assert.is(await f.store.identities.credentials(userId, created.identity_id), null);
  assert.is(await f.store.identities.credentials(userId, randomUUID()), null);
});

test("the same (protocol, identifier) twice for one user is a Conflict, but allowed for two users and across protocols", async () => {
  const first = randomUUID();
  const second = randomUUID();
  const a = await f.store.identities.create(remoteImap(first, "shared@example.com"));
  await rejectsWithConflict("same identifier, same user", () => f.store.identities.create(remoteImap(first, "shared@example.com")));
  await rejectsWithConflict("same identifier in other case", () => f.store.identities.create(remoteImap(first, "SHARED@example.com")));
  const b = await f.store.identities.create(remoteImap(second, "Shared@Example.com"));
  const other = await f.store.identities.create({ user_id: first, type: "local", protocol: "email", identifier: "shared@example.com" });
  assert.is(other.protocol, "email");
  assert.equal((await f.store.identities.list(first)).map((i) => i.identity_id).sort(), [a.identity_id, other.identity_id].sort());
  assert.equal(
    (await f.store.identities.list(second)).map((i) => i.identity_id),
    [b.identity_id],
  );
});

test("byIdentifier finds every user's identity with that (protocol, identifier)", async () => {
  const first = randomUUID();
  const second = randomUUID();
  const a = await f.store.identities.create(remoteImap(first, "both@example.com"));
  const b = await f.store.identities.create(remoteImap(second, "both@example.com"));
  await f.store.identities.create({ user_id: first, type: "local", protocol: "email", identifier: "both@example.com" });

  const found = await f.store.identities.byIdentifier("imap", "  BOTH@example.com");
  assert.equal(found.map((i) => i.identity_id).sort(), [a.identity_id, b.identity_id].sort());
  assert.equal(found.map((i) => i.user_id).sort(), [first, second].sort());
  assert.not.ok(JSON.stringify(found).includes(PASSWORD));
  assert.equal(await f.store.identities.byIdentifier("imap", "nobody@example.com"), []);
});

test("byIdentifier leaves out an identity whose status is deleted", async () => {
  const userId = randomUUID();
  const created = await f.store.identities.create(remoteImap(userId, "status-deleted@example.com"));
  await f.store.identities.update(userId, created.identity_id, () => ({ fields: { status: "deleted" } }));
  assert.equal(await f.store.identities.byIdentifier("imap", "status-deleted@example.com"), []);
});

test("updateInfos merges into infos and leaves the rest as it was", async () => {
  const userId = randomUUID();
  const created = await f.store.identities.create(remoteImap(userId, "merge@example.com"));
  const updated = await f.store.identities.updateInfos(userId, created.identity_id, { last_poll: "2024-01-01T00:00:00.000Z", lastseenuid: 42 });
  assert.ok(updated);
  assert.equal(updated.infos, { poll_interval: "15", inserver: "imap.example.com:993", last_poll: "2024-01-01T00:00:00.000Z", lastseenuid: 42 });
  const again = await f.store.identities.updateInfos(userId, created.identity_id, { lastseenuid: 43 });
  assert.is(again?.infos.lastseenuid, 43);
  assert.is(again?.infos.last_poll, "2024-01-01T00:00:00.000Z");
  assert.is(again?.display_name, created.display_name);
  assert.is(again?.status, "active");
  assert.equal(await f.store.identities.get(userId, created.identity_id), again);
  assert.equal(await f.store.identities.credentials(userId, created.identity_id), { username: "merge@example.com", password: PASSWORD });
  assert.is(await f.store.identities.updateInfos(userId, randomUUID(), { last_poll: null }), null);
});

test("concurrent updateInfos of different fields all land", async () => {
  const userId = randomUUID();
  const created = await f.store.identities.create(remoteImap(userId, "race@example.com"));
  const others = [f.store, await f.openAnother(), await f.openAnother()];
  const fields = Array.from({ length: 12 }, (_, i) => `field_${i}`);
  await Promise.all(fields.map((field, i) => others[i % others.length]!.identities.updateInfos(userId, created.identity_id, { [field]: i })));
  const infos = (await f.store.identities.get(userId, created.identity_id))?.infos ?? {};
  for (const [i, field] of fields.entries()) assert.is(infos[field], i, `${field} landed`);
  assert.is(infos.poll_interval, "15");
});

test("update can replace the credentials", async () => {
  const userId = randomUUID();
  const created = await f.store.identities.create({ user_id: userId, type: "remote", protocol: "imap", identifier: "later@example.com" });
  assert.is(created.has_credentials, false);
  const updated = await f.store.identities.update(userId, created.identity_id, () => ({
    fields: { display_name: "Later" },
    credentials: { username: "later", password: "new-one" },
  }));
  assert.is(updated?.display_name, "Later");
  assert.is(updated?.has_credentials, true);
  assert.equal(await f.store.identities.credentials(userId, created.identity_id), { username: "later", password: "new-one" });
});

test("markDeleted hides the identity, drops its credentials and frees its identifier", async () => {
  const userId = randomUUID();
  const kept = await f.store.identities.create({ user_id: userId, type: "local", protocol: "email", identifier: "kept@example.com" });
  const gone = await f.store.identities.create(remoteImap(userId, "gone@example.com"));

  const deleted = await f.store.identities.markDeleted(userId, gone.identity_id);
  assert.is(deleted?.status, "deleted");
  assert.is(deleted?.has_credentials, false);

  assert.equal(
    (await f.store.identities.list(userId)).map((i) => i.identity_id),
    [kept.identity_id],
  );
  assert.equal((await f.store.identities.list(userId, { includeDeleted: true })).map((i) => i.identity_id).sort(), [kept.identity_id, gone.identity_id].sort());
  assert.not.ok((await f.store.identities.listAll()).some((i) => i.identity_id === gone.identity_id));
  assert.ok((await f.store.identities.listAll({ includeDeleted: true })).some((i) => i.identity_id === gone.identity_id));
  assert.is(await f.store.identities.credentials(userId, gone.identity_id), null);
  const kv = await new Kvm(f.nc).open("caliopen_identities");
  assert.not.ok((await kv.get(`${userId}.${gone.identity_id}`))?.string().includes('"kid"'), "no sealed credentials left");
  assert.equal(await f.store.identities.byIdentifier("imap", "gone@example.com"), []);

  const again = await f.store.identities.create(remoteImap(userId, "gone@example.com"));
  assert.is.not(again.identity_id, gone.identity_id);
  assert.equal(
    (await f.store.identities.byIdentifier("imap", "gone@example.com")).map((i) => i.identity_id),
    [again.identity_id],
  );
  assert.is(await f.store.identities.markDeleted(userId, randomUUID()), null);
});

test("deleting an already deleted identity again leaves the identifier with its new owner", async () => {
  const userId = randomUUID();
  const old = await f.store.identities.create(remoteImap(userId, "reused@example.com"));
  await f.store.identities.markDeleted(userId, old.identity_id);
  const current = await f.store.identities.create(remoteImap(userId, "reused@example.com"));
  // A retried DELETE of the old identity.
  await f.store.identities.markDeleted(userId, old.identity_id);
  assert.equal(
    (await f.store.identities.byIdentifier("imap", "reused@example.com")).map((i) => i.identity_id),
    [current.identity_id],
  );
  await rejectsWithConflict("a third identity on the identifier", () => f.store.identities.create(remoteImap(userId, "reused@example.com")));
});

test("listAll gives every user's identities, filtered by type", async () => {
  const first = randomUUID();
  const second = randomUUID();
  const remoteA = await f.store.identities.create(remoteImap(first, "all-a@example.com"));
  const remoteB = await f.store.identities.create({ user_id: second, type: "remote", protocol: "twitter", identifier: "all_b" });
  const localA = await f.store.identities.create({ user_id: first, type: "local", protocol: "email", identifier: "all-local@example.com" });

  const remotes = await f.store.identities.listAll({ type: "remote" });
  assert.ok(remotes.every((i) => i.type === "remote"));
  const remoteIds = remotes.map((i) => i.identity_id);
  assert.ok(remoteIds.includes(remoteA.identity_id) && remoteIds.includes(remoteB.identity_id));
  assert.not.ok(remoteIds.includes(localA.identity_id));

  const locals = await f.store.identities.listAll({ type: "local" });
  assert.ok(locals.every((i) => i.type === "local"));
  assert.ok(locals.some((i) => i.identity_id === localA.identity_id));

  const all = (await f.store.identities.listAll()).map((i) => i.identity_id);
  for (const id of [remoteA.identity_id, remoteB.identity_id, localA.identity_id]) assert.ok(all.includes(id));
  assert.equal(
    (await f.store.identities.list(first, { type: "local" })).map((i) => i.identity_id),
    [localA.identity_id],
  );
});

async function rawIdentity(kv: KV, userId: string, identityId: string): Promise<StoredIdentity> {
  const entry = await kv.get(`${userId}.${identityId}`);
  assert.ok(entry, `${userId}.${identityId} is in the bucket`);
  return entry.json<StoredIdentity>();
}

async function rejectsNotOpened(what: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
    assert.unreachable(`${what} should not have opened`);
  } catch (err) {
    assert.instance(err, SecretNotOpened, `${what}: ${(err as Error).message}`);
    assert.not.ok((err as Error).message.includes(PASSWORD));
  }
}

test("sealed credentials are bound to their identity: a blob copied into another identity's document does not open", async () => {
  const kv = await new Kvm(f.nc).open("caliopen_identities");
  const alice = randomUUID();
  const mallory = randomUUID();
  const victim = await f.store.identities.create(remoteImap(alice, "victim@example.com"));
  const own = await f.store.identities.create({ ...remoteImap(mallory, "mine@example.com"), credentials: { username: "mine", password: "mine" } });
  const sameUser = await f.store.identities.create({ ...remoteImap(alice, "second@example.com"), credentials: { username: "second", password: "second" } });
  const stolen = (await rawIdentity(kv, alice, victim.identity_id)).sealed_credentials;
  assert.ok(stolen);

  for (const target of [own, sameUser]) {
    const entry = await kv.get(`${target.user_id}.${target.identity_id}`);
    const document = entry?.json<StoredIdentity>();
    assert.ok(entry && document);
    await kv.update(`${target.user_id}.${target.identity_id}`, JSON.stringify({ ...document, sealed_credentials: stolen }), entry.revision);
    await rejectsNotOpened(`the blob in ${target.identifier}`, () => f.store.identities.credentials(target.user_id, target.identity_id));
  }
  // The victim's own document still opens.
  assert.equal(await f.store.identities.credentials(alice, victim.identity_id), { username: "victim@example.com", password: PASSWORD });
});

test("credentials sealed before identity binding (no associated data) still open", async () => {
  const key = randomBytes(32);
  const store = await openStore({ nc: f.nc, subjects: new Subjects(""), secrets: new SecretBox(key) });
  const kv = await new Kvm(f.nc).open("caliopen_identities");
  const userId = randomUUID();
  const created = await store.identities.create(remoteImap(userId, "legacy@example.com"));
  const stored = await rawIdentity(kv, userId, created.identity_id);
  const legacy = legacySeal(key, JSON.stringify({ username: "legacy", password: PASSWORD }));
  await kv.put(`${userId}.${created.identity_id}`, JSON.stringify({ ...stored, sealed_credentials: legacy }));
  assert.equal(await store.identities.credentials(userId, created.identity_id), { username: "legacy", password: PASSWORD });
});

test("with several keys the first seals and every one opens", async () => {
  const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
  const kv = await new Kvm(f.nc).open("caliopen_identities");
  const before = await openStore({ nc: f.nc, subjects: new Subjects(""), secrets: new SecretBox(oldKey) });
  const during = await openStore({ nc: f.nc, subjects: new Subjects(""), secrets: new SecretBox([newKey, oldKey]) });
  const userId = randomUUID();
  const old = await before.identities.create(remoteImap(userId, "old-key@example.com"));
  const fresh = await during.identities.create(remoteImap(userId, "new-key@example.com"));
  assert.is((await rawIdentity(kv, userId, old.identity_id)).sealed_credentials?.kid, new SecretBox(oldKey).kid);
  assert.is((await rawIdentity(kv, userId, fresh.identity_id)).sealed_credentials?.kid, new SecretBox(newKey).kid);
  for (const identity of [old, fresh]) {
    assert.equal(await during.identities.credentials(userId, identity.identity_id), { username: identity.identifier, password: PASSWORD });
  }
  await rejectsNotOpened("the new key's blob with the old key alone", () => before.identities.credentials(userId, fresh.identity_id));
});

test("resealCredentials seals everything under the first key, bound, by compare-and-swap; again it is a no-op", async () => {
  // A store of its own, so that counts are exact.
  const nats = await startTestNats();
  try {
    const nc = await nats.connect();
    const [oldKey, newKey, lostKey] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const [oldBox, newBox, lostBox] = [new SecretBox(oldKey), new SecretBox(newKey), new SecretBox(lostKey)];
    const store = (secrets: SecretBox | null) => openStore({ nc, subjects: new Subjects(""), secrets });
    const before = await store(oldBox);
    const kv = await new Kvm(nc).open("caliopen_identities");
    const userId = randomUUID();
    const sealedOld = await before.identities.create(remoteImap(userId, "a@example.com"));
    const legacy = await before.identities.create(remoteImap(userId, "b@example.com"));
    await kv.put(
      `${userId}.${legacy.identity_id}`,
      JSON.stringify({
        ...(await rawIdentity(kv, userId, legacy.identity_id)),
        sealed_credentials: legacySeal(oldKey, JSON.stringify({ username: "b", password: PASSWORD })),
      }),
    );
    const lost = await (await store(lostBox)).identities.create(remoteImap(userId, "c@example.com"));
    const already = await (await store(newBox)).identities.create(remoteImap(userId, "d@example.com"));
    await before.identities.create({ user_id: userId, type: "local", protocol: "email", identifier: "none@example.com" });

    const expected = [
      { kid: oldBox.kid, format: 1, count: 1 },
      { kid: oldBox.kid, format: 2, count: 1 },
      { kid: lostBox.kid, format: 2, count: 1 },
      { kid: newBox.kid, format: 2, count: 1 },
    ];
    assert.equal(
      await (await store(null)).identities.sealedCounts(),
      expected.sort((a, b) => a.kid.localeCompare(b.kid) || a.format - b.format),
      "key ids are counted without any key",
    );

    const rotating = await store(new SecretBox([newKey, oldKey]));
    assert.equal(await rotating.identities.resealCredentials(), { resealed: 2, current: 1, unopenable: { [lostBox.kid]: 1 } });
    for (const identity of [sealedOld, legacy, already]) {
      const sealed = (await rawIdentity(kv, userId, identity.identity_id)).sealed_credentials;
      assert.is(sealed?.kid, newBox.kid);
      assert.is(sealed?.v, 2);
    }
    assert.is((await rawIdentity(kv, userId, lost.identity_id)).sealed_credentials?.kid, lostBox.kid, "left as it was");
    const after = await store(newBox);
    assert.equal(await after.identities.credentials(userId, sealedOld.identity_id), { username: "a@example.com", password: PASSWORD });
    assert.equal(await after.identities.credentials(userId, legacy.identity_id), { username: "b", password: PASSWORD });
    assert.equal(await rotating.identities.resealCredentials(), { resealed: 0, current: 3, unopenable: { [lostBox.kid]: 1 } });
    assert.equal(await rotating.identities.sealedCounts(), [
      { kid: newBox.kid, format: 2, count: 3 },
      { kid: lostBox.kid, format: 2, count: 1 },
    ]);
  } finally {
    await nats.stop();
  }
});

test.run();
