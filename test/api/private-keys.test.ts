// The user's private keys through the HTTP API, with keys made by GnuPG: StorePrivateKey checks the key
// (one secret key, valid, able to sign and encrypt, its secret parts working), unlocks it with its
// passphrase and stores it sealed; ListPrivateKeys and every answer describe its public part only;
// DeletePrivateKey forgets it. Everything else is a clear 4xx naming the field, and neither the key nor
// the passphrase appears in any answer, log line or stored document. Then a draft's `privacy`, as the API
// shows it, and `require_encryption`.
import { randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { Kvm } from "@nats-io/kv";
import { encryptKey, enums, generateKey, readPrivateKey } from "openpgp";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { RunningApi } from "../../api/server.ts";
import { createLogger } from "../../runtime/logger.ts";
import { callApi, type HttpResult } from "../helpers/api-client.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";
import { Gpg } from "../helpers/gpg.ts";
import { exportSecretKey, exportSecretSubkeys, makeMailKey } from "../helpers/gpg-mail.ts";

const PASSPHRASE = "correct horse battery staple 7f3a";

interface Keys {
  plain: string;
  locked: string;
  expired: string;
  revoked: string;
  certOnly: string;
  signOnly: string;
  bob: string;
}
const test = suite<{ fx: ApiFixture; gpg: Gpg; fpr: Keys; logged: RunningApi; secrets: string[] }>("API: private keys");
let logs = "";

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  // Every request goes through an API that logs everything it would, at trace.
  ctx.logged = await ctx.fx.another({}, { logger: createLogger({ level: "trace", destination }) });
  ctx.gpg = await Gpg.open();
  const gpg = ctx.gpg;
  ctx.fpr = {
    plain: await makeMailKey(gpg, "Alice <alice@platform.test>"),
    locked: await makeMailKey(gpg, "Alice Locked <alice@platform.test>", { passphrase: PASSPHRASE }),
    expired: await makeMailKey(gpg, "Old <old@platform.test>", { fakedTime: "20200101T000000", expire: "1d" }),
    revoked: await makeMailKey(gpg, "Lost <lost@platform.test>"),
    certOnly: await makeMailKey(gpg, "Cert <cert@platform.test>", { usage: "cert" }),
    signOnly: await makeMailKey(gpg, "Sign <sign@platform.test>", { usage: "sign" }),
    bob: await makeMailKey(gpg, "Bob <bob@dest.test>"),
  };
  await gpg.revoke(ctx.fpr.revoked);
  ctx.secrets = [];
});
test.after(async (ctx) => {
  await ctx.gpg?.close();
  await ctx.fx.stop();
});

const PATH = "/api/v2/keys/private";

/** Calls the logging API; remembers the secrets sent, to look for them everywhere later. */
async function call(ctx: { logged: RunningApi; secrets: string[] }, method: string, path: string, token: string, body?: unknown): Promise<HttpResult> {
  if (body !== null && typeof body === "object") {
    for (const value of Object.values(body)) if (typeof value === "string") ctx.secrets.push(value);
  }
  return callApi(ctx.logged.url, token, method, path, body);
}

/** Lines of the armor's base64 body: any of them showing up elsewhere would leak key material. */
const armorLines = (armored: string) => armored.split("\n").filter((line) => /^[A-Za-z0-9+/]{40,}$/.test(line));

