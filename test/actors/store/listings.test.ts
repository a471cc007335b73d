// Listings from the sorted indexes: order, filters and cursors across many leaves, concurrent writers, the
// half-done writes a crash leaves, data stored before the indexes, and cursors that are not ones.
import { randomUUID } from "node:crypto";
import { Kvm } from "@nats-io/kv";
import { test } from "uvu";
import * as assert from "uvu/assert";
import type { StoredIdentity } from "../../../actors/store/identities.ts";
import { ENTRY_GRACE_MS } from "../../../actors/store/listing-page.ts";
import { Listings, userToken } from "../../../actors/store/listings.ts";
import { newestFirst } from "../../../actors/store/messages.ts";
import type { Message } from "../../../actors/store/model.ts";
import { BadCursor } from "../../../actors/store/paging.ts";
import { LEAF_MAX, type ListingDoc, type SortedIndex } from "../../../actors/store/sorted-index.ts";
import { openStore } from "../../../actors/store/store.ts";
import { KvDocuments } from "../../../runtime/kv-documents.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { newContact, newMessage, type StoreFixture, startStore } from "./fixture.ts";

let f: StoreFixture;
let listingDocs: KvDocuments<ListingDoc>;

test.before(async () => {
  f = await startStore();
  listingDocs = await KvDocuments.open<ListingDoc>(f.nc, "caliopen_listings");
});

test.after(async () => {
  await f.nats.stop();
});

/** A date `n` minutes into 2024: distinct, and in an order the test knows. */
const minute = (n: number) => new Date(Date.UTC(2024, 0, 1) + n * 60_000).toISOString();

/** Indexes as another process would see them (nothing remembered from this one). */
const mailIndexOf = (userId: string): SortedIndex => new Listings(listingDocs).index(`m.${userToken(userId)}.mail`, newestFirst);

/** Every message, page after page by cursor. */
async function walk(userId: string, limit: number, filter: { is_draft?: boolean } = {}): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let after: string | undefined;
  let pages = 0;
  do {
    const page = await f.store.messages.list(userId, { ...filter, limit, ...(after !== undefined && { after }) });
    ids.push(...page.items.map((m) => m.message_id));
    after = page.next ?? undefined;
    pages++;
    assert.ok(pages < 1_000, "the walk ends");
  } while (after !== undefined);
  return { ids, pages };
}

const newest = (messages: Message[]) => [...messages].sort((a, b) => newestFirst([a.date, a.message_id], [b.date, b.message_id])).map((m) => m.message_id);

async function createAll(messages: Message[], concurrency: number, store = f.store): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < messages.length) await store.messages.create(messages[next++] as Message);
    }),
  );
}

test("many leaves: written in random order and concurrently, a cursor walk gives each message once, newest first, and offsets agree", async () => {
  const userId = randomUUID();
  const count = LEAF_MAX * 3 + 17;
  const order = Array.from({ length: count }, (_, i) => i).sort(() => Math.random() - 0.5);
  const messages = order.map((n) => newMessage(userId, { date: minute(n), is_draft: n % 7 === 0 }));
  await createAll(messages, 8);

  const all = await walk(userId, 37);
  assert.equal(all.ids, newest(messages));
  assert.is(all.pages, Math.ceil(count / 37));
  const first = await f.store.messages.list(userId, { limit: 10 });
  assert.is(first.total, count);

  const drafts = messages.filter((m) => m.is_draft);
  assert.equal((await walk(userId, 11, { is_draft: true })).ids, newest(drafts));
  assert.equal((await walk(userId, 50, { is_draft: false })).ids, newest(messages.filter((m) => !m.is_draft)));
  assert.is((await f.store.messages.list(userId, { is_draft: true, limit: 1 })).total, drafts.length);

  const deep = await f.store.messages.list(userId, { offset: 500, limit: 20 });
  assert.equal(
    deep.items.map((m) => m.message_id),
    all.ids.slice(500, 520),
  );
  const fromCursor = await f.store.messages.list(userId, { offset: 3, limit: 5, after: first.next ?? "" });
  assert.equal(
    fromCursor.items.map((m) => m.message_id),
    all.ids.slice(13, 18),
    "offset counts on from the cursor",
  );
});

