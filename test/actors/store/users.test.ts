import { test } from "uvu";
import * as assert from "uvu/assert";
import { randomUUID } from "node:crypto";
import { Kvm } from "@nats-io/kv";
import { Conflict } from "../../../actors/store/errors.ts";
import { startStore, type StoreFixture } from "./fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});

test.after(async () => {
  await f.nats.stop();
});

test("creating a user gives the user and a bearer token", async () => {
  const contactId = randomUUID();
  const { user, token } = await f.store.users.create({ name: "alice", contact_id: contactId, recovery_email: "alice@backup.example" });
  assert.is(user.name, "alice");
  assert.is(user.contact_id, contactId);
  assert.is(user.recovery_email, "alice@backup.example");
  assert.is(user.admin, false);
  assert.match(token, /^cal_[A-Za-z0-9_-]{20,}$/);
  assert.equal(await f.store.users.get(user.user_id), user);
});

test("a user is found by its token and by its name, whatever the name's case", async () => {
  const { user, token } = await f.store.users.create({ name: "Bob", contact_id: randomUUID(), admin: true });
  assert.equal(await f.store.users.byToken(token), user);
  assert.equal(await f.store.users.byName("Bob"), user);
  assert.equal(await f.store.users.byName("bob"), user);
  assert.is((await f.store.users.byName("Bob"))?.admin, true);
});

test("a second user with the same name is a Conflict, and the first keeps the name", async () => {
  const { user } = await f.store.users.create({ name: "carol", contact_id: randomUUID() });
  for (const name of ["carol", "CAROL"]) {
    try {
      await f.store.users.create({ name, contact_id: randomUUID() });
      assert.unreachable(`creating a second "${name}" should have thrown`);
    } catch (err) {
      assert.instance(err, Conflict);
    }
  }
  assert.is((await f.store.users.byName("carol"))?.user_id, user.user_id);
  assert.is((await f.store.users.list()).filter((u) => u.name.toLowerCase() === "carol").length, 1);
});

test("an unknown token, name or id finds nobody", async () => {
  assert.is(await f.store.users.byToken("cal_not-a-real-token"), null);
  assert.is(await f.store.users.byToken(""), null);
  assert.is(await f.store.users.byName("nobody-by-that-name"), null);
  assert.is(await f.store.users.get(randomUUID()), null);
});

test("a new token finds the same user, and the first token stays valid", async () => {
  const { user, token } = await f.store.users.create({ name: "dave", contact_id: randomUUID() });
  const second = await f.store.users.newToken(user.user_id);
  assert.is.not(second, token);
  assert.is((await f.store.users.byToken(token))?.user_id, user.user_id);
  assert.is((await f.store.users.byToken(second))?.user_id, user.user_id);
});

test("tokens are not stored in the clear", async () => {
  const { token } = await f.store.users.create({ name: "erin", contact_id: randomUUID() });
  const kv = await new Kvm(f.nc).open("caliopen_lookups");
  for await (const key of await kv.keys()) {
    assert.not.ok(key.includes(token), `lookup key ${key} holds the token`);
    const entry = await kv.get(key);
    assert.not.ok(entry?.string().includes(token), `lookup ${key} holds the token`);
  }
});

test("list gives every user, sorted by name", async () => {
  const names = (await f.store.users.list()).map((u) => u.name);
  assert.equal(names, [...names].sort((a, b) => a.localeCompare(b)));
  for (const name of ["alice", "Bob", "carol", "dave", "erin"]) assert.ok(names.includes(name), `${name} listed`);
});

test.run();
