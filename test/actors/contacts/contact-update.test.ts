// ContactAction contact_update: the derived data of a contact, computed from the user's stored messages
// (all pages of them) and the contact's keys (made by GnuPG, read as the API stores them), saved on
// the contact.

import { randomUUID } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { securityBits, updateContactDerived } from "../../../actors/contacts/contact-update.ts";
import { parsePublicKey } from "../../../actors/keys/parse-public-key.ts";
import type { Participant, PublicKey } from "../../../actors/store/model.ts";
import { Gpg } from "../../helpers/gpg.ts";
import { newContact, newMessage, newPublicKey, type StoreFixture, startStore } from "../store/fixture.ts";

const test = suite<{ f: StoreFixture; gpg: Gpg; rsa: string; ed: string }>("ContactAction contact_update");

test.before(async (ctx) => {
  ctx.f = await startStore();
  ctx.gpg = await Gpg.open();
  ctx.rsa = await ctx.gpg.generate("Ann <ann@example.com>", { algorithm: "rsa2048" });
  ctx.ed = await ctx.gpg.generate("Ann at work <ann@work.example>");
});

test.after(async (ctx) => {
  await ctx.gpg?.close();
  await ctx.f?.nats.stop();
});

// The real present: the keys gpg makes expire a year from now.
const NOW = new Date();
const now = () => NOW;

const who = (type: Participant["type"], address: string, protocol = "email"): Participant => ({ type, address, label: "", protocol, contact_ids: [] });

async function keyOf(gpg: Gpg, userId: string, contactId: string, fingerprint: string): Promise<PublicKey> {
  const parsed = await parsePublicKey(await gpg.exportPublic(fingerprint));
  return newPublicKey(userId, contactId, {
    key_id: parsed.key_id,
    fingerprint: parsed.fingerprint,
    armored: parsed.armored,
    expire_date: parsed.expire_date,
    size: parsed.size,
    algorithm: parsed.algorithm,
    emails: parsed.emails,
  });
}

test("derived data of a contact with messages and keys", async ({ f, gpg, rsa, ed }) => {
  const userId = randomUUID();
  const me = "me@platform.example";
  const contact = await f.store.contacts.create(
    newContact(userId, ["Ann@Example.com", "ann@work.example", "ann@old.example"], { identities: [{ type: "twitter", name: "@Ann" }] }),
  );
  const armor = "-----BEGIN PGP MESSAGE-----\n\nhQEMA...\n-----END PGP MESSAGE-----\n";
  const messages = [
    // Three from ann@example.com (address in any case), one of them PGP/MIME as inbound processing stores it.
    newMessage(userId, { participants: [who("From", "ann@example.com"), who("To", me)] }),
    newMessage(userId, { participants: [who("From", "ANN@example.com"), who("To", me)] }),
    newMessage(userId, {
      participants: [who("From", "ann@example.com"), who("To", me)],
      body_plain: armor,
      attachments: [{ content_type: "application/octet-stream", file_name: "encrypted.asc", size: 300, is_inline: false }],
    }),
    // One to both of her addresses: counted for each, exchanged once.
    newMessage(userId, { participants: [who("From", me), who("To", "ann@work.example"), who("Cc", "ann@example.com")], is_received: false }),
    // A DM with her screen name.
    newMessage(userId, { participants: [who("From", "@ann", "twitter"), who("To", "@me", "twitter")], protocol: "twitter" }),
    // Not counted: a draft to her, a mail between others, and another user's mail from her.
    newMessage(userId, { participants: [who("From", me), who("To", "ann@example.com")], is_draft: true }),
    newMessage(userId, { participants: [who("From", "bob@example.com"), who("To", me)] }),
    newMessage(randomUUID(), { participants: [who("From", "ann@example.com"), who("To", "x@example.com")] }),
  ];
  for (const message of messages) await f.store.messages.create(message);
  await f.store.keys.add(await keyOf(gpg, userId, contact.contact_id, rsa));
  await f.store.keys.add(await keyOf(gpg, userId, contact.contact_id, ed));
  // A bigger key, but expired: it does not count.
  await f.store.keys.add(newPublicKey(userId, contact.contact_id, { size: 4096, algorithm: "rsaEncryptSign", expire_date: "2021-01-01T00:00:00.000Z" }));
  // Another contact's key does not count either.
  await f.store.keys.add(newPublicKey(userId, randomUUID(), { size: 8192, algorithm: "rsaEncryptSign" }));

  const derived = await updateContactDerived(f.store, { contact_id: contact.contact_id, user_id: userId }, { now });
  assert.equal(derived.messages_by_address, { "ann@example.com": 4, "ann@work.example": 1, "ann@old.example": 0, "@ann": 1 });
  assert.is(derived.best_key_size, 2048, "the RSA key: larger than the ed25519 one, and the 4096-bit one has expired");
  // Key: ed25519 is 128 bits strong → 50. Encrypted: 1 of the 5 messages exchanged → 40 × 1/5 = 8. History: < 10 messages → 0.
  assert.is(derived.privacy_score, 58);
  assert.is(derived.computed_at, NOW.toISOString());

  const saved = await f.store.contacts.get(userId, contact.contact_id);
  assert.equal(saved?.derived, derived, "saved on the contact");
  assert.equal({ ...saved, derived: null, date_update: contact.date_update }, { ...contact, derived: null }, "nothing else changed");
});

