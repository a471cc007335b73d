// Public keys of a contact through the HTTP API, with keys made by GnuPG: CreatePGPPubKey stores what the
// key says (checked against gpg's own listing) and emits publish_key on keyAction; DeletePubKey removes
// it and emits delete_key. What is not exactly one usable public key is a 400 on "key", and refused
// operations emit nothing.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";
import { Gpg } from "../helpers/gpg.ts";

type TestUser = { user_id: string; token: string; contact_id: string };
interface Keys {
  ann: string;
  rsa: string;
  other: string;
  expired: string;
  revoked: string;
}
const test = suite<{ fx: ApiFixture; gpg: Gpg; fpr: Keys; alice: TestUser; bob: TestUser; contact: string }>("API: public keys");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  ctx.gpg = await Gpg.open();
  ctx.fpr = {
    ann: await ctx.gpg.generate("Ann Lee <Ann.Lee@Example.com>"),
    rsa: await ctx.gpg.generate("Ann at work <ann@work.example>", { algorithm: "rsa2048" }),
    other: await ctx.gpg.generate("Someone Else <else@example.com>"),
    expired: await ctx.gpg.generate("Old Ann <old@example.com>", { expire: "1d", fakedTime: "20200101T000000" }),
    revoked: await ctx.gpg.generate("Lost Ann <lost@example.com>"),
  };
  await ctx.gpg.revoke(ctx.fpr.revoked);
  ctx.alice = await ctx.fx.user("alice");
  ctx.bob = await ctx.fx.user("bob");
  const contact = await ctx.fx.call("POST", "/api/v2/contacts", ctx.alice.token, { given_name: "Ann", emails: [{ address: "ann.lee@example.com" }] });
  ctx.contact = contact.body.contact_id;
});
test.after(async (ctx) => {
  await ctx.gpg?.close();
  await ctx.fx.stop();
});
test.before.each(({ fx }) => void fx.takeWire());

const keysPath = (contactId: string) => `/api/v2/contacts/${contactId}/publickeys`;

async function newContact(fx: ApiFixture, user: TestUser, name: string): Promise<string> {
  const created = await fx.call("POST", "/api/v2/contacts", user.token, { given_name: name });
  assert.is(created.status, 201);
  await fx.expectWire(1);
  return created.body.contact_id;
}

test("gpg made what the tests need: a revoked key and an expired one", async ({ gpg, fpr }) => {
  assert.is((await gpg.listing(fpr.revoked)).validity, "r");
  assert.is((await gpg.listing(fpr.expired)).validity, "e");
  assert.is((await gpg.listing(fpr.ann)).validity, "u");
});

test("CreatePGPPubKey stores the key with what gpg says of it and emits publish_key", async ({ fx, gpg, fpr, alice, contact }) => {
  const armored = await gpg.exportPublic(fpr.ann);
  const created = await fx.call("POST", keysPath(contact), alice.token, { key: armored });
  assert.is(created.status, 201, JSON.stringify(created.body));
  const key = created.body;
  const listing = await gpg.listing(fpr.ann);
  assert.is(key.fingerprint, listing.fingerprint);
  assert.is(key.key_id, listing.keyId);
  assert.is(key.size, 256, "ed25519 counts as 256 bits");
  assert.match(key.algorithm, /eddsa/i);
  assert.is(listing.algorithm, 22, "gpg: EdDSA");
  assert.is(key.expire_date, listing.expires?.toISOString());
  assert.equal(key.emails, ["ann.lee@example.com"]);
  assert.is(key.label, "ann.lee@example.com", "labelled by its first address when no label is given");
  assert.is(key.resource_id, contact);
  assert.is(key.user_id, alice.user_id);
  assert.is(key.source, "user");
  assert.match(key.armored, /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);

  const stored = await fx.store.keys.get(alice.user_id, contact, listing.keyId);
  assert.equal(stored, key, "the response is what was stored");
  assert.equal(await fx.expectWire(1), [
    { subject: "keyAction", payload: { order: "publish_key", key_id: listing.keyId, resource_id: contact, user_id: alice.user_id } },
  ]);
});

