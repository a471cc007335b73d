// Exactly once, write by write: an import (processInboundEmail) stopped between two of its writes, then
// tried again — with the same raw (a retried order) or with another raw of the same mail (the IMAP
// bridge fetching it again after a takeover) — and imports of one mail racing. Each test leaves the store
// as a process killed at that point would, against a real nats-server, and checks that the mail ends
// as one message, its raws all marked delivered.

import { randomUUID } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { type FetchedFrom, storeFetched, withFetchedHeaders } from "../../../actors/imap/fetched-raw.ts";
import { processInboundEmail } from "../../../actors/mail/inbound-email.ts";
import { mailContentHash } from "../../../actors/mail/mail-content-hash.ts";
import type { Identity, Message, RawMessage, User } from "../../../actors/store/model.ts";
import type { Store } from "../../../actors/store/store.ts";
import type { Reply } from "../../../runtime/reply.ts";
import { type StoreFixture, startStore } from "../store/fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});

test.after(async () => {
  await f.nats.stop();
});

interface Account {
  user: User;
  imap: Identity;
}

async function newAccount(): Promise<Account> {
  const { user } = await createUser(f.store, { name: `carol-${randomUUID()}`, email: "carol@caliopen.local" });
  const imap = await f.store.identities.create({
    user_id: user.user_id,
    type: "remote",
    protocol: "imap",
    identifier: "carol@provider.test",
    infos: { inserver: "imap.provider.test:993" },
  });
  return { user, imap };
}

function mail(messageId: string | null, text: string): Buffer {
  return Buffer.from(
    [`From: dave@remote.test`, `To: carol@provider.test`, `Subject: ${text}`, ...(messageId === null ? [] : [`Message-ID: <${messageId}>`]), "", text, ""].join(
      "\r\n",
    ),
  );
}

/** The mail as the IMAP bridge stores it after fetching UID `uid` with these flags (a re-fetch: other headers in front). */
function fetched(bytes: Buffer, account: Account, uid: number, flags: string[] = []): Buffer {
  return withFetchedHeaders(bytes, { account: "carol@provider.test", mailbox: "INBOX", userId: account.user.user_id, uid, flags });
}

async function contentId(bytes: Buffer): Promise<string> {
  return `sha256:${await mailContentHash(
    (async function* () {
      yield bytes;
    })(),
  )}`;
}

async function importRaw(account: Account, raw: RawMessage, store: Store = f.store): Promise<Reply> {
  return processInboundEmail(store, { message_id: raw.raw_msg_id, remote_id: account.imap.identity_id, user_id: account.user.user_id });
}

async function messagesOf(account: Account): Promise<Message[]> {
  return (await f.store.messages.list(account.user.user_id, { limit: 500 })).items;
}

/** A store whose process stops (throws, as kill -9 would, for good) at the first call of `method` on raws or messages. */
function dyingAt(part: "raws" | "messages", method: string): Store {
  const target = f.store[part];
  const dying = new Proxy(target, {
    get: (object, name, receiver) =>
      name === method
        ? async () => {
            throw new Error(`killed before ${part}.${method}`);
          }
        : (Reflect.get(object, name, receiver) as unknown),
  });
  return { ...f.store, [part]: dying };
}