test("every page of the user's messages is counted", async ({ f }) => {
  const userId = randomUUID();
  const contact = await f.store.contacts.create(newContact(userId, ["bulk@example.com"]));
  const total = 520; // more than one page of 500
  const base = Date.parse("2029-01-01T00:00:00.000Z");
  for (let i = 0; i < total; i += 40) {
    await Promise.all(
      Array.from({ length: Math.min(40, total - i) }, (_, j) =>
        f.store.messages.create(
          newMessage(userId, {
            date: new Date(base + (i + j) * 1000).toISOString(),
            participants: [who("From", "bulk@example.com"), who("To", "me@platform.example")],
          }),
        ),
      ),
    );
  }
  const derived = await updateContactDerived(f.store, { contact_id: contact.contact_id, user_id: userId }, { now });
  assert.equal(derived.messages_by_address, { "bulk@example.com": total });
  assert.is(derived.best_key_size, 0);
  assert.is(derived.privacy_score, 10, "no key, nothing encrypted, but at least 10 messages exchanged");
});

test("a contact with no messages and no key scores 0; recomputing replaces the previous result", async ({ f }) => {
  const userId = randomUUID();
  const contact = await f.store.contacts.create(newContact(userId, ["quiet@example.com"]));
  const first = await updateContactDerived(f.store, { contact_id: contact.contact_id, user_id: userId }, { now });
  assert.equal(first, { messages_by_address: { "quiet@example.com": 0 }, best_key_size: 0, privacy_score: 0, computed_at: NOW.toISOString() });

  await f.store.messages.create(
    newMessage(userId, { participants: [who("From", "quiet@example.com")], body_plain: "  -----BEGIN PGP MESSAGE-----\n...\n-----END PGP MESSAGE-----" }),
  );
  await f.store.keys.add(
    newPublicKey(userId, contact.contact_id, {
      size: 2048,
      algorithm: "rsaEncryptSign",
      expire_date: new Date(NOW.getTime() + 365 * 86_400_000).toISOString(),
    }),
  );
  const later = new Date(NOW.getTime() + 86_400_000);
  const second = await updateContactDerived(f.store, { contact_id: contact.contact_id, user_id: userId }, { now: () => later });
  // RSA 2048 is 112 bits strong → 50 × 112/128 = 43.75; every message exchanged was encrypted → 40.
  assert.equal(second, { messages_by_address: { "quiet@example.com": 1 }, best_key_size: 2048, privacy_score: 84, computed_at: later.toISOString() });
  assert.equal((await f.store.contacts.get(userId, contact.contact_id))?.derived, second);
});

test("mail sent encrypted counts as encrypted, though its stored bodies are the user's clear text", async ({ f }) => {
  const userId = randomUUID();
  const contact = await f.store.contacts.create(newContact(userId, ["friend@example.com"]));
  const sent = { participants: [who("To", "friend@example.com")], is_received: false, is_unread: false, body_plain: "hello in clear" };
  await f.store.messages.create(newMessage(userId, { ...sent, is_encrypted: true }));
  await f.store.messages.create(newMessage(userId, sent));
  const derived = await updateContactDerived(f.store, { contact_id: contact.contact_id, user_id: userId }, { now });
  // No key; one of the two messages exchanged encrypted → 40 × 1/2.
  assert.is(derived.privacy_score, 20);
});

test("key strength on one scale for RSA and ECC", () => {
  assert.is(securityBits({ algorithm: "eddsaLegacy ed25519Legacy", size: 256 }), 128);
  assert.is(securityBits({ algorithm: "ecdsa nistP384", size: 384 }), 192);
  assert.is(securityBits({ algorithm: "rsaEncryptSign", size: 2048 }), 112);
  assert.is(securityBits({ algorithm: "rsaEncryptSign", size: 3072 }), 128);
  assert.is(securityBits({ algorithm: "rsaEncryptSign", size: 1024 }), 80);
  assert.ok(securityBits({ algorithm: "rsaEncryptSign", size: 4096 }) > 128);
});

test("an unknown contact is an error naming it, and nothing is written", async ({ f }) => {
  const userId = randomUUID();
  const contactId = randomUUID();
  try {
    await updateContactDerived(f.store, { contact_id: contactId, user_id: userId });
    assert.unreachable("should have thrown");
  } catch (err) {
    assert.match((err as Error).message, new RegExp(`user ${userId} has no contact ${contactId}`));
  }
  assert.is(await f.store.contacts.get(userId, contactId), null);
});

test.run();
