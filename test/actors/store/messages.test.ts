import { randomUUID } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { newMessage, type StoreFixture, startStore } from "./fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});

test.after(async () => {
  await f.nats.stop();
});

const at = (minute: number) => new Date(Date.UTC(2024, 0, 1, 12, minute)).toISOString();

test("a created message reads back; another user's key finds nothing", async () => {
  const userId = randomUUID();
  const message = await f.store.messages.create(newMessage(userId, { subject: "hello" }));
  assert.equal(await f.store.messages.get(userId, message.message_id), message);
  assert.is(await f.store.messages.get(randomUUID(), message.message_id), null);
});

test("list is newest first, paged with offset, limit and total, and only the user's own", async () => {
  const userId = randomUUID();
  // Written in an order that is neither date order nor its reverse.
  for (const minute of [3, 0, 4, 1, 2]) await f.store.messages.create(newMessage(userId, { subject: `m${minute}`, date: at(minute) }));
  await f.store.messages.create(newMessage(randomUUID(), { subject: "someone else's", date: at(5) }));

  const all = await f.store.messages.list(userId);
  assert.equal(
    all.items.map((m) => m.subject),
    ["m4", "m3", "m2", "m1", "m0"],
  );
  assert.is(all.total, 5);
  assert.is(all.offset, 0);

  const page = await f.store.messages.list(userId, { offset: 1, limit: 2 });
  assert.equal(
    page.items.map((m) => m.subject),
    ["m3", "m2"],
  );
  assert.is(page.total, 5);
  assert.is(page.offset, 1);
  assert.is(page.limit, 2);

  const last = await f.store.messages.list(userId, { offset: 4, limit: 2 });
  assert.equal(
    last.items.map((m) => m.subject),
    ["m0"],
  );
  assert.is(last.total, 5);

  const beyond = await f.store.messages.list(userId, { offset: 10, limit: 2 });
  assert.equal(beyond.items, []);
  assert.is(beyond.total, 5);
});

test("list filters drafts, and the total counts only what matches", async () => {
  const userId = randomUUID();
  await f.store.messages.create(newMessage(userId, { subject: "draft-old", is_draft: true, date: at(1) }));
  await f.store.messages.create(newMessage(userId, { subject: "received", is_draft: false, date: at(2) }));
  await f.store.messages.create(newMessage(userId, { subject: "draft-new", is_draft: true, date: at(3) }));

  const drafts = await f.store.messages.list(userId, { is_draft: true });
  assert.equal(
    drafts.items.map((m) => m.subject),
    ["draft-new", "draft-old"],
  );
  assert.is(drafts.total, 2);
  const notDrafts = await f.store.messages.list(userId, { is_draft: false });
  assert.equal(
    notDrafts.items.map((m) => m.subject),
    ["received"],
  );
  assert.is(notDrafts.total, 1);
  assert.is((await f.store.messages.list(userId)).total, 3);
});

test("list filters by discussion", async () => {
  const userId = randomUUID();
  const discussion = randomUUID();
  await f.store.messages.create(newMessage(userId, { subject: "in-1", discussion_id: discussion, date: at(1) }));
  await f.store.messages.create(newMessage(userId, { subject: "out", date: at(2) }));
  await f.store.messages.create(newMessage(userId, { subject: "in-2", discussion_id: discussion, date: at(3) }));
  assert.equal(
    (await f.store.messages.list(userId, { discussion_id: discussion })).items.map((m) => m.subject),
    ["in-2", "in-1"],
  );
});

test("update changes a message by compare-and-swap; a missing one is null", async () => {
  const userId = randomUUID();
  const message = await f.store.messages.create(newMessage(userId));
  const updated = await f.store.messages.update(userId, message.message_id, (current) => ({ ...current, is_unread: false }));
  assert.is(updated?.is_unread, false);
  assert.is((await f.store.messages.get(userId, message.message_id))?.is_unread, false);
  assert.is(await f.store.messages.update(userId, randomUUID(), (current) => current), null);
});

test("delete removes one message of the user, leaves the others; a missing one is fine", async () => {
  const userId = randomUUID();
  const gone = await f.store.messages.create(newMessage(userId, { date: at(1) }));
  const kept = await f.store.messages.create(newMessage(userId, { date: at(2) }));
  await f.store.messages.delete(userId, gone.message_id);
  assert.is(await f.store.messages.get(userId, gone.message_id), null);
  assert.equal(await f.store.messages.get(userId, kept.message_id), kept);
  assert.equal(
    (await f.store.messages.list(userId)).items.map((m) => m.message_id),
    [kept.message_id],
  );
  await f.store.messages.delete(userId, gone.message_id);
  await f.store.messages.delete(randomUUID(), kept.message_id);
  assert.equal(await f.store.messages.get(userId, kept.message_id), kept, "another user's key deletes nothing");
});

test("claimExternalId: the first claim wins, a second message gets the first one's id back", async () => {
  const userId = randomUUID();
  const external = "<CAF=abc.123@mail.example.com>";
  const first = randomUUID();
  const second = randomUUID();
  assert.is(await f.store.messages.claimExternalId(userId, external, first), first);
  assert.is(await f.store.messages.claimExternalId(userId, external, second), first);
  assert.is(await f.store.messages.claimExternalId(userId, external, first), first, "claiming again for the holder is fine");
  // Per user: another user's copy of the same mail claims it for itself.
  const otherUser = randomUUID();
  assert.is(await f.store.messages.claimExternalId(otherUser, external, second), second);
});

test("racing claims of one external id agree on a single winner", async () => {
  const userId = randomUUID();
  const external = `<race-${randomUUID()}@example.com>`;
  const stores = [f.store, await f.openAnother(), await f.openAnother()];
  const ids: string[] = Array.from({ length: 9 }, () => randomUUID());
  const results = await Promise.all(ids.map((id, i) => stores[i % stores.length]!.messages.claimExternalId(userId, external, id)));
  assert.is(new Set(results).size, 1);
  assert.ok(ids.includes(results[0] as string));
});

test("byExternalId finds the message that claimed the external id", async () => {
  const userId = randomUUID();
  const message = await f.store.messages.create(newMessage(userId, { date: at(1) }));
  const newer = await f.store.messages.create(newMessage(userId, { date: at(2) }));
  const external = message.external_references.message_id;
  assert.is(await f.store.messages.byExternalId(userId, external), null);
  await f.store.messages.claimExternalId(userId, external, message.message_id);
  await f.store.messages.claimExternalId(userId, newer.external_references.message_id, newer.message_id);
  assert.equal(await f.store.messages.byExternalId(userId, external), message);
  assert.equal(await f.store.messages.byExternalId(userId, newer.external_references.message_id), newer);
  assert.is(await f.store.messages.byExternalId(randomUUID(), external), null);
  assert.is(await f.store.messages.byExternalId(userId, "<unknown@example.com>"), null);
});

test.run();