test("an RSA key gets its size in bits, and the label given", async ({ fx, gpg, fpr, alice, contact }) => {
  const created = await fx.call("POST", keysPath(contact), alice.token, { key: await gpg.exportPublic(fpr.rsa), label: "work key" });
  assert.is(created.status, 201, JSON.stringify(created.body));
  const listing = await gpg.listing(fpr.rsa);
  assert.is(listing.bits, 2048);
  assert.is(created.body.size, 2048);
  assert.match(created.body.algorithm, /rsa/i);
  assert.is(created.body.key_id, listing.keyId);
  assert.is(created.body.label, "work key");
  assert.equal(created.body.emails, ["ann@work.example"]);
  assert.equal(await fx.expectWire(1), [
    { subject: "keyAction", payload: { order: "publish_key", key_id: listing.keyId, resource_id: contact, user_id: alice.user_id } },
  ]);
});

test("ListPubKeys lists the contact's keys, oldest first; another contact's list is its own", async ({ fx, gpg, fpr, alice }) => {
  const holder = await newContact(fx, alice, "Holder");
  for (const which of ["other", "ann"] as const) {
    assert.is((await fx.call("POST", keysPath(holder), alice.token, { key: await gpg.exportPublic(fpr[which]) })).status, 201);
  }
  await fx.expectWire(2);
  const listed = await fx.call("GET", keysPath(holder), alice.token);
  assert.is(listed.status, 200);
  assert.is(listed.body.total, 2);
  assert.equal(
    listed.body.keys.map((key: { fingerprint: string }) => key.fingerprint),
    [fpr.other, fpr.ann],
  );
  const empty = await newContact(fx, alice, "Keyless");
  assert.equal((await fx.call("GET", keysPath(empty), alice.token)).body, { keys: [], total: 0 });
  assert.equal(fx.takeWire(), []);
});

test("the same key twice on one contact is a 409 that emits nothing", async ({ fx, gpg, fpr, alice }) => {
  const holder = await newContact(fx, alice, "Twice");
  const armored = await gpg.exportPublic(fpr.other);
  assert.is((await fx.call("POST", keysPath(holder), alice.token, { key: armored })).status, 201);
  await fx.expectWire(1);
  const again = await fx.call("POST", keysPath(holder), alice.token, { key: armored, label: "again" });
  assert.is(again.status, 409, JSON.stringify(again.body));
  assert.is(again.body.error, "conflict");
  assert.is((await fx.store.keys.list(alice.user_id, holder)).length, 1);
  assert.equal(fx.takeWire(), []);
});

test("DeletePubKey removes the key and emits delete_key (key id in any case)", async ({ fx, gpg, fpr, alice }) => {
  const holder = await newContact(fx, alice, "Deleter");
  const key = (await fx.call("POST", keysPath(holder), alice.token, { key: await gpg.exportPublic(fpr.other) })).body;
  await fx.expectWire(1);
  const deleted = await fx.call("DELETE", `${keysPath(holder)}/${key.key_id.toLowerCase()}`, alice.token);
  assert.is(deleted.status, 204, JSON.stringify(deleted.body));
  assert.is(deleted.body, null);
  assert.is(await fx.store.keys.get(alice.user_id, holder, key.key_id), null);
  assert.equal((await fx.call("GET", keysPath(holder), alice.token)).body, { keys: [], total: 0 });
  assert.equal(await fx.expectWire(1), [
    { subject: "keyAction", payload: { order: "delete_key", key_id: key.key_id, resource_id: holder, user_id: alice.user_id } },
  ]);

  const twice = await fx.call("DELETE", `${keysPath(holder)}/${key.key_id}`, alice.token);
  assert.is(twice.status, 404);
  const unknown = await fx.call("DELETE", `${keysPath(holder)}/0123456789ABCDEF`, alice.token);
  assert.is(unknown.status, 404);
  assert.equal(fx.takeWire(), [], "deleting nothing emits nothing");
  const readded = await fx.call("POST", keysPath(holder), alice.token, { key: await gpg.exportPublic(fpr.other) });
  assert.is(readded.status, 201, "a deleted key may be added again");
});

test("an expired key is accepted (with its past expiry date): the user may keep it to read old mail", async ({ fx, gpg, fpr, alice }) => {
  const holder = await newContact(fx, alice, "Expired");
  const created = await fx.call("POST", keysPath(holder), alice.token, { key: await gpg.exportPublic(fpr.expired) });
  assert.is(created.status, 201, JSON.stringify(created.body));
  assert.is(created.body.expire_date, "2020-01-02T00:00:00.000Z");
  assert.is(created.body.expire_date, (await gpg.listing(fpr.expired)).expires?.toISOString());
  assert.is((await fx.expectWire(1))[0]?.payload.order, "publish_key");
});

