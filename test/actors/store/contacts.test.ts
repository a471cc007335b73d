import { randomUUID } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { newContact, type StoreFixture, startStore } from "./fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});

test.after(async () => {
  await f.nats.stop();
});

test("byAddress finds a contact by any of its emails, whatever the case", async () => {
  const userId = randomUUID();
  const contact = await f.store.contacts.create(newContact(userId, ["Alice@Example.com", "alice.work@corp.example"]));
  for (const address of [
    "Alice@Example.com",
    "alice@example.com",
    "ALICE@EXAMPLE.COM",
    " alice@example.com ",
    "alice.work@corp.example",
    "Alice.Work@Corp.Example",
  ]) {
    assert.is((await f.store.contacts.byAddress(userId, address))?.contact_id, contact.contact_id, address);
  }
  assert.is(await f.store.contacts.byAddress(userId, "bob@example.com"), null);
  assert.is(await f.store.contacts.byAddress(randomUUID(), "alice@example.com"), null, "another user's contacts are not searched");
});

test("byAddress finds a contact by a social identity's name", async () => {
  const userId = randomUUID();
  const contact = await f.store.contacts.create(newContact(userId, [], { identities: [{ type: "twitter", name: "@Someone" }] }));
  assert.is((await f.store.contacts.byAddress(userId, "@someone"))?.contact_id, contact.contact_id);
});

test("after an update removes an address, it no longer finds the contact, and a new address does", async () => {
  const userId = randomUUID();
  const contact = await f.store.contacts.create(newContact(userId, ["old@example.com", "kept@example.com"]));
  const updated = await f.store.contacts.update(userId, contact.contact_id, (current) => ({
    ...current,
    emails: [
      ...current.emails.filter((email) => email.address !== "old@example.com"),
      { address: "New@Example.com", label: "", type: "work", is_primary: false },
    ],
  }));
  assert.equal(
    updated?.emails.map((email) => email.address),
    ["kept@example.com", "New@Example.com"],
  );
  assert.is(await f.store.contacts.byAddress(userId, "old@example.com"), null);
  assert.is((await f.store.contacts.byAddress(userId, "new@example.com"))?.contact_id, contact.contact_id);
  assert.is((await f.store.contacts.byAddress(userId, "kept@example.com"))?.contact_id, contact.contact_id);
  assert.equal(await f.store.contacts.get(userId, contact.contact_id), updated);
});

test("the first contact to claim an address keeps it; a removal by another contact does not free it", async () => {
  const userId = randomUUID();
  const first = await f.store.contacts.create(newContact(userId, ["shared@example.com"]));
  const second = await f.store.contacts.create(newContact(userId, ["shared@example.com", "second@example.com"]));
  assert.is((await f.store.contacts.byAddress(userId, "shared@example.com"))?.contact_id, first.contact_id);
  await f.store.contacts.update(userId, second.contact_id, (current) => ({
    ...current,
    emails: current.emails.filter((e) => e.address !== "shared@example.com"),
  }));
  assert.is((await f.store.contacts.byAddress(userId, "shared@example.com"))?.contact_id, first.contact_id);
});

test("update of a missing contact is null", async () => {
  assert.is(await f.store.contacts.update(randomUUID(), randomUUID(), (current) => current), null);
});

test("list is by title, paged", async () => {
  const userId = randomUUID();
  for (const title of ["Charlie", "alice", "Bob"]) await f.store.contacts.create(newContact(userId, [`${title.toLowerCase()}@example.com`], { title }));
  const all = await f.store.contacts.list(userId);
  assert.equal(
    all.items.map((c) => c.title),
    ["alice", "Bob", "Charlie"],
  );
  assert.is(all.total, 3);
  const page = await f.store.contacts.list(userId, { offset: 1, limit: 1 });
  assert.equal(
    page.items.map((c) => c.title),
    ["Bob"],
  );
  assert.is(page.total, 3);
});

test.run();
