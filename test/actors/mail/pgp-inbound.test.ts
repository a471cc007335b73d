// PGP/MIME recognised on import, with mail signed and encrypted by GnuPG (not by the openpgp.js the code
// checks with): a multipart/signed mail from a contact whose key is known is verified, a tampered one is
// not, one signed by an unknown key says so; a multipart/encrypted mail is marked encrypted with the key
// ids it is for. Hostile shapes (too large, a huge or garbage signature, broken multiparts) are refused
// cheaply with a note, and never fail the import.

import { randomBytes, randomUUID } from "node:crypto";
import { readKey, readSignature } from "openpgp";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { parsePublicKey } from "../../../actors/keys/parse-public-key.ts";
import { storedPublicKey } from "../../../actors/keys/stored-public-key.ts";
import { processInboundEmail } from "../../../actors/mail/inbound-email.ts";
import { MAX_SIGNATURE_PART_BYTES, MAX_SIGNED_MAIL_BYTES, signedParts } from "../../../actors/mail/pgp-inbound.ts";
import type { Identity, Message } from "../../../actors/store/model.ts";
import { Gpg } from "../../helpers/gpg.ts";
import { gpgEncrypt, gpgSignDetached, makeMailKey } from "../../helpers/gpg-mail.ts";
import { newContact, type StoreFixture, startStore } from "../store/fixture.ts";

const ALICE = "alice@caliopen.local";
const BOB = "bob@dest.test";

let f: StoreFixture;
let bob: Gpg;
let alice: Gpg;
let bobFpr = "";
let carolFpr = "";
let aliceFpr = "";

test.before(async () => {
  f = await startStore();
  [bob, alice] = await Promise.all([Gpg.open(), Gpg.open()]);
  bobFpr = await makeMailKey(bob, `Bob <${BOB}>`);
  carolFpr = await makeMailKey(bob, "Carol <carol@dest.test>");
  aliceFpr = await makeMailKey(alice, `Alice <${ALICE}>`);
  await bob.importKeys(await alice.exportPublic(aliceFpr));
});

test.after(async () => {
  await Promise.all([f.nats.stop(), bob.close(), alice.close()]);
});

/** Alice, with a contact for Bob holding the public keys given. */
async function aliceWithBob(...fingerprints: string[]): Promise<Identity> {
  const { user, identity } = await createUser(f.store, { name: `alice-${randomUUID()}`, email: ALICE });
  assert.ok(identity);
  const contact = await f.store.contacts.create(newContact(user.user_id, [BOB]));
  for (const fingerprint of fingerprints) {
    const parsed = await parsePublicKey(await bob.exportPublic(fingerprint));
    await f.store.keys.add(storedPublicKey(parsed, { user_id: user.user_id, resource_id: contact.contact_id, label: BOB, source: "wkd" }));
  }
  return identity;
}

async function importMail(identity: Identity, mail: Buffer | string): Promise<Message> {
  const raw = await f.store.raws.put(null, typeof mail === "string" ? Buffer.from(mail, "latin1") : mail);
  const reply = await processInboundEmail(f.store, { message_id: raw.raw_msg_id, remote_id: identity.identity_id, user_id: identity.user_id });
  assert.is(reply.error, false, reply.message);
  const message = await f.store.messages.get(identity.user_id, String(reply.message_id));
  assert.ok(message);
  return message;
}

const ENTITY =
  'Content-Type: multipart/mixed; boundary="inner"\r\n\r\n--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nHello Alice, this is Bob =E2=80=94 signed.\r\n\r\n--inner\r\nContent-Type: application/octet-stream; name="data.bin"\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename="data.bin"\r\n\r\nAAECAwQFBgcICQ==\r\n--inner--\r\n';

function headers(contentType: string): string {
  return `From: Bob <${BOB}>\r\nTo: ${ALICE}\r\nSubject: signed ${randomUUID()}\r\nMessage-ID: <${randomUUID()}@dest.test>\r\nDate: ${new Date().toUTCString()}\r\nMIME-Version: 1.0\r\nContent-Type: ${contentType}\r\n\r\n`;
}

