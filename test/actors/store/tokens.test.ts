// API tokens in the store: expiry (on a clock the test controls), revoking, last-used writes, and tokens
// made before tokens had ids (a bare `token.<hash>` lookup).

import { randomBytes, randomUUID } from "node:crypto";
import { type KV, Kvm } from "@nats-io/kv";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { hashed } from "../../../actors/store/lookups.ts";
import type { ApiToken } from "../../../actors/store/model.ts";
import { DEFAULT_TOKEN_LIFETIME_MS, tokenRefusal } from "../../../actors/store/tokens.ts";
import { type StoreFixture, startStore } from "./fixture.ts";

let f: StoreFixture;
let lookups: KV;
let tokensBucket: KV;

test.before(async () => {
  f = await startStore();
  lookups = await new Kvm(f.nc).open("caliopen_lookups");
  tokensBucket = await new Kvm(f.nc).open("caliopen_tokens");
});

test.after(async () => {
  await f.nats.stop();
});

const newUserId = async (name: string) => (await f.store.users.create({ name, contact_id: randomUUID() })).user_id;
const revision = async (token: ApiToken) => (await tokensBucket.get(`${token.user_id}.${token.token_id}`))?.revision;

/** What `caliopen users token` wrote before tokens had ids: only a lookup from the secret's hash to the user. */
async function legacyToken(userId: string): Promise<string> {
  const secret = `cal_${randomBytes(24).toString("base64url")}`;
  await lookups.put(`token.${hashed(secret)}`, JSON.stringify({ target: userId }));
  return secret;
}

test("a new token has a public id, a creation date and the default expiry, and is found by its secret", async () => {
  const userId = await newUserId("alice");
  const now = new Date("2030-03-01T12:00:00.000Z");
  const { token, secret } = await f.store.tokens.create(userId, { now });
  assert.match(secret, /^cal_[A-Za-z0-9_-]{32}$/);
  assert.match(token.token_id, /^tok_[0-9a-f]{16}$/);
  assert.not.ok(secret.includes(token.token_id.slice(4)), "the id is not part of the secret");
  assert.is(token.user_id, userId);
  assert.is(token.date_insert, now.toISOString());
  assert.is(Date.parse(token.expires_at ?? "") - now.getTime(), DEFAULT_TOKEN_LIFETIME_MS);
  assert.is(token.last_used, null);
  assert.is(token.revoked_at, null);
  assert.is(token.legacy, false);
  assert.equal(await f.store.tokens.find(secret), token);
  const second = await f.store.tokens.create(userId);
  assert.is.not(second.secret, secret);
  assert.is((await f.store.tokens.find(secret))?.token_id, token.token_id, "the first token stays valid");
  assert.is((await f.store.tokens.find(second.secret))?.token_id, second.token.token_id);
});

test("an unknown secret finds no token, nor one whose lookup leads to another token", async () => {
  assert.is(await f.store.tokens.find("cal_not-a-real-token"), null);
  assert.is(await f.store.tokens.find(""), null);
  const { token } = await f.store.tokens.create(await newUserId("mallory"));
  const forged = `cal_${randomBytes(24).toString("base64url")}`;
  await lookups.put(`apitoken.${hashed(forged)}`, JSON.stringify({ target: `${token.user_id}.${token.token_id}` }));
  assert.equal(await f.store.tokens.locate(forged), { key: `${token.user_id}.${token.token_id}`, hash: hashed(forged), user_id: token.user_id });
  assert.is(await f.store.tokens.find(forged), null);
});

test("a token is refused from its expiry on; one made to never expire is not", async () => {
  const userId = await newUserId("bob");
  const t0 = new Date("2030-01-01T00:00:00.000Z");
  const { token, secret } = await f.store.tokens.create(userId, { lifetimeMs: 60_000, now: t0 });
  const found = (await f.store.tokens.find(secret)) as ApiToken;
  assert.is(tokenRefusal(found, new Date(t0.getTime() + 59_999)), null);
  assert.is(tokenRefusal(found, new Date(t0.getTime() + 60_000)), `token ${token.token_id} expired at 2030-01-01T00:01:00.000Z`);
  const forever = await f.store.tokens.create(userId, { lifetimeMs: null, now: t0 });
  assert.is(forever.token.expires_at, null);
  assert.is(tokenRefusal((await f.store.tokens.find(forever.secret)) as ApiToken, new Date("2130-01-01T00:00:00.000Z")), null);
});

test("revoking one token refuses it and leaves the user's others alone", async () => {
  const userId = await newUserId("carol");
  const kept = await f.store.tokens.create(userId);
  const { token, secret } = await f.store.tokens.create(userId);
  const at = new Date("2030-02-02T00:00:00.000Z");
  assert.is((await f.store.tokens.revoke(token.token_id, at))?.revoked_at, at.toISOString());
  assert.is(tokenRefusal((await f.store.tokens.find(secret)) as ApiToken), `token ${token.token_id} was revoked`);
  assert.is(tokenRefusal((await f.store.tokens.find(kept.secret)) as ApiToken), null);
  assert.is((await f.store.tokens.revoke(token.token_id))?.revoked_at, at.toISOString(), "revoking again keeps the first date");
  assert.is(await f.store.tokens.revoke("tok_0000000000000000"), null);
  assert.is(await f.store.tokens.revoke("*"), null, "not a token id, so not a wildcard either");
  assert.is(tokenRefusal((await f.store.tokens.find(kept.secret)) as ApiToken), null);
});