for (const withId of [true, false]) {
  const kind = withId ? "with a Message-ID" : "without a Message-ID (known by its content)";

  test(`${kind}: killed between the claim and the message; the next import, from another raw, completes it under the claimed id`, async () => {
    const account = await newAccount();
    const bytes = mail(withId ? `${randomUUID()}@remote.test` : null, "claimed only");
    const externalId = withId ? (/<([^>]+)>/.exec(bytes.toString())?.[1] ?? "") : await contentId(bytes);
    const first = await f.store.raws.put(account.user.user_id, fetched(bytes, account, 1));
    // The first import got as far as its claim.
    const reply = await importRaw(account, first, dyingAt("messages", "create"));
    assert.is(reply.error, true);
    // Claiming again names the holder: the claim the first import wrote.
    const probe = randomUUID();
    const claimed = await f.store.messages.claimExternalId(account.user.user_id, externalId, probe);
    assert.ok(claimed !== probe, "the claim was written");
    assert.equal(await messagesOf(account), []);
    // The new owner fetches the mail again (other flags, other raw).
    const second = await f.store.raws.put(account.user.user_id, fetched(bytes, account, 1, ["\\Seen"]));
    const next = await importRaw(account, second);
    assert.equal([next.error, next.message, next.message_id], [false, "message imported", claimed]);
    // The first raw, retried too: it finds that message.
    const retried = await importRaw(account, first);
    assert.equal([retried.message, retried.message_id], ["raw message already imported", claimed]);
    const all = await messagesOf(account);
    assert.equal(
      all.map((message) => [message.message_id, message.external_references.message_id]),
      [[claimed, externalId]],
    );
    assert.equal([(await f.store.raws.get(first.raw_msg_id))?.delivered, (await f.store.raws.get(second.raw_msg_id))?.delivered], [true, true]);
  });

  test(`${kind}: killed between the message and its raw marked delivered; a retry of the raw, or another raw of the mail, finds the message and marks both raws`, async () => {
    const account = await newAccount();
    const bytes = mail(withId ? `${randomUUID()}@remote.test` : null, "not marked");
    const first = await f.store.raws.put(account.user.user_id, fetched(bytes, account, 7));
    const reply = await importRaw(account, first, dyingAt("raws", "markDelivered"));
    assert.is(reply.error, true);
    const [stored] = await messagesOf(account);
    assert.ok(stored, "the message was written");
    assert.is(stored.raw_msg_id, first.raw_msg_id);
    assert.is((await f.store.raws.get(first.raw_msg_id))?.delivered, false);
    // Fetched again after a takeover: another raw.
    const second = await f.store.raws.put(account.user.user_id, fetched(bytes, account, 7, ["\\Flagged"]));
    const next = await importRaw(account, second);
    assert.equal([next.message, next.message_id], ["raw message already imported", stored.message_id]);
    assert.equal(
      [(await f.store.raws.get(first.raw_msg_id))?.delivered, (await f.store.raws.get(second.raw_msg_id))?.delivered],
      [true, true],
      "the message's own raw is marked too",
    );
    // And the first raw's order retried: the same message.
    const retried = await importRaw(account, first);
    assert.equal([retried.message, retried.message_id], ["raw message already imported", stored.message_id]);
    assert.is((await messagesOf(account)).length, 1);
  });

  test(`${kind}: one raw imported 5 times at once (5 nodes): one message, every reply names it`, async () => {
    const account = await newAccount();
    const raw = await f.store.raws.put(account.user.user_id, fetched(mail(withId ? `${randomUUID()}@remote.test` : null, "same raw"), account, 3));
    const stores = [f.store, ...(await Promise.all([1, 2, 3, 4].map(() => f.openAnother())))];
    const replies = await Promise.all(stores.map((store) => importRaw(account, raw, store)));
    const all = await messagesOf(account);
    assert.is(all.length, 1);
    assert.equal(
      replies.map((reply) => [reply.error, reply.message_id]),
      stores.map(() => [false, all[0]?.message_id]),
    );
    assert.equal(replies.filter((reply) => reply.message === "message imported").length, 1);
    assert.is((await f.store.raws.get(raw.raw_msg_id))?.delivered, true);
  });

  test(`${kind}: the same mail as 5 raws (fetched again and again, other flags) imported at once: one message, no conflicting copy`, async () => {
    const account = await newAccount();
    const bytes = mail(withId ? `${randomUUID()}@remote.test` : null, "fetched 5 times");
    const raws = await Promise.all(
      [[], ["\\Seen"], ["\\Flagged"], ["\\Seen", "\\Answered"], []].map((flags, n) =>
        f.store.raws.put(account.user.user_id, fetched(bytes, account, 10 + n, flags)),
      ),
    );
    const stores = [f.store, ...(await Promise.all([1, 2, 3, 4].map(() => f.openAnother())))];
    const replies = await Promise.all(stores.map((store, n) => importRaw(account, raws[n]!, store)));
    const all = await messagesOf(account);
    assert.is(all.length, 1);
    assert.equal(all[0]?.message_id_conflicts ?? [], [], "copies of one mail are the same content");
    assert.equal(
      replies.map((reply) => [reply.error, reply.message_id]),
      stores.map(() => [false, all[0]?.message_id]),
    );
    for (const raw of raws) assert.is((await f.store.raws.get(raw.raw_msg_id))?.delivered, true);
  });
}

test("killed between the message and its raw marked delivered, then another mail under its Message-ID: kept as a conflicting copy, both raws marked", async () => {
  const account = await newAccount();
  const id = `${randomUUID()}@remote.test`;
  const first = await f.store.raws.put(account.user.user_id, fetched(mail(id, "genuine"), account, 1));
  assert.is((await importRaw(account, first, dyingAt("raws", "markDelivered"))).error, true);
  const other = await f.store.raws.put(account.user.user_id, fetched(mail(id, "another"), account, 2));
  const reply = await importRaw(account, other);
  assert.is(reply.error, false);
  const all = await messagesOf(account);
  assert.is(all.length, 1);
  assert.equal(
    all[0]?.message_id_conflicts?.map((copy) => copy.raw_id),
    [other.raw_msg_id],
  );
  assert.equal([(await f.store.raws.get(first.raw_msg_id))?.delivered, (await f.store.raws.get(other.raw_msg_id))?.delivered], [true, true]);
});