test("mail older than all the rest lands deep in; two processes writing one user's mail at once lose none", async () => {
  const userId = randomUUID();
  const recent = Array.from({ length: LEAF_MAX * 2 }, (_, i) => newMessage(userId, { date: minute(100_000 + i) }));
  await createAll(recent, 4);
  const other = await f.openAnother();
  const backfill = Array.from({ length: LEAF_MAX }, (_, i) => newMessage(userId, { date: minute(i) }));
  const between = Array.from({ length: LEAF_MAX }, (_, i) => newMessage(userId, { date: minute(50_000 + i) }));
  await Promise.all([createAll(backfill, 6, f.store), createAll(between, 6, other)]);
  const everything = [...recent, ...backfill, ...between];
  assert.equal((await walk(userId, 101)).ids, newest(everything));
  assert.is((await other.messages.list(userId, { limit: 1 })).total, everything.length);
});

test("a new index made by three processes at once, and one made by a batch larger than a leaf: none lost, counts right", async () => {
  const userId = randomUUID();
  const stores = [f.store, await f.openAnother(), await f.openAnother()];
  const first = stores.map((_store, at) => Array.from({ length: 5 }, (_, i) => newMessage(userId, { date: minute(at * 10 + i) })));
  // Each process's first write finds no head and makes one; two of them lose and merge into the winner's.
  await Promise.all(stores.map((store, at) => createAll(first[at] as Message[], 5, store)));
  const everything = first.flat();
  assert.equal((await walk(userId, 7)).ids, newest(everything));
  for (const store of stores) assert.is((await store.messages.list(userId, { limit: 1 })).total, everything.length);

  const bulk = mailIndexOf(`bulk-${randomUUID()}`);
  const entries = Array.from({ length: LEAF_MAX * 2 + 7 }, (_, i) => [minute(i), `id-${String(i).padStart(4, "0")}`, Date.now()] as const);
  assert.is(await bulk.insert([...entries, ...entries.slice(0, 3)]), entries.length, "repeats counted once");
  const listed: string[] = [];
  for await (const entry of bulk.entriesAfter(null)) listed.push(entry[1]);
  assert.equal(listed, entries.map((entry) => entry[1]).reverse());
  assert.equal((await bulk.count())?.value, { kind: "count", n: entries.length });
});

test("a draft changed (its date) or sent (no longer a draft) is listed once, where it now belongs", async () => {
  const userId = randomUUID();
  const draft = await f.store.messages.create(newMessage(userId, { is_draft: true, date: minute(1) }));
  const mail = await f.store.messages.create(newMessage(userId, { date: minute(2) }));
  await f.store.messages.update(userId, draft.message_id, (current) => ({ ...current, date: minute(3) }));
  assert.equal((await walk(userId, 1)).ids, [draft.message_id, mail.message_id]);
  await f.store.messages.update(userId, draft.message_id, (current) => ({ ...current, is_draft: false, date: minute(0) }));
  assert.equal((await walk(userId, 10)).ids, [mail.message_id, draft.message_id]);
  assert.equal((await walk(userId, 10, { is_draft: true })).ids, []);
  assert.is((await f.store.messages.list(userId)).total, 2);
  assert.is((await f.store.messages.list(userId, { is_draft: true })).total, 0);
});

test("concurrent changes of one message's date leave it listed once", async () => {
  const userId = randomUUID();
  const message = await f.store.messages.create(newMessage(userId, { date: minute(0) }));
  const other = await f.openAnother();
  await Promise.all(
    Array.from({ length: 12 }, (_, i) =>
      (i % 2 === 0 ? f.store : other).messages.update(userId, message.message_id, (current) => ({ ...current, date: minute(i + 1) })),
    ),
  );
  const stored = await f.store.messages.get(userId, message.message_id);
  const page = await f.store.messages.list(userId);
  assert.equal(
    page.items.map((m) => m.date),
    [stored?.date],
  );
  assert.is(page.total, 1);
});