/** A multipart/signed mail around `entity`, with `signature` (by default gpg's over the entity). */
async function signedMail(options: { entity?: string; signedBy?: string; signature?: string; sent?: string } = {}): Promise<string> {
  const entity = options.entity ?? ENTITY;
  const signature = options.signature ?? (await gpgSignDetached(bob, options.signedBy ?? bobFpr, Buffer.from(entity, "latin1")));
  return `${headers('multipart/signed; micalg=pgp-sha512; protocol="application/pgp-signature"; boundary="outer-b"')}This is an OpenPGP/MIME signed message\r\n--outer-b\r\n${options.sent ?? entity}\r\n--outer-b\r\nContent-Type: application/pgp-signature; name="signature.asc"\r\n\r\n${signature.replace(/\r?\n/g, "\r\n")}\r\n--outer-b--\r\n`;
}

test("a mail signed by gpg with the key on the sender's contact: verified, with the signer's key id", async () => {
  const identity = await aliceWithBob(bobFpr);
  const message = await importMail(identity, await signedMail());
  assert.equal(message.pgp, { encrypted: false, signed: true, signer_key_id: bobFpr.slice(-16), signer_fingerprint: bobFpr, signature: "verified" });
  assert.is(message.is_encrypted, undefined);
  assert.match(message.body_plain, /Hello Alice, this is Bob — signed\./);
});

test("the same mail stored with bare LF line ends (as some stores keep it) still verifies: lines are made CRLF, as RFC 3156 says", async () => {
  const identity = await aliceWithBob(bobFpr);
  const message = await importMail(identity, (await signedMail()).replace(/\r\n/g, "\n"));
  assert.is(message.pgp?.signature, "verified");
});

test("a tampered body: invalid, naming why; the import still succeeds", async () => {
  const identity = await aliceWithBob(bobFpr);
  const tampered = ENTITY.replace("this is Bob", "this is B0b");
  const message = await importMail(identity, await signedMail({ sent: tampered }));
  assert.is(message.pgp?.signature, "invalid");
  assert.is(message.pgp?.signer_key_id, bobFpr.slice(-16));
  assert.ok(message.pgp?.signature_note && message.pgp.signature_note.length > 0);
  // A changed attachment byte is caught too.
  const attachment = await importMail(identity, await signedMail({ sent: ENTITY.replace("AAECAwQFBgcICQ==", "AAECAwQFBgcICA==") }));
  assert.is(attachment.pgp?.signature, "invalid");
});

test("signed by a key the sender's contact does not hold, or by a sender with no contact: unknown_key, with the key id", async () => {
  const withOtherKey = await aliceWithBob(carolFpr);
  const message = await importMail(withOtherKey, await signedMail());
  assert.equal(message.pgp, {
    encrypted: false,
    signed: true,
    signer_key_id: bobFpr.slice(-16),
    signature: "unknown_key",
    signature_note: "no key of the sender's contact made this signature",
  });
  // Whereas a signature by the key that is on the From contact's card verifies, whatever its user id.
  const byCardKey = await importMail(withOtherKey, await signedMail({ signedBy: carolFpr }));
  assert.is(byCardKey.pgp?.signature, "verified");
  const { identity: stranger } = await createUser(f.store, { name: `alice-${randomUUID()}`, email: ALICE });
  assert.ok(stranger);
  assert.is((await importMail(stranger, await signedMail())).pgp?.signature, "unknown_key");
});

test("a multipart/encrypted mail made by gpg: is_encrypted, the key ids it is for, the armor as body (not decrypted here)", async () => {
  const identity = await aliceWithBob(bobFpr);
  const armored = await gpgEncrypt(bob, [aliceFpr], Buffer.from(ENTITY, "latin1"));
  const mail = `${headers('multipart/encrypted; protocol="application/pgp-encrypted"; boundary="enc-b"')}--enc-b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--enc-b\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n${armored.replace(/\r?\n/g, "\r\n")}\r\n--enc-b--\r\n`;
  const message = await importMail(identity, mail);
  assert.is(message.is_encrypted, true);
  assert.is(message.pgp?.encrypted, true);
  assert.is(message.pgp?.signed, false);
  // gpg encrypts to the encryption subkey: its key id is the one listed.
  const subkeyId = (await readKey({ armoredKey: await alice.exportPublic(aliceFpr) })).subkeys[0]?.getKeyID().toHex().toUpperCase();
  assert.equal(message.pgp?.encrypted_to, [subkeyId]);
  assert.ok(message.body_plain.startsWith("-----BEGIN PGP MESSAGE-----"));
  assert.not.match(message.body_plain, /Hello Alice/);
});

