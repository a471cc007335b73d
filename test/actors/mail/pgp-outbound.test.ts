// PGP/MIME on the way out, against real peers: keys made by GnuPG, drafts sent by `deliver` through
// Postfix's smtp-sink, and what arrived there decrypted and verified by GnuPG with the recipients' own
// keyrings. A draft whose recipients all have usable keys goes as RFC 3156 multipart/encrypted (signed
// inside with the user's stored key), one with a recipient lacking a key goes in clear (signed as
// multipart/signed when the user has a key), `require_encryption` refuses rather than send in clear, and
// expired or revoked keys are never used.

import { randomBytes, randomUUID } from "node:crypto";
import { Writable } from "node:stream";
import { simpleParser } from "mailparser";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { parsePrivateKey } from "../../../actors/keys/parse-private-key.ts";
import { parsePublicKey } from "../../../actors/keys/parse-public-key.ts";
import { storedPublicKey } from "../../../actors/keys/stored-public-key.ts";
import { draftPrivacy } from "../../../actors/mail/draft-privacy.ts";
import { deliverDraft, type OutboundSmtpDeps } from "../../../actors/mail/outbound-smtp.ts";
import { type DraftFields, newDraft } from "../../../actors/messages/new-draft.ts";
import { parseAllowedDestinations } from "../../../actors/network/allowed-destinations.ts";
import { DestinationPolicy } from "../../../actors/network/destination-policy.ts";
import { type Identity, type Message, SCHEMA_VERSION } from "../../../actors/store/model.ts";
import { createLogger } from "../../../runtime/logger.ts";
import { Gpg } from "../../helpers/gpg.ts";
import { exportSecretKey, gpgDecrypt, gpgVerifyDetached, makeMailKey } from "../../helpers/gpg-mail.ts";
import { type SinkMessage, type SmtpSink, startSmtpSink } from "../../helpers/smtp-sink.ts";
import { newContact, type StoreFixture, startStore } from "../store/fixture.ts";

const HOST = "mail.platform.test";
const ALICE = "alice@platform.test";

let f: StoreFixture;
let sink: SmtpSink;
let logs = "";
/** Alice (the user who sends) and her correspondents, each with a keyring of their own. */
const gpg: Record<"alice" | "bob" | "carol" | "dave" | "erin", Gpg> = {} as never;
const fpr: Record<keyof typeof gpg, string> = {} as never;
let aliceSecret = "";

function deps(): OutboundSmtpDeps {
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  return {
    store: f.store,
    relay: { host: sink.host, port: sink.port, ignoreTLS: true },
    destinations: new DestinationPolicy({ allow: parseAllowedDestinations("") }, () => []),
    host: HOST,
    logger: createLogger({ level: "trace", destination }),
    timeouts: { connectionMs: 2_000, greetingMs: 2_000, socketMs: 5_000 },
  };
}

test.before(async () => {
  [f, sink] = await Promise.all([startStore(), startSmtpSink()]);
  for (const name of ["alice", "bob", "carol", "dave", "erin"] as const) gpg[name] = await Gpg.open();
  fpr.alice = await makeMailKey(gpg.alice, `Alice <${ALICE}>`);
  fpr.bob = await makeMailKey(gpg.bob, "Bob <bob@dest.test>");
  fpr.carol = await makeMailKey(gpg.carol, "Carol <carol@dest.test>");
  // Dave's key expired in 2020; Erin revoked hers.
  fpr.dave = await makeMailKey(gpg.dave, "Dave <dave@dest.test>", { fakedTime: "20200101T000000", expire: "1d" });
  fpr.erin = await makeMailKey(gpg.erin, "Erin <erin@dest.test>");
  await gpg.erin.revoke(fpr.erin);
  aliceSecret = await exportSecretKey(gpg.alice, fpr.alice);
  // Each recipient's keyring knows Alice's public key, to check her signature as a mail client would.
  const alicePublic = await gpg.alice.exportPublic(fpr.alice);
  for (const name of ["bob", "carol", "dave", "erin"] as const) await gpg[name].importKeys(alicePublic);
});

test.after(async () => {
  await Promise.all([f.nats.stop(), sink.stop(), ...Object.values(gpg).map((keyring) => keyring.close())]);
});

// ---- builders ------------------------------------------------------------------------------------