test("a crash between the entry and the message: the entry alone is never shown, and once old it is removed", async () => {
  const userId = randomUUID();
  const kept = await f.store.messages.create(newMessage(userId, { date: minute(5) }));
  const index = mailIndexOf(userId);
  // The entry of a message that was never written: in flight (young), then a leftover (old).
  await index.insert([[minute(9), randomUUID(), Date.now()]]);
  let page = await f.store.messages.list(userId);
  assert.equal(
    page.items.map((m) => m.message_id),
    [kept.message_id],
  );
  const leftover = randomUUID();
  await index.insert([[minute(8), leftover, Date.now() - 2 * ENTRY_GRACE_MS]]);
  page = await f.store.messages.list(userId);
  assert.equal(
    page.items.map((m) => m.message_id),
    [kept.message_id],
  );
  const remaining: string[] = [];
  for await (const entry of mailIndexOf(userId).entriesAfter(null)) remaining.push(entry[1]);
  assert.not.ok(remaining.includes(leftover), "the old leftover was removed by the reader");
  assert.is(remaining.length, 2, "the young one stays: its write may still come");
});

test("a crash between a move's two halves: the message is listed once, at the place its document says", async () => {
  const userId = randomUUID();
  const message = await f.store.messages.create(newMessage(userId, { date: minute(5) }));
  const other = await f.store.messages.create(newMessage(userId, { date: minute(3) }));
  // The document moved to minute 1 and its new entry was put, but the old entry (minute 5) was not taken away.
  await mailIndexOf(userId).insert([[minute(1), message.message_id, Date.now()]]);
  const docs = await KvDocuments.open<Message>(f.nc, "caliopen_messages");
  await docs.put(`${userId}.${message.message_id}`, { ...message, date: minute(1) });
  const page = await f.store.messages.list(userId);
  assert.equal(
    page.items.map((m) => m.message_id),
    [other.message_id, message.message_id],
  );
  // Or the new entry was put and the document not written: still once, at minute 1 (the document's).
  await mailIndexOf(userId).insert([[minute(7), message.message_id, Date.now()]]);
  assert.equal(
    (await f.store.messages.list(userId)).items.map((m) => m.message_id),
    [other.message_id, message.message_id],
  );
});

test("a failed write leaves no entry: the total stays right", async () => {
  const userId = randomUUID();
  const message = await f.store.messages.create(newMessage(userId, { date: minute(1) }));
  await f.store.messages.create(message).then(
    () => assert.unreachable("a second create of one id fails"),
    () => undefined,
  );
  await f.store.messages.create({ ...message, date: minute(2) }).catch(() => undefined);
  const page = await f.store.messages.list(userId);
  assert.is(page.total, 1);
  assert.equal(
    page.items.map((m) => m.message_id),
    [message.message_id],
  );
  assert.equal(await f.store.messages.update(userId, message.message_id, () => null), message, "no change: the message as it is");
});

test("a writer killed between an entry and its count: paging by offset up to the total still reaches every message; a whole read sets the count right", async () => {
  const userId = randomUUID();
  const messages = Array.from({ length: 30 }, (_, i) => newMessage(userId, { date: minute(i) }));
  await createAll(messages, 4);
  // What kills between the two writes leave (18 of them here): the entries, not their counting.
  const countKey = `m.${userToken(userId)}.mail.count`;
  await listingDocs.put(countKey, { kind: "count", n: 12 });
  const seen: string[] = [];
  for (let offset = 0; ; offset += 10) {
    const page = await f.store.messages.list(userId, { offset, limit: 10 });
    seen.push(...page.items.map((m) => m.message_id));
    if (offset + 10 >= page.total) break;
  }
  assert.equal(seen, newest(messages), "every message, in order, once");
  const whole = await f.store.messages.list(userId, { limit: 100 });
  assert.is(whole.total, 30);
  const healed = await listingDocs.get(countKey);
  assert.equal(healed?.value, { kind: "count", n: 30 });
});

