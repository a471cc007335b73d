// What the inbound actor remembers between the imports of a busy period (inbound-cache.ts), with the
// processors against a real store: a reply finds its parent and a second mail its user and identity
// without reading them again; what can change elsewhere is read again once older than its time to live;
// and a refusal is never served from memory (an identity deleted, then restored, imports again at once).
import { randomUUID } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { importInboundEmail } from "../../../actors/mail/inbound-email.ts";
import { InboundCache } from "../../../actors/messages/inbound-cache.ts";
import type { Identity, User } from "../../../actors/store/model.ts";
import type { Reply } from "../../../runtime/reply.ts";
import { newContact, type StoreFixture, startStore } from "../store/fixture.ts";

const test = suite<{ f: StoreFixture }>("inbound cache");
const TTL_MS = 10_000;

test.before(async (ctx) => {
  ctx.f = await startStore();
});
test.after(async (ctx) => {
  await ctx.f.nats.stop();
});

/** A cache on a clock the test moves. */
function cacheAt(): { cache: InboundCache; advance(ms: number): void } {
  let at = 1_000_000;
  return { cache: new InboundCache({ ttlMs: TTL_MS, maxIdentities: 4, maxContacts: 4, maxMessageIds: 2 }, () => at), advance: (ms) => (at += ms) };
}

async function newAccount(f: StoreFixture): Promise<{ user: User; local: Identity }> {
  const { user, identity } = await createUser(f.store, { name: `c-${randomUUID().slice(0, 8)}`, email: "carol@platform.test" });
  assert.ok(identity);
  return { user, local: identity };
}

async function importWith(f: StoreFixture, cache: InboundCache, user: User, identity: Identity, lines: string[]): Promise<Reply> {
  const raw = await f.store.raws.put(null, Buffer.from([...lines, "", "Hi.", ""].join("\r\n")));
  return importInboundEmail(f.store, { message_id: raw.raw_msg_id, remote_id: identity.identity_id, user_id: user.user_id }, { cache });
}

test("the user, the identity and a parent come from memory within a busy period", async ({ f }) => {
  const { user, local } = await newAccount(f);
  const { cache } = cacheAt();
  const first = await importWith(f, cache, user, local, ["From: dan@elsewhere.test", "To: carol@platform.test", "Message-ID: <a-1@elsewhere.test>"]);
  assert.is(first.message, "message imported");
  let reads = 0;
  const counted = () => {
    reads++;
    return Promise.resolve(null);
  };
  assert.equal(await cache.user(user.user_id, counted), { user_id: user.user_id, contact_id: user.contact_id });
  assert.is((await cache.identity(local.identity_id, () => true, counted))?.identity_id, local.identity_id);
  assert.equal(cache.messageRef("a-1@elsewhere.test"), { message_id: first.message_id, discussion_id: first.discussion_id });
  assert.is(reads, 0, "nothing read again");
  const reply = await importWith(f, cache, user, local, [
    "From: dan@elsewhere.test",
    "To: carol@platform.test",
    "Message-ID: <a-2@elsewhere.test>",
    "In-Reply-To: <a-1@elsewhere.test>",
  ]);
  assert.is((await f.store.messages.get(user.user_id, String(reply.message_id)))?.parent_id, first.message_id);
});

test("a contact created meanwhile is linked once its address's lookup is older than the time to live", async ({ f }) => {
  const { user, local } = await newAccount(f);
  const { cache, advance } = cacheAt();
  const before = await importWith(f, cache, user, local, ["From: erin@elsewhere.test", "To: carol@platform.test", "Message-ID: <b-1@elsewhere.test>"]);
  const from = (reply: Reply) =>
    f.store.messages.get(user.user_id, String(reply.message_id)).then((m) => m?.participants.find((p) => p.type === "From")?.contact_ids);
  assert.equal(await from(before), []);
  const erin = await f.store.contacts.create(newContact(user.user_id, ["erin@elsewhere.test"]));
  advance(TTL_MS + 1);
  const after = await importWith(f, cache, user, local, ["From: erin@elsewhere.test", "To: carol@platform.test", "Message-ID: <b-2@elsewhere.test>"]);
  assert.equal(await from(after), [erin.contact_id]);
});

test("an identity deleted, then restored: refused on a fresh read, then imported again at once", async ({ f }) => {
  const { user } = await newAccount(f);
  const { cache } = cacheAt();
  const remote = await f.store.identities.create({
    user_id: user.user_id,
    type: "remote",
    protocol: "imap",
    identifier: "carol@provider.test",
    infos: { inserver: "imap.provider.test:993" },
  });
  const lines = (id: string) => ["From: dan@elsewhere.test", "To: carol@provider.test", `Message-ID: <${id}@elsewhere.test>`];
  assert.is((await importWith(f, cache, user, remote, lines("c-1"))).message, "message imported");
  await f.store.identities.update(user.user_id, remote.identity_id, () => ({ fields: { status: "deleted" } }));
  // Within the time to live the cache still takes it for active: the window is at most TTL_MS.
  assert.is(
    (
      await cache.identity(
        remote.identity_id,
        (known) => known.status !== "deleted",
        () => f.store.identities.get(user.user_id, remote.identity_id),
      )
    )?.status,
    "active",
  );
  const { cache: fresh } = cacheAt();
  assert.equal(await importWith(f, fresh, user, remote, lines("c-2")), {
    error: true,
    message: `identity ${remote.identity_id} of user ${user.user_id} is deleted`,
  });
  await f.store.identities.update(user.user_id, remote.identity_id, () => ({ fields: { status: "active" } }));
  assert.is((await importWith(f, fresh, user, remote, lines("c-3"))).message, "message imported", "the deletion was not served from memory");
});

test("every map is bounded: the oldest entries go first", async () => {
  const { cache } = cacheAt();
  cache.rememberMessage("m1", { message_id: "1", discussion_id: "d" });
  cache.rememberMessage("m2", { message_id: "2", discussion_id: "d" });
  assert.ok(cache.messageRef("m1"), "used again: kept longer");
  cache.rememberMessage("m3", { message_id: "3", discussion_id: "d" });
  assert.is(cache.messageRef("m2"), null);
  assert.ok(cache.messageRef("m1"));
  let reads = 0;
  const read = () => {
    reads += 1;
    return Promise.resolve([]);
  };
  for (const address of ["a", "b", "c", "d", "e"]) await cache.contactIds(address, read);
  await cache.contactIds("e", read);
  assert.is(reads, 5);
  await cache.contactIds("a", read);
  assert.is(reads, 6, "the oldest address was dropped");
});

test.run();
