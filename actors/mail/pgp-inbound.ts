// PGP/MIME recognised in a received mail (RFC 3156):
//   - multipart/encrypted: `is_encrypted`, and the key ids it is encrypted to. It is not decrypted here,
//     even for a user who stored a private key: what the sender encrypted stays encrypted in the store,
//     and the armored message is the body a client decrypts.
//   - multipart/signed: the signer's key id, and whether the signature verifies against the keys of the
//     sender's contact (the From participant's; the user's own card for their own mail). The signed part
//     is read again from the raw, byte for byte, as the signature covers it.
// A sender controls all of it, so the work is bounded: a signed mail over MAX_SIGNED_MAIL_BYTES is not
// checked (and says so), CHECKS_AT_ONCE signed mails are held and checked at a time per process (imports
// run many at once), the signature part is at most MAX_SIGNATURE_PART_BYTES, at most
// MAX_KEYS_PER_CONTACT keys of a contact are read, and openpgp.js runs under openpgp-limits.ts.
import type { Readable } from "node:stream";
import type { StructuredHeader } from "mailparser";
import { createMessage, type Key, readKey, readMessage, readSignature, type Signature, verify } from "openpgp";
import pLimit from "p-limit";
import { OPENPGP_LIMITS } from "../keys/openpgp-limits.ts";
import type { Message, Participant, SignatureCheck } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { cut } from "./message-budget.ts";
import type { Body, Head } from "./parse-mail-stream.ts";
import { MAX_KEYS_PER_CONTACT } from "./recipient-keys.ts";

/** A signed mail larger than this is imported without its signature being checked. */
export const MAX_SIGNED_MAIL_BYTES = 8 * 1024 * 1024;
export const MAX_SIGNATURE_PART_BYTES = 64 * 1024;
/** Key ids of the recipients of an encrypted mail kept at most. */
const MAX_ENCRYPTED_TO = 32;
const MAX_NOTE_CHARS = 300;
/** Signed mails read whole and checked at once in this process: each holds a few times its size. */
const CHECKS_AT_ONCE = 2;
const checks = pLimit(CHECKS_AT_ONCE);

export interface ReceivedMail {
  head: Head;
  body: Body;
  raw: { raw_msg_id: string; size: number };
  /** The message's participants, linked to the user's contacts. */
  participants: Participant[];
  now: Date;
}

/** The fields a received mail's message gets: none for a mail without PGP/MIME. */
export async function recognisePgp(store: Store, userId: string, mail: ReceivedMail): Promise<Pick<Message, "is_encrypted" | "pgp">> {
  const type = contentType(mail.head);
  if (type === null) return {};
  if (type.value === "multipart/encrypted" && type.protocol === "application/pgp-encrypted") {
    return { is_encrypted: true, pgp: { encrypted: true, signed: false, signer_key_id: null, encrypted_to: await encryptedTo(mail.body.encryptedArmor) } };
  }
  if (type.value === "multipart/signed" && type.protocol === "application/pgp-signature") {
    return { pgp: { encrypted: false, signed: true, ...(await checks(() => checkSignature(store, userId, mail, type.boundary))) } };
  }
  return {};
}

function contentType(head: Head): { value: string; protocol: string; boundary: string } | null {
  const header = head.headers.get("content-type") as StructuredHeader | undefined;
  if (typeof header?.value !== "string") return null;
  return { value: header.value.toLowerCase(), protocol: (header.params?.protocol ?? "").toLowerCase(), boundary: header.params?.boundary ?? "" };
}

async function encryptedTo(armored: string | null): Promise<string[]> {
  if (armored === null) return [];
  try {
    const message = await readMessage({ armoredMessage: armored, config: OPENPGP_LIMITS });
    return message
      .getEncryptionKeyIDs()
      .slice(0, MAX_ENCRYPTED_TO)
      .map((id) => id.toHex().toUpperCase());
  } catch {
    return [];
  }
}

type Checked = { signer_key_id: string | null; signer_fingerprint?: string; signature: SignatureCheck; signature_note?: string };

const notChecked = (note: string, signer: string | null = null): Checked => ({ signer_key_id: signer, signature: "not_checked", signature_note: note });
const invalid = (note: string, signer: string | null = null): Checked => ({
  signer_key_id: signer,
  signature: "invalid",
  signature_note: cut(note, MAX_NOTE_CHARS),
});