test("messages, contacts and identities stored before the indexes are listed (indexed at the first listing)", async () => {
  const userId = randomUUID();
  const docs = await KvDocuments.open<Message>(f.nc, "caliopen_messages");
  const legacy = Array.from({ length: 30 }, (_, i) => newMessage(userId, { date: minute(i), is_draft: i % 3 === 0 }));
  await Promise.all(legacy.map((message) => docs.put(`${userId}.${message.message_id}`, message)));
  const fresh = await f.store.messages.create(newMessage(userId, { date: minute(100) }));
  const everything = [...legacy, fresh];
  assert.equal((await walk(userId, 7)).ids, newest(everything));
  assert.is((await f.store.messages.list(userId)).total, everything.length);
  assert.is((await f.store.messages.list(userId, { is_draft: true })).total, 10);
  // Another process (nothing remembered) sees the same.
  assert.equal(
    (await (await f.openAnother()).messages.list(userId, { limit: 500 })).items.map((m) => m.message_id),
    newest(everything),
  );

  const contacts = await KvDocuments.open(f.nc, "caliopen_contacts");
  const old = [newContact(userId, ["b@example.com"], { title: "Bob" }), newContact(userId, ["a@example.com"], { title: "alice" })];
  await Promise.all(old.map((contact) => contacts.put(`${userId}.${contact.contact_id}`, contact)));
  const carol = await f.store.contacts.create(newContact(userId, ["c@example.com"], { title: "Carol" }));
  const listed = await f.store.contacts.list(userId);
  assert.equal(
    listed.items.map((c) => c.title),
    ["alice", "Bob", "Carol"],
  );
  assert.is(listed.total, 3);
  assert.is((await f.store.contacts.list(userId)).items.at(-1)?.contact_id, carol.contact_id);
});

test("contacts page by cursor in title order; a renamed contact moves", async () => {
  const userId = randomUUID();
  // The longest title a contact can have, in four-byte characters, still makes a cursor that is taken back.
  const titles = Array.from({ length: 40 }, (_, i) => `Contact ${String(i).padStart(2, "0")} ${i === 20 ? "𝄞".repeat(195) : ""}`.trim());
  const made = await Promise.all(titles.map((title) => f.store.contacts.create(newContact(userId, [`${title.replace(" ", "")}@example.com`], { title }))));
  const seen: string[] = [];
  let after: string | undefined;
  do {
    const page = await f.store.contacts.list(userId, { limit: 9, ...(after !== undefined && { after }) });
    seen.push(...page.items.map((c) => c.title));
    after = page.next ?? undefined;
  } while (after !== undefined);
  assert.equal(seen, titles);
  const renamed = made[0];
  assert.ok(renamed);
  await f.store.contacts.update(userId, renamed.contact_id, (current) => ({ ...current, title: "Zed" }));
  const last = await f.store.contacts.list(userId, { offset: 39 });
  assert.equal(
    last.items.map((c) => c.title),
    ["Zed"],
  );
  assert.is(last.total, 40);
});

test("a cursor that no page made is refused as such", async () => {
  const userId = randomUUID();
  await f.store.messages.create(newMessage(userId));
  const forged = [
    "not a cursor!",
    Buffer.from("{}").toString("base64url"),
    Buffer.from(JSON.stringify(["a", 1])).toString("base64url"),
    Buffer.from(JSON.stringify(["a", "b", "c"])).toString("base64url"),
    Buffer.from(JSON.stringify(["x".repeat(1_100), "b"])).toString("base64url"),
    "A".repeat(9_000),
    "%%%",
  ];
  for (const after of forged) {
    await f.store.messages.list(userId, { after }).then(
      () => assert.unreachable(`${after.slice(0, 20)} taken as a cursor`),
      (err: unknown) => assert.instance(err, BadCursor),
    );
  }
  // A well-formed cursor to anywhere is just a place: past the end, an empty page.
  const past = Buffer.from(JSON.stringify(["0000", "0"])).toString("base64url");
  const page = await f.store.messages.list(userId, { after: past });
  assert.equal(page.items, []);
  assert.is(page.next, null);
});