test("StorePrivateKey: 201 with the public description only; listed; sealed at rest; the secret opens for the bridge only", async (ctx) => {
  const { fx, gpg, fpr } = ctx;
  const alice = await fx.user(`alice-${randomUUID()}`);
  const secret = await exportSecretKey(gpg, fpr.plain);
  const stored = await call(ctx, "POST", PATH, alice.token, { private_key: secret });
  assert.is(stored.status, 201, JSON.stringify(stored.body));
  assert.is(stored.body.fingerprint, fpr.plain);
  assert.is(stored.body.key_id, fpr.plain.slice(-16));
  assert.equal(stored.body.user_ids, ["Alice <alice@platform.test>"]);
  assert.equal(stored.body.emails, ["alice@platform.test"]);
  assert.is(stored.body.was_protected, false);
  assert.match(stored.body.algorithm, /eddsa|ed25519/i);
  assert.match(stored.body.public_key, /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
  assert.is(stored.body.sealed_key, undefined);
  const text = JSON.stringify(stored.body);
  assert.not.match(text, /PRIVATE KEY/);
  for (const line of armorLines(secret)) assert.not.ok(text.includes(line), "no line of the secret armor in the answer");

  const listed = await call(ctx, "GET", PATH, alice.token);
  assert.is(listed.status, 200);
  assert.is(listed.body.total, 1);
  assert.equal(listed.body.keys[0], stored.body);
  assert.not.match(JSON.stringify(listed.body), /PRIVATE KEY/);

  // At rest: sealed, nothing readable.
  const kv = await new Kvm(fx.nc).open("caliopen_private_keys");
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  const raw = await Promise.all(keys.map(async (key) => new TextDecoder().decode((await kv.get(key))?.value)));
  const document = raw.find((value) => value.includes(fpr.plain)) ?? "";
  assert.match(document, /"sealed_key":\{"v":2,"kid":/);
  assert.not.match(document, /PRIVATE KEY/);
  for (const line of armorLines(secret)) assert.not.ok(document.includes(line), "the stored document holds no line of the secret");

  const opened = await fx.store.privateKeys.unlockedKey(alice.user_id, fpr.plain);
  assert.ok(opened);
  const key = await readPrivateKey({ armoredKey: opened });
  assert.is(key.getFingerprint().toUpperCase(), fpr.plain);
  assert.ok(key.isDecrypted());

  assert.is((await call(ctx, "POST", PATH, alice.token, { private_key: secret })).status, 409, "the same key twice");
  const bob = await fx.user(`bob-${randomUUID()}`);
  assert.equal((await call(ctx, "GET", PATH, bob.token)).body, { keys: [], total: 0 }, "another user sees none of it");
});

test("a key protected by a passphrase: refused without it or with a wrong one; unlocked with it, the passphrase not kept", async (ctx) => {
  const { fx, gpg, fpr } = ctx;
  const alice = await fx.user(`alice-${randomUUID()}`);
  const locked = await exportSecretKey(gpg, fpr.locked, PASSPHRASE);
  const missing = await call(ctx, "POST", PATH, alice.token, { private_key: locked });
  assert.equal([missing.status, missing.body.field], [400, "passphrase"]);
  assert.match(missing.body.message, /protected by a passphrase/);
  const wrong = await call(ctx, "POST", PATH, alice.token, { private_key: locked, passphrase: "not it" });
  assert.equal([wrong.status, wrong.body.field, wrong.body.message], [400, "passphrase", "the passphrase does not unlock this key"]);
  const stored = await call(ctx, "POST", PATH, alice.token, { private_key: locked, passphrase: PASSPHRASE });
  assert.is(stored.status, 201, JSON.stringify(stored.body));
  assert.is(stored.body.was_protected, true);
  assert.not.ok(JSON.stringify(stored.body).includes(PASSPHRASE));
  const opened = await fx.store.privateKeys.unlockedKey(alice.user_id, fpr.locked);
  assert.ok(opened && (await readPrivateKey({ armoredKey: opened })).isDecrypted(), "stored unlocked, sealed");
});

test("refused with a 400 on private_key: a public key, garbage, two keys, expired, revoked, no signing, no encryption, a stub", async (ctx) => {
  const { fx, gpg, fpr } = ctx;
  const alice = await fx.user(`alice-${randomUUID()}`);
  const refused = async (privateKey: string, message: RegExp) => {
    const answer = await call(ctx, "POST", PATH, alice.token, { private_key: privateKey });
    assert.is(answer.status, 400, JSON.stringify(answer.body));
    assert.is(answer.body.field, "private_key");
    assert.match(answer.body.message, message);
  };
  await refused(await gpg.exportPublic(fpr.plain), /this is a public key/);
  await refused("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nbm90IGEga2V5\n-----END PGP PRIVATE KEY BLOCK-----\n", /not a readable OpenPGP key/);
  await refused("hello", /not a readable OpenPGP key/);
  await refused(`${await exportSecretKey(gpg, fpr.plain)}\n${await exportSecretKey(gpg, fpr.bob)}`, /expected exactly one key, found 2/);
  await refused(await exportSecretKey(gpg, fpr.expired), /expired/);
  await refused(await exportSecretKey(gpg, fpr.revoked), /revoked/);
  await refused(await exportSecretKey(gpg, fpr.certOnly), /cannot sign/);
  await refused(await exportSecretKey(gpg, fpr.signOnly), /cannot encrypt/);
  await refused(await exportSecretSubkeys(gpg, fpr.plain), /cannot sign|secret signing part is missing/);
  assert.equal((await call(ctx, "GET", PATH, alice.token)).body.total, 0, "nothing stored");
});

test("bounds: a key over 128 Ki characters is a 400, a body over the limit a 413, a ninth key a 409", async (ctx) => {
  const { fx } = ctx;
  const alice = await fx.user(`alice-${randomUUID()}`);
  const long = await call(ctx, "POST", PATH, alice.token, { private_key: "A".repeat(128 * 1024 + 1) });
  assert.is(long.status, 400);
  assert.match(long.body.message, /private_key/);
  const huge = await callApi(ctx.logged.url, alice.token, "POST", PATH, { private_key: "A".repeat(200 * 1024) });
  assert.is(huge.status, 413);
  const passphrase = await call(ctx, "POST", PATH, alice.token, { private_key: "x", passphrase: "p".repeat(1025) });
  assert.is(passphrase.status, 400);

  for (let i = 0; i < 8; i++) {
    const { privateKey } = await generateKey({ userIDs: [{ email: `k${i}@platform.test` }], format: "armored" });
    assert.is((await call(ctx, "POST", PATH, alice.token, { private_key: privateKey })).status, 201);
  }
  const { privateKey } = await generateKey({ userIDs: [{ email: "k9@platform.test" }], format: "armored" });
  const ninth = await call(ctx, "POST", PATH, alice.token, { private_key: privateKey });
  assert.is(ninth.status, 409);
  assert.match(ninth.body.message, /at most 8 private keys/);
});

test("a key whose passphrase derivation asks for more memory than allowed (Argon2 over 64 MiB) is refused without running it", async (ctx) => {
  const { fx } = ctx;
  const alice = await fx.user(`alice-${randomUUID()}`);
  // 2^17 KiB = 128 MiB, one pass: openpgp.js makes it here, the API must not run it.
  const { privateKey } = await generateKey({ userIDs: [{ email: "argon@platform.test" }], format: "object" });
  const costly = await encryptKey({
    privateKey,
    passphrase: PASSPHRASE,
    config: { aeadProtect: true, s2kType: enums.s2k.argon2, s2kArgon2Params: { passes: 1, parallelism: 1, memoryExponent: 17 }, maxArgon2MemoryExponent: 17 },
  });
  const refused = await call(ctx, "POST", PATH, alice.token, { private_key: costly.armor(), passphrase: PASSPHRASE });
  assert.equal([refused.status, refused.body.field], [400, "private_key"]);
  assert.match(refused.body.message, /more memory than allowed \(Argon2 over 64 MiB\)/);
  // Within the bound (openpgp.js's own default, 64 MiB), it is unlocked.
  const fine = await encryptKey({
    privateKey,
    passphrase: PASSPHRASE,
    config: { aeadProtect: true, s2kType: enums.s2k.argon2, s2kArgon2Params: { passes: 1, parallelism: 1, memoryExponent: 16 } },
  });
  assert.is((await call(ctx, "POST", PATH, alice.token, { private_key: fine.armor(), passphrase: PASSPHRASE })).status, 201);
});

test("DeletePrivateKey: 204, then 404; another user's key is not found; a malformed fingerprint is a 400", async (ctx) => {
  const { fx, gpg, fpr } = ctx;
  const alice = await fx.user(`alice-${randomUUID()}`);
  const bob = await fx.user(`bob-${randomUUID()}`);
  assert.is((await call(ctx, "POST", PATH, alice.token, { private_key: await exportSecretKey(gpg, fpr.plain) })).status, 201);
  assert.is((await call(ctx, "DELETE", `${PATH}/${fpr.plain}`, bob.token)).status, 404);
  assert.is((await call(ctx, "DELETE", `${PATH}/${fpr.plain.toLowerCase()}`, alice.token)).status, 204);
  assert.is((await call(ctx, "DELETE", `${PATH}/${fpr.plain}`, alice.token)).status, 404);
  assert.is((await call(ctx, "DELETE", `${PATH}/nothex`, alice.token)).status, 400);
  assert.is(await fx.store.privateKeys.unlockedKey(alice.user_id, fpr.plain), null);
});

// ---- a draft's privacy ---------------------------------------------------------------------------------

test("a draft's privacy: encrypted when every recipient has a key, signed once a private key is stored, why not when one lacks a key; require_encryption", async (ctx) => {
  const { fx, gpg, fpr } = ctx;
  const alice = await fx.user(`alice-${randomUUID()}`, { email: "alice@platform.test" });
  assert.ok(alice.identity_id);
  const contact = await call(ctx, "POST", "/api/v2/contacts", alice.token, { given_name: "Bob", emails: [{ address: "bob@dest.test" }] });
  assert.is(contact.status, 201);
  const key = await call(ctx, "POST", `/api/v2/contacts/${contact.body.contact_id}/publickeys`, alice.token, { key: await gpg.exportPublic(fpr.bob) });
  assert.is(key.status, 201);

  const created = await call(ctx, "POST", "/api/v2/messages", alice.token, {
    identity_id: alice.identity_id,
    subject: "hi",
    body_plain: "secret",
    participants: [{ type: "To", address: "bob@dest.test" }],
  });
  assert.is(created.status, 201);
  const id = created.body.message_id;
  assert.is(created.body.privacy.mode, "encrypted");
  assert.is(created.body.privacy.signing_key, null);
  assert.is(created.body.privacy.own_copy, "none");
  assert.match(
    created.body.privacy.reason,
    /every recipient has a usable key: encrypted \(not signed: you have stored no private key\); no key of yours is known/,
  );
  assert.equal(created.body.privacy.recipients, [{ address: "bob@dest.test", key_ids: [fpr.bob.slice(-16)] }]);

  assert.is((await call(ctx, "POST", PATH, alice.token, { private_key: await exportSecretKey(gpg, fpr.plain) })).status, 201);
  const read = await call(ctx, "GET", `/api/v2/messages/${id}`, alice.token);
  assert.equal(read.body.privacy.signing_key, { fingerprint: fpr.plain, key_id: fpr.plain.slice(-16) });
  assert.is(read.body.privacy.own_copy, "private_key");
  assert.match(read.body.privacy.reason, new RegExp(`encrypted, signed with your key ${fpr.plain.slice(-16)}`));

  const widened = await call(ctx, "PATCH", `/api/v2/messages/${id}`, alice.token, {
    participants: [
      { type: "To", address: "bob@dest.test" },
      { type: "Bcc", address: "nobody@dest.test" },
    ],
  });
  assert.is(widened.body.privacy.mode, "signed");
  assert.is(widened.body.privacy.refused, false);
  assert.match(widened.body.privacy.reason, /^no usable key for nobody@dest\.test \(no contact has this address\): sent in clear, signed with your key/);

  const required = await call(ctx, "PATCH", `/api/v2/messages/${id}`, alice.token, { require_encryption: true });
  assert.is(required.status, 200);
  assert.is(required.body.require_encryption, true);
  assert.is(required.body.privacy.refused, true);
  assert.match(required.body.privacy.reason, /encryption is required, so sending is refused/);

  // Listings carry no privacy: it is worked out for a draft read alone.
  const listed = await call(ctx, "GET", "/api/v2/messages?is_draft=true", alice.token);
  assert.is(listed.body.items[0]?.privacy, undefined);
  assert.is(listed.body.items[0]?.require_encryption, true);

  const twitter = await fx.store.identities.create({ user_id: alice.user_id, type: "remote", protocol: "twitter", identifier: `alice${Date.now()}` });
  const dm = await call(ctx, "POST", "/api/v2/messages", alice.token, { identity_id: twitter.identity_id, require_encryption: true });
  assert.equal([dm.status, dm.body.field], [400, "require_encryption"]);
});

test("no answer and no log line held the private keys or the passphrase", async (ctx) => {
  assert.not.match(logs, /PRIVATE KEY/);
  assert.not.ok(logs.includes(PASSPHRASE), "the passphrase is in no log line");
  for (const secret of ctx.secrets) for (const line of armorLines(secret)) assert.not.ok(logs.includes(line), "no line of a key sent is in the logs");
});

test.run();
