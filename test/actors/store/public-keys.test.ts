import { randomUUID } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Conflict } from "../../../actors/store/errors.ts";
import { newPublicKey, type StoreFixture, startStore } from "./fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});

test.after(async () => {
  await f.nats.stop();
});

const at = (second: number) => new Date(Date.UTC(2024, 0, 1, 12, 0, second)).toISOString();

test("keys are added, listed in insertion order, got and deleted", async () => {
  const userId = randomUUID();
  const contactId = randomUUID();
  const b = await f.store.keys.add(newPublicKey(userId, contactId, { label: "b", date_insert: at(2) }));
  const a = await f.store.keys.add(newPublicKey(userId, contactId, { label: "a", date_insert: at(1) }));
  await f.store.keys.add(newPublicKey(userId, randomUUID(), { label: "other contact" }));

  assert.equal(
    (await f.store.keys.list(userId, contactId)).map((k) => k.label),
    ["a", "b"],
  );
  assert.equal(await f.store.keys.get(userId, contactId, a.key_id), a);

  assert.is(await f.store.keys.delete(userId, contactId, a.key_id), true);
  assert.is(await f.store.keys.get(userId, contactId, a.key_id), null);
  assert.equal(await f.store.keys.list(userId, contactId), [b]);
});

test("the same fingerprint twice on one contact is a Conflict, on another contact it is fine", async () => {
  const userId = randomUUID();
  const contactId = randomUUID();
  const key = await f.store.keys.add(newPublicKey(userId, contactId));
  for (const again of [key, { ...key, key_id: "DIFFERENTKEYID00" }]) {
    try {
      await f.store.keys.add(again);
      assert.unreachable("adding the same fingerprint again should have thrown");
    } catch (err) {
      assert.instance(err, Conflict);
    }
  }
  assert.equal(await f.store.keys.list(userId, contactId), [key]);
  await f.store.keys.add({ ...key, resource_id: randomUUID() });
});

test("the same key id with another fingerprint on one contact is a Conflict", async () => {
  const userId = randomUUID();
  const contactId = randomUUID();
  const key = await f.store.keys.add(newPublicKey(userId, contactId));
  try {
    await f.store.keys.add(newPublicKey(userId, contactId, { key_id: key.key_id }));
    assert.unreachable("adding a second key with the same key id should have thrown");
  } catch (err) {
    assert.instance(err, Conflict);
  }
  assert.equal(await f.store.keys.list(userId, contactId), [key]);
});

test("deleting an unknown key is false, and a deleted key can be added again", async () => {
  const userId = randomUUID();
  const contactId = randomUUID();
  assert.is(await f.store.keys.delete(userId, contactId, "0000000000000000"), false);
  const key = await f.store.keys.add(newPublicKey(userId, contactId));
  assert.is(await f.store.keys.delete(userId, contactId, key.key_id), true);
  assert.is(await f.store.keys.delete(userId, contactId, key.key_id), false);
  await f.store.keys.add(key);
  assert.equal(await f.store.keys.list(userId, contactId), [key]);
});

test.run();