test("the RCPT lookup reads one holders entry, kept on create and delete; an unknown address leaves nothing behind", async () => {
  const address = `shared-${randomUUID().slice(0, 8)}@example.com`;
  const first = await f.store.identities.create({ user_id: randomUUID(), type: "local", protocol: "email", identifier: address });
  const second = await f.store.identities.create({ user_id: randomUUID(), type: "local", protocol: "email", identifier: address.toUpperCase() });
  assert.equal(
    (await f.store.identities.byIdentifier("email", ` ${address} `)).map((i) => i.identity_id).sort(),
    [first.identity_id, second.identity_id].sort(),
  );
  await f.store.identities.markDeleted(second.user_id, second.identity_id);
  assert.equal(
    (await f.store.identities.byIdentifier("email", address)).map((i) => i.identity_id),
    [first.identity_id],
  );

  assert.equal(await f.store.identities.byIdentifier("email", "nobody-here@example.com"), []);
  const lookups = await new Kvm(f.nc).open("caliopen_lookups");
  const holders: string[] = [];
  for await (const key of await lookups.keys("holders.>")) holders.push(key);
  assert.is(holders.length, 1, "one entry for the one identifier held; none for an address nobody holds");
});

test("identities stored by the earlier version (no holders entry) are found by the RCPT lookup once the deployment's holders are built", async () => {
  // A deployment of its own (namespaced buckets), whose identities the earlier version wrote.
  const subjects = new Subjects(`legacy${randomUUID().slice(0, 8)}`);
  const identities = await KvDocuments.open<StoredIdentity>(f.nc, subjects.resource("caliopen_identities"));
  const address = "old-timer@example.com";
  const now = new Date().toISOString();
  const written = [randomUUID(), randomUUID()].map((userId, i) => ({
    schema: 1,
    user_id: userId,
    identity_id: randomUUID(),
    type: "local" as const,
    protocol: "email" as const,
    identifier: address,
    display_name: "",
    status: i === 0 ? ("active" as const) : ("deleted" as const),
    infos: {},
    has_credentials: false,
    sealed_credentials: null,
    date_insert: now,
    date_update: now,
  }));
  for (const identity of written) await identities.put(`${identity.user_id}.${identity.identity_id}`, identity);
  const store = await openStore({ nc: f.nc, subjects, secrets: f.secrets });
  assert.equal(
    (await store.identities.byIdentifier("email", address)).map((i) => i.identity_id),
    [written[0]?.identity_id],
  );
  const added = await store.identities.create({ user_id: randomUUID(), type: "local", protocol: "email", identifier: address });
  assert.equal((await store.identities.byIdentifier("email", address)).map((i) => i.identity_id).sort(), [written[0]?.identity_id, added.identity_id].sort());
});

test("identities list from the user's index, oldest first, with those stored before it", async () => {
  const userId = randomUUID();
  const made = [];
  for (let i = 0; i < 5; i++)
    made.push(await f.store.identities.create({ user_id: userId, type: "local", protocol: "email", identifier: `me${i}-${userId}@example.com` }));
  assert.equal(
    (await f.store.identities.list(userId)).map((i) => i.identity_id),
    made.map((i) => i.identity_id),
  );
  const identities = await new Kvm(f.nc).open("caliopen_identities");
  const legacyId = randomUUID();
  const otherUser = randomUUID();
  await identities.put(
    `${otherUser}.${legacyId}`,
    JSON.stringify({ ...made[0], user_id: otherUser, identity_id: legacyId, identifier: "old@example.com", sealed_credentials: null }),
  );
  assert.equal(
    (await f.store.identities.list(otherUser)).map((i) => i.identity_id),
    [legacyId],
  );
});

test.run();