async function checkSignature(store: Store, userId: string, mail: ReceivedMail, boundary: string): Promise<Checked> {
  if (mail.raw.size > MAX_SIGNED_MAIL_BYTES) return notChecked(`the mail is over ${MAX_SIGNED_MAIL_BYTES / 1024 / 1024} MiB: its signature was not checked`);
  const content = await store.raws.readable(mail.raw.raw_msg_id);
  if (content === null) return notChecked("the raw mail is gone");
  const bytes = await readAtMost(content, MAX_SIGNED_MAIL_BYTES);
  if (bytes === null) return notChecked(`the mail is over ${MAX_SIGNED_MAIL_BYTES / 1024 / 1024} MiB: its signature was not checked`);

  const parts = signedParts(bytes.toString("latin1"), boundary);
  if (typeof parts === "string") return invalid(`malformed multipart/signed: ${parts}`);
  let signature: Signature;
  try {
    signature = await readSignature({ armoredSignature: parts.signature, config: OPENPGP_LIMITS });
  } catch (err) {
    return invalid(`the signature cannot be read: ${(err as Error).message}`);
  }
  const issuers = signature.getSigningKeyIDs();
  const issuer = issuers[0];
  if (issuer === undefined || issuers.length > 1) return invalid(`expected one signature, found ${issuers.length}`);
  const signer = issuer.toHex().toUpperCase();

  const candidates = await senderKeys(store, userId, mail.participants);
  const matching = candidates.filter((key) => key.getKeys(issuer).length > 0);
  if (matching.length === 0) return { signer_key_id: signer, signature: "unknown_key", signature_note: "no key of the sender's contact made this signature" };
  try {
    const result = await verify({
      message: await createMessage({ binary: Buffer.from(parts.signed, "latin1") }),
      signature,
      verificationKeys: matching,
      date: mail.now,
      config: OPENPGP_LIMITS,
    });
    await result.signatures[0]?.verified;
    const key = matching[0] as Key;
    return { signer_key_id: signer, signer_fingerprint: key.getFingerprint().toUpperCase(), signature: "verified" };
  } catch (err) {
    return invalid((err as Error).message, signer);
  }
}

/** The keys of the From participant's contacts (at most MAX_KEYS_PER_CONTACT each), read. */
async function senderKeys(store: Store, userId: string, participants: Participant[]): Promise<Key[]> {
  const contactIds = [...new Set(participants.filter((p) => p.type === "From").flatMap((p) => p.contact_ids))].slice(0, 4);
  const stored = (await Promise.all(contactIds.map((id) => store.keys.list(userId, id)))).flatMap((keys) => keys.slice(-MAX_KEYS_PER_CONTACT));
  const read = await Promise.all(stored.map((key) => readKey({ armoredKey: key.armored, config: OPENPGP_LIMITS }).catch(() => null)));
  return read.filter((key): key is Key => key !== null);
}

async function readAtMost(source: Readable, max: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      source.destroy();
      return null;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * The two parts of a multipart/signed body (RFC 1847, RFC 2046 §5.1.1): the signed part exactly as its
 * bytes are, with its line ends made CRLF (RFC 3156 §5: what was signed), and the armored signature.
 * The CRLF before a delimiter belongs to the delimiter. A string says what is wrong.
 */
export function signedParts(mail: string, boundary: string): { signed: string; signature: string } | string {
  if (boundary === "" || boundary.length > 70) return "no valid boundary";
  const headerEnd = /\r?\n\r?\n/.exec(mail);
  if (headerEnd === null) return "no body";
  const body = mail.slice(headerEnd.index + headerEnd[0].length - 2);
  const escaped = boundary.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const delimiter = new RegExp(`\\r?\\n--${escaped}(--)?[ \\t]*(\\r?\\n|$)`, "g");
  const found = [...body.matchAll(delimiter)];
  const close = found.findIndex((match) => match[1] === "--");
  if (close < 0) return "no closing delimiter";
  if (close !== 2) return `expected two parts, found ${close}`;
  const [first, second, last] = found as [RegExpExecArray, RegExpExecArray, RegExpExecArray];
  const part = (from: RegExpExecArray, to: RegExpExecArray) => body.slice(from.index + from[0].length, to.index);
  const signed = part(first, second).replace(/\r?\n/g, "\r\n");
  const signaturePart = part(second, last);
  if (signaturePart.length > MAX_SIGNATURE_PART_BYTES) return `the signature part is over ${MAX_SIGNATURE_PART_BYTES} bytes`;
  const split = /\r?\n\r?\n/.exec(signaturePart);
  if (split === null) return "the signature part has no body";
  const headers = signaturePart.slice(0, split.index).toLowerCase();
  if (!/^content-type:[ \t]*application\/pgp-signature/m.test(headers)) return "the second part is not application/pgp-signature";
  let signature = signaturePart.slice(split.index + split[0].length);
  if (/^content-transfer-encoding:[ \t]*base64/m.test(headers)) signature = Buffer.from(signature, "base64").toString("latin1");
  return { signed, signature };
}