// ---- hostile -------------------------------------------------------------------------------------

test("a signed mail over the size bound is imported with its signature not checked", async () => {
  const identity = await aliceWithBob(bobFpr);
  const big = `Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${randomBytes(Math.ceil((MAX_SIGNED_MAIL_BYTES * 3) / 4))
    .toString("base64")
    .replace(/.{76}/g, "$&\r\n")}\r\n`;
  const message = await importMail(
    identity,
    await signedMail({ entity: big, signature: "-----BEGIN PGP SIGNATURE-----\r\n\r\nAAAA\r\n-----END PGP SIGNATURE-----" }),
  );
  assert.equal(message.pgp, {
    encrypted: false,
    signed: true,
    signer_key_id: null,
    signature: "not_checked",
    signature_note: "the mail is over 8 MiB: its signature was not checked",
  });
});

test("a huge signature part, a garbage signature, several signatures, a broken multipart: invalid with a note, imported all the same", async () => {
  const identity = await aliceWithBob(bobFpr);
  const huge = await importMail(
    identity,
    await signedMail({ signature: `-----BEGIN PGP SIGNATURE-----\r\n\r\n${"A".repeat(MAX_SIGNATURE_PART_BYTES)}\r\n-----END PGP SIGNATURE-----` }),
  );
  assert.is(huge.pgp?.signature, "invalid");
  assert.match(huge.pgp?.signature_note ?? "", /signature part is over/);

  const garbage = await importMail(
    identity,
    await signedMail({ signature: "-----BEGIN PGP SIGNATURE-----\r\n\r\nbm90IGEgc2lnbmF0dXJl\r\n-----END PGP SIGNATURE-----" }),
  );
  assert.is(garbage.pgp?.signature, "invalid");
  assert.match(garbage.pgp?.signature_note ?? "", /cannot be read|expected one signature/);

  const one = await gpgSignDetached(bob, bobFpr, Buffer.from(ENTITY, "latin1"));
  const two = await gpgSignDetached(bob, carolFpr, Buffer.from(ENTITY, "latin1"));
  const binary = async (armored: string) => (await readSignature({ armoredSignature: armored })).write() as Uint8Array;
  const both = await readSignature({ binarySignature: Buffer.concat([await binary(one), await binary(two)]) });
  const several = await importMail(identity, await signedMail({ signature: both.armor() }));
  assert.is(several.pgp?.signature, "invalid");
  assert.match(several.pgp?.signature_note ?? "", /expected one signature, found 2/);

  const noClose = (await signedMail()).replace("--outer-b--", "--outer-x--");
  const broken = await importMail(identity, noClose);
  assert.is(broken.pgp?.signature, "invalid");
  assert.match(broken.pgp?.signature_note ?? "", /malformed multipart\/signed: no closing delimiter/);
});

test("signedParts: the CRLF before a delimiter is the delimiter's; three parts, no boundary, a wrong second part are refused", () => {
  const mail =
    'Content-Type: multipart/signed; boundary="b"\r\n\r\npreamble\r\n--b\r\nsigned\r\nlines\r\n--b  \r\nContent-Type: application/pgp-signature\r\n\r\nSIG\r\n--b--\r\nepilogue';
  assert.equal(signedParts(mail, "b"), { signed: "signed\r\nlines", signature: "SIG" });
  assert.equal(signedParts(mail.replace(/\r\n/g, "\n"), "b"), { signed: "signed\r\nlines", signature: "SIG" });
  assert.is(signedParts(mail.replace("--b--", "--b\r\nx\r\n--b--"), "b"), "expected two parts, found 3");
  assert.is(signedParts(mail, ""), "no valid boundary");
  assert.is(signedParts(mail, "x".repeat(71)), "no valid boundary");
  assert.is(signedParts(mail.replace("application/pgp-signature", "text/plain"), "b"), "the second part is not application/pgp-signature");
  // A boundary full of regular expression characters is taken literally.
  assert.equal(signedParts(mail.replace(/--b/g, "--a.*(b"), "a.*(b"), { signed: "signed\r\nlines", signature: "SIG" });
});

test.run();