/** A user sending from ALICE, with her private key stored unless told otherwise. */
async function alice(options: { privateKey?: boolean } = {}): Promise<Identity> {
  const { user, identity } = await createUser(f.store, { name: `alice-${randomUUID()}`, email: ALICE, display_name: "Alice" });
  assert.ok(identity);
  if (options.privateKey !== false) await f.store.privateKeys.add(user.user_id, await parsePrivateKey(aliceSecret, undefined));
  return identity;
}

/** A contact of the user holding `address`, with the public key of `keyring` on it. */
async function contactWithKey(userId: string, address: string, keyring?: Gpg, fingerprint?: string): Promise<void> {
  const contact = await f.store.contacts.create(newContact(userId, [address]));
  if (keyring === undefined || fingerprint === undefined) return;
  const parsed = await parsePublicKey(await keyring.exportPublic(fingerprint));
  await f.store.keys.add(storedPublicKey(parsed, { user_id: userId, resource_id: contact.contact_id, label: address, source: "hkp" }));
}

async function draftFrom(identity: Identity, participants: DraftFields["participants"], extra: Partial<Message> = {}): Promise<Message> {
  const draft = newDraft(identity, {
    subject: `Secret plans ${randomUUID()}`,
    body_plain: "the plain body, ünïcødé\n",
    body_html: "<b>the html body</b>",
    participants,
  });
  return f.store.messages.create({ ...draft, ...extra });
}

const order = (draft: Message, identity: Identity) => ({
  order: "deliver" as const,
  message_id: draft.message_id,
  remote_id: identity.identity_id,
  user_id: draft.user_id,
});

async function arrived(subject: string): Promise<SinkMessage> {
  let found: SinkMessage | undefined;
  await sink.waitForMessages(1);
  for (let i = 0; i < 50 && found === undefined; i++) {
    found = (await sink.messages()).find((message) => message.content.includes(`Subject: ${subject}`));
    if (found === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(found, `a message with subject ${subject} reached smtp-sink`);
  return found;
}

/** The bodies of a multipart body, split on its boundary as RFC 2046 says (the CRLF before a delimiter is the delimiter's). */
function partsOf(content: string): { headers: string; parts: string[] } {
  const crlf = content.replace(/\r?\n/g, "\r\n");
  const end = crlf.indexOf("\r\n\r\n");
  const headers = crlf.slice(0, end);
  const boundary = /boundary="([^"]+)"/.exec(headers)?.[1];
  assert.ok(boundary, "the top-level Content-Type has a boundary");
  const body = crlf.slice(end + 2);
  const pieces = body.split(`\r\n--${boundary}`);
  // pieces[0] is the preamble; the last starts with "--" (the close delimiter) and is the epilogue.
  assert.ok(pieces.at(-1)?.startsWith("--"), "the multipart is closed");
  return { headers, parts: pieces.slice(1, -1).map((piece) => piece.slice(piece.indexOf("\r\n") + 2)) };
}

// ---- encrypted ---------------------------------------------------------------------------------------

