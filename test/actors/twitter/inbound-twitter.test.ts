// InboundTwitter against a real nats-server and the real store.

import { createHash, randomUUID } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { newDraft } from "../../../actors/messages/new-draft.ts";
import type { Identity, Message, RawMessage, User } from "../../../actors/store/model.ts";
import { type DmDirection, dmExternalKey, encodeStoredDm, type XUser } from "../../../actors/twitter/dm-raw.ts";
import { processInboundTwitter } from "../../../actors/twitter/inbound-twitter.ts";
import type { Reply } from "../../../runtime/reply.ts";
import { newContact, type StoreFixture, startStore } from "../store/fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});
test.after(async () => {
  await f.nats.stop();
});

const NOW = new Date("2024-06-01T12:00:00.000Z");
const now = () => NOW;
const ME: XUser = { id: "1400000000000000001", username: "Bob_Durand", name: "Bob Durand" };
const ALICE: XUser = { id: "1400000000000000002", username: "Alice_W", name: "Alice W." };
/** DECISIONS §4 computed here on its own: sha256 of the sorted `protocol:address` list. */
const discussionOf = (addresses: string[]) =>
  createHash("sha256")
    .update(
      addresses
        .map((a) => `twitter:${a}`)
        .sort()
        .join("\n"),
    )
    .digest("hex");

let nextEvent = 9_007_199_254_740_993n;

async function newAccount(): Promise<{ user: User; twitter: Identity }> {
  const { user } = await createUser(f.store, { name: `bob-${randomUUID()}` });
  const twitter = await f.store.identities.create({
    user_id: user.user_id,
    type: "remote",
    protocol: "twitter",
    identifier: "Bob_Durand",
    display_name: "Bob Durand",
  });
  return { user, twitter };
}

function event(text: string, direction: DmDirection, id = (nextEvent++).toString()) {
  const [sender, recipient] = direction === "received" ? [ALICE, ME] : [ME, ALICE];
  return {
    event: { id, event_type: "MessageCreate", text, created_at: "2024-05-30T08:15:00.000Z", sender_id: sender.id, dm_conversation_id: `${ME.id}-${ALICE.id}` },
    sender,
    recipient,
    direction,
  };
}

async function importDm(user: User, identity: Identity, dm: ReturnType<typeof event>): Promise<{ raw: RawMessage; reply: Reply; message: Message | null }> {
  const raw = await f.store.raws.put(user.user_id, encodeStoredDm(dm));
  const reply = await processInboundTwitter(f.store, { message_id: raw.raw_msg_id, remote_id: identity.identity_id, user_id: user.user_id }, { now });
  const message = typeof reply.message_id === "string" ? await f.store.messages.get(user.user_id, reply.message_id) : null;
  return { raw, reply, message };
}

test("a received DM: every field of the message, contacts linked by screen name, raw marked delivered", async () => {
  const { user, twitter } = await newAccount();
  const alice = await f.store.contacts.create(newContact(user.user_id, [], { identities: [{ type: "twitter", name: "alice_w" }] }));
  const dm = event("hi Bob, coffee tomorrow?", "received");
  const { raw, reply, message } = await importDm(user, twitter, dm);
  assert.equal(reply, { error: false, message: "message imported", message_id: reply.message_id, discussion_id: reply.discussion_id });
  assert.ok(message);
  assert.equal(message, {
    schema: 1,
    user_id: user.user_id,
    message_id: reply.message_id,
    discussion_id: discussionOf(["alice_w", "bob_durand"]),
    raw_msg_id: raw.raw_msg_id,
    subject: "",
    body_plain: "hi Bob, coffee tomorrow?",
    body_html: "",
    date: "2024-05-30T08:15:00.000Z",
    date_insert: NOW.toISOString(),
    is_draft: false,
    is_unread: true,
    is_received: true,
    is_answered: false,
    participants: [
      { type: "From", address: "alice_w", label: "Alice W.", protocol: "twitter", contact_ids: [alice.contact_id] },
      { type: "To", address: "bob_durand", label: "Bob Durand", protocol: "twitter", contact_ids: [user.contact_id] },
    ],
    external_references: { message_id: dm.event.id, parent_id: "", ancestors_ids: [] },
    attachments: [],
    tags: [],
    protocol: "twitter",
    user_identities: [twitter.identity_id],
    parent_id: null,
  });
  assert.is((await f.store.raws.get(raw.raw_msg_id))?.delivered, true);
  // A reply written in Caliopen to Alice lands in the same discussion.
  const draft = newDraft(twitter, { body_plain: "sure", participants: [{ type: "To", address: "alice_w" }] });
  assert.is(draft.discussion_id, message.discussion_id);
});

test("the account's own DM (sent from another client) is imported as part of the conversation: read, not received", async () => {
  const { user, twitter } = await newAccount();
  const { reply, message } = await importDm(user, twitter, event("see you there", "sent"));
  assert.is(reply.error, false);
  assert.ok(message);
  assert.equal(
    message.participants.map((p) => [p.type, p.address]),
    [
      ["From", "bob_durand"],
      ["To", "alice_w"],
    ],
  );
  assert.is(message.is_unread, false);
  assert.is(message.is_received, false);
  assert.is(message.discussion_id, discussionOf(["alice_w", "bob_durand"]));
});

