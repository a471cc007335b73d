// PGP/MIME (RFC 3156) around a composed mail: its body and content headers become the inner MIME entity,
// which is either encrypted (multipart/encrypted: the "Version: 1" part, then the armored OpenPGP
// message; signed inside when a signing key is given) or signed (multipart/signed: the entity exactly as
// sent, then its detached signature). Attachments are in the entity, so they are encrypted or signed too.
//
// The outer headers stay as composed (From, To, Cc, Subject, Date, Message-ID, threading): mail servers
// and clients that know no PGP need them, and a subject replaced by "..." confuses most clients. The
// inner entity carries a copy of them marked `protected-headers="v1"`, so that clients that know the
// convention can show the signed and encrypted values and detect outer ones changed in transit.
import { randomBytes } from "node:crypto";
import { createMessage, enums, type PrivateKey, type PublicKey, encrypt as pgpEncrypt, sign as pgpSign, readSignature } from "openpgp";
import { OPENPGP_LIMITS } from "../keys/openpgp-limits.ts";

/** Outer headers copied into the protected entity (RFC 5322 names, as composed). */
const PROTECTED_HEADERS = new Set(["subject", "from", "to", "cc", "reply-to", "date", "message-id", "in-reply-to", "references"]);

interface Field {
  /** Lower-case name. */
  name: string;
  /** The whole field as composed, folded lines and all, without its final CRLF. */
  text: string;
}

/** A composed mail split into its header fields and its body (CRLF line ends throughout). */
function split(raw: Buffer): { fields: Field[]; body: string } {
  const text = raw.toString("latin1");
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) throw new Error("the composed mail has no end of headers");
  const fields: Field[] = [];
  for (const line of text.slice(0, end).split("\r\n")) {
    const last = fields.at(-1);
    if (/^[ \t]/.test(line) && last !== undefined) last.text += `\r\n${line}`;
    else fields.push({ name: line.slice(0, line.indexOf(":")).trim().toLowerCase(), text: line });
  }
  return { fields, body: text.slice(end + 4) };
}

/** The inner entity: the content headers (Content-Type marked protected-headers), copies of the protected ones, the body. */
function innerEntity(fields: Field[], body: string): { inner: Buffer; outer: Field[] } {
  const content = fields.filter((field) => field.name.startsWith("content-"));
  const outer = fields.filter((field) => !field.name.startsWith("content-"));
  if (!content.some((field) => field.name === "content-type")) content.unshift({ name: "content-type", text: "Content-Type: text/plain; charset=utf-8" });
  const marked = content.map((field) => (field.name === "content-type" ? { ...field, text: `${field.text};\r\n protected-headers="v1"` } : field));
  const copies = outer.filter((field) => PROTECTED_HEADERS.has(field.name));
  const head = [...marked, ...copies].map((field) => `${field.text}\r\n`).join("");
  return { inner: Buffer.from(`${head}\r\n${body}`, "latin1"), outer };
}

const crlf = (text: string) => text.replace(/\r?\n/g, "\r\n");
const newBoundary = () => `caliopen-pgp-${randomBytes(12).toString("hex")}`;

function assemble(outer: Field[], contentType: string, parts: string[], boundary: string, preamble: string): Buffer {
  const head = [...outer.map((field) => field.text), contentType].join("\r\n");
  const body = `${preamble}\r\n${parts.map((part) => `--${boundary}\r\n${part}\r\n`).join("")}--${boundary}--\r\n`;
  return Buffer.from(`${head}\r\n\r\n${body}`, "latin1");
}

/** The mail as multipart/encrypted, to every key given, signed inside with `signingKey` when there is one. */
export async function encryptMime(raw: Buffer, encryptionKeys: PublicKey[], signingKey: PrivateKey | null, date: Date): Promise<Buffer> {
  if (encryptionKeys.length === 0) throw new Error("no key to encrypt to");
  const { fields, body } = split(raw);
  const { inner, outer } = innerEntity(fields, body);
  const armored = await pgpEncrypt({
    message: await createMessage({ binary: inner }),
    encryptionKeys,
    ...(signingKey !== null && { signingKeys: signingKey }),
    format: "armored",
    date,
    config: OPENPGP_LIMITS,
  });
  const boundary = newBoundary();
  return assemble(
    outer,
    `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";\r\n boundary="${boundary}"`,
    [
      "Content-Type: application/pgp-encrypted\r\nContent-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n",
      `Content-Type: application/octet-stream; name="encrypted.asc"\r\nContent-Description: OpenPGP encrypted message\r\nContent-Disposition: inline; filename="encrypted.asc"\r\n\r\n${crlf(armored).trimEnd()}\r\n`,
    ],
    boundary,
    "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)",
  );
}

/**
 * The mail as multipart/signed with a detached signature over the inner entity. The entity must already
 * be 7-bit safe (quoted-printable or base64 bodies), so that no server rewrites it on the way.
 */
export async function signMime(raw: Buffer, signingKey: PrivateKey, date: Date): Promise<Buffer> {
  const { fields, body } = split(raw);
  const { inner, outer } = innerEntity(fields, body);
  // What a reader verifies is the part's bytes up to the delimiter, whose CRLF is not the part's own.
  const signed = inner.toString("latin1").replace(/\r\n$/, "");
  const armored = await pgpSign({
    message: await createMessage({ binary: Buffer.from(signed, "latin1") }),
    signingKeys: signingKey,
    detached: true,
    format: "armored",
    date,
    config: OPENPGP_LIMITS,
  });
  const hash = (await readSignature({ armoredSignature: armored, config: OPENPGP_LIMITS })).packets[0]?.hashAlgorithm;
  const micalg = hash === undefined || hash === null ? "pgp-sha256" : `pgp-${enums.read(enums.hash, hash).toLowerCase()}`;
  const boundary = newBoundary();
  return assemble(
    outer,
    `Content-Type: multipart/signed; micalg=${micalg}; protocol="application/pgp-signature";\r\n boundary="${boundary}"`,
    [
      signed,
      `Content-Type: application/pgp-signature; name="signature.asc"\r\nContent-Description: OpenPGP digital signature\r\nContent-Disposition: attachment; filename="signature.asc"\r\n\r\n${crlf(armored).trimEnd()}\r\n`,
    ],
    boundary,
    "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)",
  );
}