test("the IMAP bridge killed after storing a raw, before its import: fetched again, it is that raw, imported once; a streamed one is another raw, one message", async () => {
  const account = await newAccount();
  const from = (uid: number, flags: string[]): FetchedFrom => ({ account: "carol@provider.test", mailbox: "INBOX", userId: account.user.user_id, uid, flags });
  const bytes = mail(`${randomUUID()}@remote.test`, "stored, never imported");
  const first = await storeFetched(f.store, account.imap.identity_id, bytes, from(5, []));
  const again = await storeFetched(f.store, account.imap.identity_id, bytes, from(5, ["\\Seen"]));
  assert.is(again.raw_msg_id, first.raw_msg_id, "the same raw, whatever the flags now");
  assert.is(again.delivered, false);
  const imported = await importRaw(account, again);
  assert.is(imported.message, "message imported");
  // Another account of the user fetching the same bytes has its own raw.
  const other = await f.store.identities.create({
    user_id: account.user.user_id,
    type: "remote",
    protocol: "imap",
    identifier: "carol@other.test",
    infos: { inserver: "imap.other.test:993" },
  });
  assert.is.not((await storeFetched(f.store, other.identity_id, bytes, from(5, []))).raw_msg_id, first.raw_msg_id);
  // A large message streams into a raw of its own at each fetch: its import finds the message.
  const streamed = await storeFetched(
    f.store,
    account.imap.identity_id,
    (async function* () {
      yield bytes;
    })(),
    from(5, []),
  );
  assert.is.not(streamed.raw_msg_id, first.raw_msg_id);
  const reply = await importRaw(account, streamed);
  assert.equal([reply.message, reply.message_id], ["raw message already imported", imported.message_id]);
  assert.is((await messagesOf(account)).length, 1);
});

/** The store as seen through a replica that lags: the first `misses` reads of lookups find nothing. */
function laggingLookups(misses: number): Store {
  let left = misses;
  const messages = new Proxy(f.store.messages, {
    get: (object, name, receiver) => {
      const value = Reflect.get(object, name, receiver) as unknown;
      if (name !== "lookups" || typeof value !== "object" || value === null) return value;
      return new Proxy(value, {
        get: (lookups, method, inner) =>
          method === "get"
            ? async (key: string) => (left-- > 0 ? null : (Reflect.get(lookups, method, inner) as (key: string) => Promise<string | null>).call(lookups, key))
            : (Reflect.get(lookups, method, inner) as unknown),
      });
    },
  });
  return { ...f.store, messages };
}

test("a claim that a lagging replica does not show yet is waited for, never taken for ours: one message", async () => {
  const account = await newAccount();
  const id = `${randomUUID()}@remote.test`;
  const first = await importRaw(account, await f.store.raws.put(account.user.user_id, fetched(mail(id, "lagging"), account, 1)));
  assert.is(first.message, "message imported");
  assert.is(await laggingLookups(3).messages.claimExternalId(account.user.user_id, id, randomUUID()), first.message_id);
  // The whole import through that replica: its lookup by Message-ID and its claim's read miss at first.
  const again = await importRaw(account, await f.store.raws.put(account.user.user_id, fetched(mail(id, "lagging"), account, 1, ["\\Seen"])), laggingLookups(3));
  assert.equal([again.error, again.message_id], [false, first.message_id]);
  assert.is((await messagesOf(account)).length, 1);
});

test("without a Message-ID, the external id is the content's hash: the same for every fetch of the mail, another for another mail", async () => {
  const account = await newAccount();
  const bytes = mail(null, "stable");
  const ids = new Set<string>();
  for (const [uid, flags] of [
    [1, []],
    [2, ["\\Seen"]],
    [99, ["\\Seen", "$Label1"]],
  ] as const) {
    const raw = await f.store.raws.put(account.user.user_id, fetched(bytes, account, uid, [...flags]));
    const reply = await importRaw(account, raw);
    assert.is(reply.error, false);
    ids.add(String(reply.message_id));
  }
  assert.is(ids.size, 1);
  const [message] = await messagesOf(account);
  assert.is(message?.external_references.message_id, await contentId(bytes));
  const other = await importRaw(account, await f.store.raws.put(account.user.user_id, fetched(mail(null, "stable."), account, 4)));
  assert.is(other.message, "message imported");
  assert.is((await messagesOf(account)).length, 2);
});

test.run();
