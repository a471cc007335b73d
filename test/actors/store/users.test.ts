import { randomUUID } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { Conflict } from "../../../actors/store/errors.ts";
import { type StoreFixture, startStore } from "./fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});

test.after(async () => {
  await f.nats.stop();
});

test("creating a user stores it, enabled", async () => {
  const contactId = randomUUID();
  const user = await f.store.users.create({ name: "alice", contact_id: contactId, recovery_email: "alice@backup.example" });
  assert.is(user.name, "alice");
  assert.is(user.contact_id, contactId);
  assert.is(user.recovery_email, "alice@backup.example");
  assert.is(user.admin, false);
  assert.is(user.disabled_at, null);
  assert.equal(await f.store.users.get(user.user_id), user);
});

test("a user is found by its name, whatever the name's case", async () => {
  const user = await f.store.users.create({ name: "Bob", contact_id: randomUUID(), admin: true });
  assert.equal(await f.store.users.byName("Bob"), user);
  assert.equal(await f.store.users.byName("bob"), user);
  assert.is((await f.store.users.byName("Bob"))?.admin, true);
});

test("a second user with the same name is a Conflict, and the first keeps the name", async () => {
  const user = await f.store.users.create({ name: "carol", contact_id: randomUUID() });
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

test("an unknown name or id finds nobody", async () => {
  assert.is(await f.store.users.byName("nobody-by-that-name"), null);
  assert.is(await f.store.users.get(randomUUID()), null);
});

test("a user is disabled and enabled again; disabling twice keeps the first date", async () => {
  const user = await f.store.users.create({ name: "dave", contact_id: randomUUID() });
  const at = new Date("2030-01-02T03:04:05.000Z");
  assert.is((await f.store.users.setDisabled(user.user_id, true, at))?.disabled_at, at.toISOString());
  assert.is((await f.store.users.setDisabled(user.user_id, true, new Date()))?.disabled_at, at.toISOString());
  assert.is((await f.store.users.get(user.user_id))?.disabled_at, at.toISOString());
  assert.is((await f.store.users.setDisabled(user.user_id, false))?.disabled_at, null);
  assert.is((await f.store.users.get(user.user_id))?.disabled_at, null);
  assert.is(await f.store.users.setDisabled(randomUUID(), true), null);
});

test("list gives every user, sorted by name", async () => {
  const names = (await f.store.users.list()).map((u) => u.name);
  assert.equal(
    names,
    [...names].sort((a, b) => a.localeCompare(b)),
  );
  for (const name of ["alice", "Bob", "carol", "dave"]) assert.ok(names.includes(name), `${name} listed`);
});

test.run();
