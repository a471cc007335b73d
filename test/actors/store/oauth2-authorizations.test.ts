// OAuth 2.0 authorizations in progress: good once (two callbacks racing with one state: one wins, even
// from two processes), not past their expiry, sealed at rest, and a state is checked before it becomes
// a key.
import { randomUUID } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { AUTHORIZATION_TTL_MS, OAuth2Authorizations } from "../../../actors/store/oauth2-authorizations.ts";
import { KvDocuments } from "../../../runtime/kv-documents.ts";
import { type StoreFixture, startStore } from "./fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});
test.after(async () => {
  await f.nats.stop();
});

const VERIFIER = `${"v".repeat(20)}erifier-of-this-test-0123456789abcdef`;

const pending = () => ({ user_id: randomUUID(), identity_id: randomUUID(), provider: "test", username: null, code_verifier: VERIFIER });

test("taken once: of two callbacks racing with one state, on two processes, exactly one gets it", async () => {
  const other = await f.openAnother();
  for (let round = 0; round < 5; round++) {
    const { state } = await f.store.oauth2Authorizations.begin(pending());
    const taken = await Promise.all([
      f.store.oauth2Authorizations.take(state),
      other.oauth2Authorizations.take(state),
      f.store.oauth2Authorizations.take(state),
    ]);
    assert.is(taken.filter((found) => found !== null).length, 1, `round ${round}`);
    assert.is(taken.find((found) => found !== null)?.code_verifier, VERIFIER);
  }
});

test("not past its expiry; its verifier sealed at rest; a malformed state never becomes a key", async () => {
  const now = Date.now();
  const { state, expires_at: expiresAt } = await f.store.oauth2Authorizations.begin(pending(), now);
  assert.is(Date.parse(expiresAt), now + AUTHORIZATION_TTL_MS);
  const raw = await (await KvDocuments.open<unknown>(f.nc, "caliopen_oauth2_authorizations")).get(state);
  assert.ok(raw !== null);
  assert.not.ok(JSON.stringify(raw.value).includes(VERIFIER), "sealed");
  assert.is(await f.store.oauth2Authorizations.take(state, now + AUTHORIZATION_TTL_MS + 1), null, "expired");
  assert.is(await f.store.oauth2Authorizations.take(state, now), null, "and gone");
  for (const bad of ["", "*", ">", `${state}.x`, "a.b", `${"0".repeat(32)}.${"A".repeat(42)}`, `${"0".repeat(32)}.${"A".repeat(42)}*`]) {
    assert.not.ok(OAuth2Authorizations.isState(bad), bad);
    assert.is(await f.store.oauth2Authorizations.take(bad), null);
  }
});

test.run();