test("another user gets 404 on the contact's keys and changes nothing", async ({ fx, gpg, fpr, alice, bob }) => {
  const holder = await newContact(fx, alice, "Private");
  const key = (await fx.call("POST", keysPath(holder), alice.token, { key: await gpg.exportPublic(fpr.other) })).body;
  await fx.expectWire(1);
  assert.is((await fx.call("GET", keysPath(holder), bob.token)).status, 404);
  assert.is((await fx.call("POST", keysPath(holder), bob.token, { key: await gpg.exportPublic(fpr.ann) })).status, 404);
  assert.is((await fx.call("DELETE", `${keysPath(holder)}/${key.key_id}`, bob.token)).status, 404);
  assert.is((await fx.call("DELETE", `${keysPath(bob.contact_id)}/${key.key_id}`, bob.token)).status, 404, "not through his own contact either");
  assert.equal(
    (await fx.store.keys.list(alice.user_id, holder)).map((k) => k.key_id),
    [key.key_id],
  );
  assert.equal(fx.takeWire(), []);
});

const badKeys: [string, (gpg: Gpg, fpr: Keys) => Promise<unknown>, string, RegExp][] = [
  ["text that is not a key", async () => ({ key: "hello, I am a key" }), "key", /not a readable OpenPGP key/],
  [
    "a damaged armor",
    async (gpg, fpr) => ({ key: (await gpg.exportPublic(fpr.ann)).replace(/\n[A-Za-z0-9+/]{20}/, "\n!!!!") }),
    "key",
    /not a readable OpenPGP key/,
  ],
  ["a private key", async (gpg, fpr) => ({ key: await gpg.exportSecret(fpr.ann) }), "key", /private key/],
  ["two keys in one armor", async (gpg, fpr) => ({ key: await gpg.exportPublic(fpr.ann, fpr.other) }), "key", /exactly one key, found 2/],
  ["a revoked key", async (gpg, fpr) => ({ key: await gpg.exportPublic(fpr.revoked) }), "key", /revoked/],
  ["an empty key", async () => ({ key: "" }), "key", /fewer than 1/],
  ["no key", async () => ({ label: "mine" }), "key", /required/],
  ["a key that is not a string", async () => ({ key: 42 }), "key", /string/],
  ["a label that is not a string", async (gpg, fpr) => ({ key: await gpg.exportPublic(fpr.ann), label: ["x"] }), "label", /string/],
  ["an unknown field", async (gpg, fpr) => ({ key: await gpg.exportPublic(fpr.ann), trust: "full" }), "trust", /not a known field/],
];

for (const [what, body, field, message] of badKeys) {
  test(`CreatePGPPubKey with ${what} is a 400 naming ${field}; nothing is stored or emitted`, async ({ fx, gpg, fpr, alice }) => {
    const holder = await newContact(fx, alice, `Bad ${what}`);
    const response = await fx.call("POST", keysPath(holder), alice.token, await body(gpg, fpr));
    assert.is(response.status, 400, JSON.stringify(response.body));
    assert.is(response.body.field, field, JSON.stringify(response.body));
    assert.is(response.body.error, "bad_request");
    assert.match(response.body.message, message);
    assert.equal(await fx.store.keys.list(alice.user_id, holder), []);
    assert.equal(fx.takeWire(), []);
  });
}

test("the key routes with a bad contact or key id are 400s naming it", async ({ fx, gpg, fpr, alice, contact }) => {
  const armored = await gpg.exportPublic(fpr.other);
  const cases: [string, string, unknown, string][] = [
    ["GET", keysPath("not-a-uuid"), undefined, "contact_id"],
    ["POST", keysPath("not-a-uuid"), { key: armored }, "contact_id"],
    ["DELETE", `${keysPath("not-a-uuid")}/0123456789ABCDEF`, undefined, "contact_id"],
    ["DELETE", `${keysPath(contact)}/0123`, undefined, "key_id"],
    ["DELETE", `${keysPath(contact)}/0123456789ABCDEG`, undefined, "key_id"],
  ];
  for (const [method, path, body, field] of cases) {
    const response = await fx.call(method, path, alice.token, body);
    assert.is(response.status, 400, `${method} ${path}: ${JSON.stringify(response.body)}`);
    assert.is(response.body.field, field, `${method} ${path}: ${JSON.stringify(response.body)}`);
  }
  assert.is((await fx.call("POST", keysPath("00000000-0000-4000-8000-000000000000"), alice.token, { key: armored })).status, 404, "unknown contact");
  assert.is((await fx.call("GET", keysPath("00000000-0000-4000-8000-000000000000"), alice.token)).status, 404);
  assert.equal(fx.takeWire(), []);
});

test.run();