test("revoking all of a user's tokens refuses every one of them, and no one else's", async () => {
  const userId = await newUserId("dave");
  const otherId = await newUserId("dave-other");
  const secrets = [(await f.store.tokens.create(userId)).secret, (await f.store.tokens.create(userId, { lifetimeMs: null })).secret];
  const other = await f.store.tokens.create(otherId);
  const revoked = await f.store.tokens.revokeAll(userId);
  assert.is(revoked.length, 2);
  for (const secret of secrets) assert.match(tokenRefusal((await f.store.tokens.find(secret)) as ApiToken) ?? "", /was revoked/);
  assert.is(tokenRefusal((await f.store.tokens.find(other.secret)) as ApiToken), null);
  assert.equal(await f.store.tokens.revokeAll(userId), [], "nothing left to revoke");
});

test("list gives a user's tokens oldest first, revoked ones too, and no secret", async () => {
  const userId = await newUserId("erin");
  const first = await f.store.tokens.create(userId, { now: new Date("2030-01-01T00:00:00.000Z") });
  const second = await f.store.tokens.create(userId, { now: new Date("2030-01-02T00:00:00.000Z") });
  await f.store.tokens.revoke(first.token.token_id);
  const listed = await f.store.tokens.list(userId);
  assert.equal(
    listed.map((token) => token.token_id),
    [first.token.token_id, second.token.token_id],
  );
  assert.ok(listed[0]?.revoked_at, "the revoked one is listed as revoked");
  const text = JSON.stringify(listed);
  for (const { secret } of [first, second]) assert.not.ok(text.includes(secret.slice(4)), "a secret is listed");
});

test("last use is written at most once a minute per token, and never undoes a revoke", async () => {
  const userId = await newUserId("frank");
  const { token } = await f.store.tokens.create(userId);
  const t0 = new Date("2030-05-05T10:00:00.000Z");
  await f.store.tokens.touch(token, t0);
  const written = await revision(token);
  assert.is((await f.store.tokens.list(userId))[0]?.last_used, t0.toISOString());
  await f.store.tokens.touch(token, new Date(t0.getTime() + 30_000));
  assert.is(await revision(token), written, "a second use within the minute writes nothing");
  await f.store.tokens.revoke(token.token_id);
  const later = new Date(t0.getTime() + 61_000);
  await f.store.tokens.touch(token, later);
  const [stored] = await f.store.tokens.list(userId);
  assert.is(stored?.last_used, later.toISOString());
  assert.ok(stored?.revoked_at, "still revoked");
});

test("secrets are never stored, not in keys nor in values", async () => {
  const userId = await newUserId("gina");
  const { secret } = await f.store.tokens.create(userId);
  await f.store.tokens.find(secret);
  for (const kv of [lookups, tokensBucket]) {
    for await (const key of await kv.keys()) {
      assert.not.ok(key.includes(secret.slice(4)), `key ${key} holds the secret`);
      assert.not.ok((await kv.get(key))?.string().includes(secret.slice(4)), `${key} holds the secret`);
    }
  }
});

test("a token made before tokens had ids keeps working, becomes a token without expiry on first use", async () => {
  const userId = await newUserId("hank");
  const secret = await legacyToken(userId);
  const token = await f.store.tokens.find(secret);
  assert.ok(token !== null);
  assert.is(token.user_id, userId);
  assert.is(token.legacy, true);
  assert.is(token.expires_at, null);
  assert.is(tokenRefusal(token), null);
  assert.match(token.token_id, /^tok_[0-9a-f]{16}$/);
  assert.is(await lookups.get(`token.${hashed(secret)}`).then((entry) => entry?.operation ?? null), "PURGE", "the old lookup is gone");
  assert.is((await f.store.tokens.find(secret))?.token_id, token.token_id, "found again, the same token");
  assert.equal(
    (await f.store.tokens.list(userId)).map((listed) => listed.token_id),
    [token.token_id],
  );
});

test("two nodes migrating the same old token at once make one token", async () => {
  const userId = await newUserId("ivy");
  const secret = await legacyToken(userId);
  const another = await f.openAnother();
  const [a, b] = await Promise.all([f.store.tokens.find(secret), another.tokens.find(secret)]);
  assert.is(a?.token_id, b?.token_id);
  assert.is((await f.store.tokens.list(userId)).length, 1);
});

test("old tokens not used yet are listed and revoked with the user's others", async () => {
  const userId = await newUserId("jack");
  const otherId = await newUserId("jack-other");
  const old = await legacyToken(userId);
  const othersOld = await legacyToken(otherId);
  const current = await f.store.tokens.create(userId);
  const listed = await f.store.tokens.list(userId);
  assert.equal(listed.map((token) => token.legacy).sort(), [false, true]);
  assert.is((await f.store.tokens.revokeAll(userId)).length, 2);
  assert.match(tokenRefusal((await f.store.tokens.find(old)) as ApiToken) ?? "", /was revoked/);
  assert.match(tokenRefusal((await f.store.tokens.find(current.secret)) as ApiToken) ?? "", /was revoked/);
  const untouched = await f.store.tokens.find(othersOld);
  assert.is(untouched?.user_id, otherId);
  assert.is(tokenRefusal(untouched as ApiToken), null);
});

test.run();