test("the same event again is imported once; another identity of the user seeing it is attached", async () => {
  const { user, twitter } = await newAccount();
  const dm = event("once", "received");
  const first = await importDm(user, twitter, dm);
  const again = await importDm(user, twitter, dm);
  assert.equal(again.reply, {
    error: false,
    message: "raw message already imported",
    message_id: first.reply.message_id,
    discussion_id: first.reply.discussion_id,
  });
  assert.is((await f.store.raws.get(again.raw.raw_msg_id))?.delivered, true);
  const other = await f.store.identities.create({ user_id: user.user_id, type: "remote", protocol: "twitter", identifier: "bob_alt" });
  const third = await importDm(user, other, dm);
  assert.is(third.reply.message, "raw message already imported");
  const stored = await f.store.messages.get(user.user_id, String(first.reply.message_id));
  assert.equal(stored?.user_identities, [twitter.identity_id, other.identity_id]);
  assert.is((await f.store.messages.list(user.user_id)).total, 1);
  // Another user receiving the same event id gets a message of their own.
  const someoneElse = await newAccount();
  const theirs = await importDm(someoneElse.user, someoneElse.twitter, dm);
  assert.is(theirs.reply.message, "message imported");
});

test("two imports of the same event racing make one message", async () => {
  const { user, twitter } = await newAccount();
  const dm = event("race", "received");
  const replies = await Promise.all([1, 2, 3].map(() => importDm(user, twitter, dm)));
  assert.ok(replies.every(({ reply }) => reply.error === false));
  assert.is(new Set(replies.map(({ reply }) => reply.message_id)).size, 1);
  assert.is((await f.store.messages.list(user.user_id)).total, 1);
});

test("an import that stopped between its claim and its message is completed by the next import: one message", async () => {
  const { user, twitter } = await newAccount();
  const dm = event("half done", "received");
  // What a node that died after claiming the event id, before writing the message, leaves behind.
  const claimed = randomUUID();
  assert.is(await f.store.messages.claimExternalId(user.user_id, dmExternalKey(dm.event.id), claimed), claimed);
  const next = await importDm(user, twitter, dm);
  assert.equal(next.reply, { error: false, message: "message imported", message_id: claimed, discussion_id: next.reply.discussion_id });
  assert.is(next.message?.body_plain, "half done");
  assert.is((await importDm(user, twitter, dm)).reply.message_id, claimed);
  assert.is((await f.store.messages.list(user.user_id)).total, 1);
});

test("every failure is a reply, never a throw", async () => {
  const { user, twitter } = await newAccount();
  const mail = await f.store.identities.create({ user_id: user.user_id, type: "remote", protocol: "imap", identifier: "bob@remote.test" });
  const good = await f.store.raws.put(user.user_id, encodeStoredDm(event("x", "received")));
  const order = { message_id: good.raw_msg_id, remote_id: twitter.identity_id, user_id: user.user_id };
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...order, message_id: "" }, /non-empty string message_id/],
    [{ remote_id: order.remote_id, user_id: order.user_id }, /non-empty string message_id/],
    [{ ...order, user_id: "nobody" }, /unknown user nobody/],
    [{ ...order, remote_id: "nothing" }, /not an identity of user/],
    [{ ...order, remote_id: mail.identity_id }, /imap identity, not a twitter one/],
    [{ ...order, message_id: randomUUID() }, /unknown raw message/],
  ];
  for (const [given, expected] of cases) {
    const reply = await processInboundTwitter(f.store, given as never);
    assert.is(reply.error, true, JSON.stringify(given));
    assert.match(reply.message, expected);
  }
  const notDm = await f.store.raws.put(user.user_id, Buffer.from("From: a@b\r\n\r\nmail, not a DM"));
  const bad = await processInboundTwitter(f.store, { ...order, message_id: notDm.raw_msg_id });
  assert.is(bad.error, true);
  assert.match(bad.message, /is not a stored DM: not JSON/);
  const wrongShape = await f.store.raws.put(
    user.user_id,
    Buffer.from(JSON.stringify({ format: "x-dm-event/1", event: { id: "12" }, sender: { id: "1" }, recipient: ME, direction: "received" })),
  );
  assert.match((await processInboundTwitter(f.store, { ...order, message_id: wrongShape.raw_msg_id })).message, /sender must be/);
  const stranger = await newAccount();
  const foreign = await processInboundTwitter(f.store, { ...order, user_id: stranger.user.user_id, remote_id: stranger.twitter.identity_id });
  assert.match(foreign.message, /belongs to another user/);
  await f.store.identities.markDeleted(user.user_id, twitter.identity_id);
  assert.match((await processInboundTwitter(f.store, order)).message, /is deleted/);
  assert.is((await f.store.messages.list(user.user_id)).total, 0);
});

test.run();