test("every recipient has a key: RFC 3156 multipart/encrypted that each recipient's gpg decrypts to the body and attachments, signed by the user's key", async () => {
  const identity = await alice();
  const userId = identity.user_id;
  await contactWithKey(userId, "bob@dest.test", gpg.bob, fpr.bob);
  await contactWithKey(userId, "carol@dest.test", gpg.carol, fpr.carol);
  const pdf = randomBytes(40_000);
  const stored = await f.store.raws.put(userId, pdf);
  const draft = await draftFrom(
    identity,
    [
      { type: "To", address: "bob@dest.test", label: "Bob" },
      { type: "Bcc", address: "carol@dest.test" },
    ],
    {
      attachments: [
        { attachment_id: "0", content_type: "application/pdf", file_name: "plans.pdf", size: pdf.length, is_inline: false, content_raw_id: stored.raw_msg_id },
      ],
    },
  );

  const privacy = await draftPrivacy(f.store, draft, identity);
  assert.is(privacy.mode, "encrypted", privacy.reason);
  assert.equal(privacy.signing_key?.fingerprint, fpr.alice);
  assert.is(privacy.own_copy, "private_key");
  assert.equal(
    privacy.recipients.map((r) => [r.address, r.key_ids.length]),
    [
      ["bob@dest.test", 1],
      ["carol@dest.test", 1],
    ],
  );

  const reply = await deliverDraft(deps(), order(draft, identity));
  assert.is(reply.error, false, reply.message);
  const mail = await arrived(draft.subject);
  assert.equal([...mail.rcptTo].sort(), ["bob@dest.test", "carol@dest.test"]);

  const { headers, parts } = partsOf(mail.content);
  assert.match(headers, /^Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted";/m);
  assert.match(headers, new RegExp(`^Subject: ${draft.subject}$`, "m"), "the outer Subject is kept (documented)");
  assert.not.match(mail.content, /the plain body|the html body|plans\.pdf/, "nothing of the content in clear");
  assert.is(parts.length, 2, "two parts");
  assert.match(parts[0] as string, /^Content-Type: application\/pgp-encrypted\r\n(?:.*\r\n)*\r\nVersion: 1\r\n/);
  assert.match(parts[1] as string, /^Content-Type: application\/octet-stream/);
  const armored = (parts[1] as string).slice((parts[1] as string).indexOf("-----BEGIN PGP MESSAGE-----"));

  for (const [name, key] of [
    ["bob", fpr.bob],
    ["carol", fpr.carol],
  ] as const) {
    const out = await gpgDecrypt(gpg[name], armored);
    assert.is(out.code, 0, `${name} decrypts: ${out.status}`);
    assert.match(out.status, /\[GNUPG:\] DECRYPTION_OKAY/);
    assert.match(out.status, new RegExp(`\\[GNUPG:\\] GOODSIG ${fpr.alice.slice(-16)} `), "a good signature by Alice's key");
    assert.match(out.status, new RegExp(`\\[GNUPG:\\] VALIDSIG ${fpr.alice} `));
    assert.ok(key);
    const inner = await simpleParser(out.stdout);
    assert.is(inner.text, "the plain body, ünïcødé\n");
    assert.is(inner.html, "<b>the html body</b>");
    assert.is(inner.attachments.length, 1);
    assert.is(inner.attachments[0]?.filename, "plans.pdf");
    assert.ok(inner.attachments[0]?.content.equals(pdf), "the attachment's bytes");
    assert.is(inner.subject, draft.subject, "the protected headers inside");
    assert.match(out.stdout.toString("latin1"), /protected-headers="v1"/);
  }
  // Alice's own key can read her sent copy too.
  const own = await gpgDecrypt(gpg.alice, armored);
  assert.is(own.code, 0, own.status);

  // The Sent copy is the encrypted mail exactly as sent.
  const sent = await f.store.messages.get(userId, draft.message_id);
  assert.ok(sent && !sent.is_draft);
  assert.is(sent.is_encrypted, true);
  assert.equal(sent.pgp, { encrypted: true, signed: true, signer_key_id: fpr.alice.slice(-16) });
  const raw = Buffer.from((await f.store.raws.read(sent.raw_msg_id ?? "")) ?? new Uint8Array());
  assert.is(raw.toString("latin1").replace(/\r\n/g, "\n"), mail.content, "the stored raw is what smtp-sink received");
  assert.not.match(logs, /PRIVATE KEY|lQ[A-Za-z0-9+/]{20}/, "no secret key in the logs");
});

test("encrypted without a stored private key: to the recipients and the user's own contact-card key, unsigned", async () => {
  const identity = await alice({ privateKey: false });
  const user = await f.store.users.get(identity.user_id);
  assert.ok(user);
  // Alice's public key on her own card: her sent copy is encrypted to it.
  const parsed = await parsePublicKey(await gpg.alice.exportPublic(fpr.alice));
  await f.store.keys.add(storedPublicKey(parsed, { user_id: user.user_id, resource_id: user.contact_id, label: "mine", source: "user" }));
  await contactWithKey(identity.user_id, "bob@dest.test", gpg.bob, fpr.bob);
  const draft = await draftFrom(identity, [{ type: "To", address: "bob@dest.test" }]);
  const privacy = await draftPrivacy(f.store, draft, identity);
  assert.is(privacy.mode, "encrypted");
  assert.is(privacy.signing_key, null);
  assert.is(privacy.own_copy, "own_contact_keys");
  assert.match(privacy.reason, /not signed: you have stored no private key/);

  assert.is((await deliverDraft(deps(), order(draft, identity))).error, false);
  const armored = (await arrived(draft.subject)).content.match(/-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/)?.[0] ?? "";
  const bob = await gpgDecrypt(gpg.bob, armored);
  assert.is(bob.code, 0, bob.status);
  assert.not.match(bob.status, /GOODSIG|BADSIG/, "not signed");
  assert.is((await gpgDecrypt(gpg.alice, armored)).code, 0, "Alice's own key opens her copy");
});

// ---- clear and signed ----------------------------------------------------------------------------

test("a recipient without a key: sent in clear, signed (multipart/signed) that gpg verifies; privacy says who lacks a key", async () => {
  const identity = await alice();
  await contactWithKey(identity.user_id, "bob@dest.test", gpg.bob, fpr.bob);
  await contactWithKey(identity.user_id, "nokey@dest.test");
  const draft = await draftFrom(identity, [
    { type: "To", address: "bob@dest.test" },
    { type: "Cc", address: "nokey@dest.test" },
    { type: "Cc", address: "stranger@dest.test" },
  ]);
  const privacy = await draftPrivacy(f.store, draft, identity);
  assert.is(privacy.mode, "signed");
  assert.equal(privacy.recipients, [
    { address: "bob@dest.test", key_ids: [fpr.bob.slice(-16)] },
    { address: "nokey@dest.test", key_ids: [], problem: "the contact has no public key" },
    { address: "stranger@dest.test", key_ids: [], problem: "no contact has this address" },
  ]);
  assert.match(privacy.reason, /no usable key for nokey@dest\.test \(the contact has no public key\), stranger@dest\.test \(no contact has this address\)/);

  assert.is((await deliverDraft(deps(), order(draft, identity))).error, false);
  const mail = await arrived(draft.subject);
  const { headers, parts } = partsOf(mail.content);
  assert.match(headers, /^Content-Type: multipart\/signed; micalg=pgp-sha\d+; protocol="application\/pgp-signature";/m);
  assert.is(parts.length, 2);
  const signature = (parts[1] as string).slice((parts[1] as string).indexOf("-----BEGIN PGP SIGNATURE-----"));
  const good = await gpgVerifyDetached(gpg.bob, Buffer.from(parts[0] as string, "latin1"), signature);
  assert.is(good.code, 0, good.status);
  assert.match(good.status, new RegExp(`\\[GNUPG:\\] VALIDSIG ${fpr.alice} `));
  // The signed part is 7-bit: quoted-printable text (even plain ASCII, whose trailing blanks a server could strip), so no server rewrites it.
  assert.is((parts[0] as string).match(/Content-Transfer-Encoding: quoted-printable/g)?.length, 2, "both bodies quoted-printable");
  assert.ok(![...(parts[0] as string)].some((c) => c.charCodeAt(0) > 0x7e), "7-bit");
  const tampered = await gpgVerifyDetached(gpg.bob, Buffer.from((parts[0] as string).replace("plain body", "plain bodY"), "latin1"), signature);
  assert.is.not(tampered.code, 0, "a changed byte fails gpg's check");
  assert.match(tampered.status, /BADSIG/);
  const sent = await f.store.messages.get(identity.user_id, draft.message_id);
  assert.equal(sent?.pgp, { encrypted: false, signed: true, signer_key_id: fpr.alice.slice(-16) });
  assert.is(sent?.is_encrypted, false);
});

test("no key anywhere and no private key: clear, unsigned, as before", async () => {
  const identity = await alice({ privateKey: false });
  const draft = await draftFrom(identity, [{ type: "To", address: "stranger@dest.test" }]);
  const privacy = await draftPrivacy(f.store, draft, identity);
  assert.is(privacy.mode, "clear");
  assert.match(privacy.reason, /unsigned \(you have stored no private key\)/);
  assert.is((await deliverDraft(deps(), order(draft, identity))).error, false);
  const mail = await arrived(draft.subject);
  assert.not.match(mail.content, /multipart\/(signed|encrypted)/);
  const sent = await f.store.messages.get(identity.user_id, draft.message_id);
  assert.is(sent?.pgp, undefined);
  assert.is(sent?.is_encrypted, undefined);
});

// ---- keys that must not be used, and require_encryption ---------------------------------------------

test("expired and revoked keys are not used: privacy says why, and require_encryption refuses to send, the draft staying a draft", async () => {
  const identity = await alice();
  await contactWithKey(identity.user_id, "bob@dest.test", gpg.bob, fpr.bob);
  await contactWithKey(identity.user_id, "dave@dest.test", gpg.dave, fpr.dave);
  await contactWithKey(identity.user_id, "erin@dest.test", gpg.erin, fpr.erin);
  const draft = await draftFrom(
    identity,
    [
      { type: "To", address: "bob@dest.test" },
      { type: "To", address: "dave@dest.test" },
      { type: "Cc", address: "erin@dest.test" },
    ],
    { require_encryption: true },
  );
  const privacy = await draftPrivacy(f.store, draft, identity);
  assert.is(privacy.mode, "signed");
  assert.is(privacy.refused, true);
  assert.is(privacy.require_encryption, true);
  assert.equal(privacy.recipients[1], { address: "dave@dest.test", key_ids: [], problem: `no usable key: ${fpr.dave}: expired` });
  assert.equal(privacy.recipients[2], { address: "erin@dest.test", key_ids: [], problem: `no usable key: ${fpr.erin}: revoked` });
  assert.match(privacy.reason, /encryption is required, so sending is refused/);

  const before = (await sink.messages()).length;
  const reply = await deliverDraft(deps(), order(draft, identity));
  assert.is(reply.error, true);
  assert.match(reply.message, /^failed to send message .*: the draft requires encryption: no usable key for dave@dest\.test/);
  const still = await f.store.messages.get(identity.user_id, draft.message_id);
  assert.is(still?.is_draft, true, "still a draft");
  assert.is(still?.sending_since, null, "its claim released: it can be sent once fixed");
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.is((await sink.messages()).length, before, "nothing reached the relay");

  // Dave and Erin dropped: every recipient has a key, so it goes encrypted.
  const fixed = await f.store.messages.update(identity.user_id, draft.message_id, (current) => ({
    ...current,
    participants: current.participants.filter((p) => p.address === "bob@dest.test" || p.type === "From"),
  }));
  assert.ok(fixed);
  assert.is((await draftPrivacy(f.store, fixed, identity)).mode, "encrypted");
  assert.is((await deliverDraft(deps(), order(fixed, identity))).error, false);
  assert.match((await arrived(draft.subject)).content, /multipart\/encrypted/);
});

test("an expired key beside a good one on the same contact: only the good one is used", async () => {
  const identity = await alice();
  await contactWithKey(identity.user_id, "bob@dest.test", gpg.bob, fpr.bob);
  const contact = await f.store.contacts.byAddress(identity.user_id, "bob@dest.test");
  assert.ok(contact);
  const expired = await parsePublicKey(await gpg.dave.exportPublic(fpr.dave));
  await f.store.keys.add({
    schema: SCHEMA_VERSION,
    user_id: identity.user_id,
    resource_id: contact.contact_id,
    key_id: expired.key_id,
    fingerprint: expired.fingerprint,
    armored: expired.armored,
    expire_date: expired.expire_date,
    label: "old",
    size: expired.size,
    algorithm: expired.algorithm,
    emails: expired.emails,
    source: "user",
    date_insert: new Date().toISOString(),
  });
  const draft = await draftFrom(identity, [{ type: "To", address: "bob@dest.test" }]);
  const privacy = await draftPrivacy(f.store, draft, identity);
  assert.equal(privacy.recipients, [{ address: "bob@dest.test", key_ids: [fpr.bob.slice(-16)] }]);
  assert.is((await deliverDraft(deps(), order(draft, identity))).error, false);
  const armored = (await arrived(draft.subject)).content.match(/-----BEGIN PGP MESSAGE-----[\s\S]+?-----END PGP MESSAGE-----/)?.[0] ?? "";
  const out = await gpgDecrypt(gpg.dave, armored);
  assert.is.not(out.code, 0, "Dave's expired key was not encrypted to");
  assert.is((await gpgDecrypt(gpg.bob, armored)).code, 0);
});

test("a stored private key that expired is not used to sign", async () => {
  const keyring = await Gpg.open();
  try {
    const { user, identity } = await createUser(f.store, { name: `alice-${randomUUID()}`, email: ALICE });
    assert.ok(identity);
    const short = await makeMailKey(keyring, `Alice <${ALICE}>`, { expire: "seconds=2" });
    await f.store.privateKeys.add(user.user_id, await parsePrivateKey(await exportSecretKey(keyring, short), undefined));
    const draft = await draftFrom(identity, [{ type: "To", address: "stranger@dest.test" }]);
    assert.is((await draftPrivacy(f.store, draft, identity)).mode, "signed");
    const later = new Date(Date.now() + 5_000);
    const privacy = await draftPrivacy(f.store, draft, identity, later);
    assert.is(privacy.mode, "clear");
    assert.is(privacy.signing_key, null);
  } finally {
    await keyring.close();
  }
});

test.run();
