// A user's discussions from the store: newest activity first with their last message and counts, a
// discussion's messages paged newest first, kept right as messages arrive, are read, move, are sent or
// deleted; built once for messages stored before discussions were kept; set right by readers after a
// writer stopped between the summary and the message (summary ahead), or lagged behind it.
import { randomUUID } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { DiscussionSummary } from "../../../actors/store/discussions.ts";
import { userToken } from "../../../actors/store/listings.ts";
import type { Message } from "../../../actors/store/model.ts";
import type { ListingDoc } from "../../../actors/store/sorted-index.ts";
import { KvDocuments } from "../../../runtime/kv-documents.ts";
import { newMessage, type StoreFixture, startStore } from "./fixture.ts";

const test = suite<{ f: StoreFixture }>("discussions");

test.before(async (ctx) => {
  ctx.f = await startStore();
});
test.after(async (ctx) => {
  await ctx.f.nats.stop();
});

const at = (minute: number) => new Date(Date.UTC(2026, 10, 1, 10, minute)).toISOString();

async function seed(f: StoreFixture, userId: string, rows: [discussion: string, minute: number, unread: boolean][]): Promise<Message[]> {
  const created: Message[] = [];
  for (const [discussion, minute, unread] of rows) {
    created.push(
      await f.store.messages.create(newMessage(userId, { discussion_id: discussion, date: at(minute), is_unread: unread, subject: `${discussion} ${minute}` })),
    );
  }
  return created;
}

const summaryOf = (page: Awaited<ReturnType<StoreFixture["store"]["messages"]["listDiscussions"]>>) =>
  page.items.map((discussion) => [discussion.discussion_id, discussion.last_message.subject, discussion.total_count, discussion.unread_count]);

test("newest activity first, each with its last message, count and unread count; a discussion's messages newest first, paged by cursor", async ({ f }) => {
  const userId = randomUUID();
  await seed(f, userId, [
    ["a", 1, true],
    ["b", 2, false],
    ["a", 3, false],
    ["c", 4, true],
    ["b", 5, true],
    ["b", 6, true],
  ]);
  await f.store.messages.create(newMessage(userId, { discussion_id: "b", date: at(9), is_draft: true, subject: "draft in b" }));
  const page = await f.store.messages.listDiscussions(userId, { limit: 10 });
  assert.equal(summaryOf(page), [
    ["b", "b 6", 3, 2],
    ["c", "c 4", 1, 1],
    ["a", "a 3", 2, 1],
  ]);
  assert.is(page.total, 3);
  const first = await f.store.messages.listDiscussions(userId, { limit: 2 });
  assert.equal(
    summaryOf(first).map((row) => row[0]),
    ["b", "c"],
  );
  const second = await f.store.messages.listDiscussions(userId, { limit: 2, after: first.next ?? "" });
  assert.equal(
    summaryOf(second).map((row) => row[0]),
    ["a"],
  );
  assert.is(second.next, null);

  const messages = await f.store.messages.discussionMessages(userId, "b", { limit: 2 });
  assert.equal(
    messages.items.map((message) => message.subject),
    ["b 6", "b 5"],
    "drafts are not in a discussion",
  );
  const rest = await f.store.messages.discussionMessages(userId, "b", { limit: 2, after: messages.next ?? "" });
  assert.equal(
    rest.items.map((message) => message.subject),
    ["b 2"],
  );
  assert.equal((await f.store.messages.discussionMessages(randomUUID(), "b")).items, [], "another user has no such discussion");
});

test("kept right as messages are read, arrive, are sent, move or are deleted", async ({ f }) => {
  const userId = randomUUID();
  const [a1, , b1] = await seed(f, userId, [
    ["a", 1, true],
    ["a", 2, true],
    ["b", 3, true],
  ]);
  await f.store.messages.update(userId, a1?.message_id ?? "", (message) => ({ ...message, is_unread: false }));
  assert.equal(summaryOf(await f.store.messages.listDiscussions(userId)), [
    ["b", "b 3", 1, 1],
    ["a", "a 2", 2, 1],
  ]);
  // A draft sent into a: its newest activity.
  const draft = await f.store.messages.create(newMessage(userId, { discussion_id: "a", date: at(5), is_draft: true, is_unread: false, subject: "reply" }));
  await f.store.messages.update(userId, draft.message_id, (message) => ({ ...message, is_draft: false, date: at(7) }));
  assert.equal(summaryOf(await f.store.messages.listDiscussions(userId)), [
    ["a", "reply", 3, 1],
    ["b", "b 3", 1, 1],
  ]);
  // Deleted: the discussion falls back to its newest message left, or goes with its last one.
  await f.store.messages.delete(userId, draft.message_id);
  await f.store.messages.delete(userId, b1?.message_id ?? "");
  assert.equal(summaryOf(await f.store.messages.listDiscussions(userId)), [["a", "a 2", 2, 1]]);
  // Moved to another discussion.
  await f.store.messages.update(userId, a1?.message_id ?? "", (message) => ({ ...message, discussion_id: "z" }));
  assert.equal(summaryOf(await f.store.messages.listDiscussions(userId)), [
    ["a", "a 2", 1, 1],
    ["z", "a 1", 1, 0],
  ]);
});

test("messages stored before discussions were kept are listed once built from them, by one pass", async ({ f }) => {
  const userId = randomUUID();
  const messages = await KvDocuments.open<Message>(f.nc, "caliopen_messages", 1);
  // Written as an earlier version wrote them: documents only.
  for (const [discussion, minute] of [
    ["old-a", 1],
    ["old-b", 2],
    ["old-a", 3],
  ] as const) {
    const message = newMessage(userId, { discussion_id: discussion, date: at(minute), subject: `${discussion} ${minute}` });
    await messages.put(`${userId}.${message.message_id}`, message);
  }
  assert.equal(summaryOf(await f.store.messages.listDiscussions(userId)), [
    ["old-a", "old-a 3", 2, 2],
    ["old-b", "old-b 2", 1, 1],
  ]);
});

test("a write that stopped between the summary and the message (the summary ahead, naming a message never written): readers set it right", async ({ f }) => {
  const userId = randomUUID();
  const [, second] = await seed(f, userId, [
    ["d", 1, true],
    ["d", 2, true],
  ]);
  const summaries = await KvDocuments.open<DiscussionSummary>(f.nc, "caliopen_discussions", 1);
  const listings = await KvDocuments.open<ListingDoc>(f.nc, "caliopen_listings", 1);
  const key = (await summaries.keys(`${userToken(userId)}.*`))[0] ?? "";
  // A newer message of d whose write fails after the summary moved to it (here: its id is taken).
  const failed = f.store.messages.create(newMessage(userId, { message_id: second?.message_id, discussion_id: "d", date: at(30) }));
  await failed.then(
    () => assert.unreachable("the id is taken"),
    () => undefined,
  );
  assert.is((await summaries.get(key))?.value.last_date, at(30), "the summary went ahead");
  assert.equal(summaryOf(await f.store.messages.listDiscussions(userId)), [["d", "d 2", 2, 2]], "listed as it is");
  assert.is((await summaries.get(key))?.value.last_date, at(2), "set right by the reader");
  assert.ok((await listings.keys(`m.${userToken(userId)}.discussions.*`)).length > 0, "listed in the user's discussions index");
});

test.run();
