// Reads OpenPGP public keys into what Caliopen stores about them: one ASCII-armored key a user uploads
// (parsePublicKey), or every key a key server or Web Key Directory answered (parsePublicKeys).
import { type PublicKey as OpenPgpKey, readKeys } from "openpgp";

export interface ParsedPublicKey {
  fingerprint: string;
  /** The last 16 hex digits of the fingerprint (the "long key id"). */
  key_id: string;
  algorithm: string;
  /** Bits for RSA/DSA/ElGamal; the curve's strength for ECC keys. */
  size: number;
  expire_date: string | null;
  expired: boolean;
  revoked: boolean;
  emails: string[];
  /** The key re-armored (public part only, normalised). */
  armored: string;
}

export class KeyParseError extends Error {
  override readonly name = "KeyParseError";
}

// Strength in bits of the curves openpgp.js supports, for comparing key sizes across algorithms.
const CURVE_BITS: Record<string, number> = {
  curve25519: 256,
  curve25519Legacy: 256,
  ed25519: 256,
  ed25519Legacy: 256,
  x25519: 256,
  curve448: 448,
  ed448: 448,
  x448: 448,
  nistP256: 256,
  p256: 256,
  nistP384: 384,
  p384: 384,
  nistP521: 521,
  p521: 521,
  brainpoolP256r1: 256,
  brainpoolP384r1: 384,
  brainpoolP512r1: 512,
  secp256k1: 256,
};

/** Reads exactly one public key (what a user uploads): several keys or a private key are refused. */
export async function parsePublicKey(armored: string, now: Date = new Date()): Promise<ParsedPublicKey> {
  let keys: OpenPgpKey[];
  try {
    keys = (await readKeys({ armoredKeys: armored })) as OpenPgpKey[];
  } catch (err) {
    throw new KeyParseError(`not a readable OpenPGP key: ${(err as Error).message}`);
  }
  if (keys.length !== 1) throw new KeyParseError(`expected exactly one key, found ${keys.length}`);
  const key = keys[0] as OpenPgpKey;
  if (key.isPrivate()) throw new KeyParseError("this is a private key: upload only the public key");
  return describeKey(key, now);
}

/**
 * Reads every public key of what a key server or a Web Key Directory answered: ASCII armor (one block
 * holding several keys, or several blocks one after the other) or binary packets. A block that cannot
 * be read does not spoil the others: it comes back as a `KeyParseError` in its place. Private keys are
 * refused the same way (only public keys are ever published).
 */
export async function parsePublicKeys(input: string | Uint8Array, now: Date = new Date()): Promise<(ParsedPublicKey | KeyParseError)[]> {
  const text = typeof input === "string" ? input : looksArmored(input) ? new TextDecoder().decode(input) : null;
  if (text === null) return readBlock({ binaryKeys: input as Uint8Array }, now);
  const blocks = text.match(/-----BEGIN PGP PUBLIC KEY BLOCK-----[\s\S]*?(?:-----END PGP PUBLIC KEY BLOCK-----|$)/g) ?? [];
  if (blocks.length === 0) return [new KeyParseError("not a readable OpenPGP key: no public key block found")];
  const out: (ParsedPublicKey | KeyParseError)[] = [];
  for (const block of blocks) out.push(...(await readBlock({ armoredKeys: block }, now)));
  return out;
}

async function readBlock(source: { armoredKeys: string } | { binaryKeys: Uint8Array }, now: Date): Promise<(ParsedPublicKey | KeyParseError)[]> {
  let keys: OpenPgpKey[];
  try {
    keys = (await readKeys(source as { armoredKeys: string })) as OpenPgpKey[];
  } catch (err) {
    return [new KeyParseError(`not a readable OpenPGP key: ${(err as Error).message}`)];
  }
  if (keys.length === 0) return [new KeyParseError("not a readable OpenPGP key: no key in it")];
  return Promise.all(
    keys.map(async (key) => {
      if (key.isPrivate()) return new KeyParseError(`${key.getFingerprint().toUpperCase()} is a private key`);
      try {
        return await describeKey(key, now);
      } catch (err) {
        return new KeyParseError(`not a usable OpenPGP key: ${(err as Error).message}`);
      }
    }),
  );
}

function looksArmored(bytes: Uint8Array): boolean {
  // Binary OpenPGP starts with a packet tag (high bit set); armor with "-----BEGIN", maybe after blank lines.
  const head = new TextDecoder().decode(bytes.subarray(0, 64)).trimStart();
  return head.startsWith("-----BEGIN");
}

async function describeKey(key: OpenPgpKey, now: Date): Promise<ParsedPublicKey> {
  const info = key.getAlgorithmInfo() as { algorithm: string; bits?: number; curve?: string };
  const expiration = await key.getExpirationTime();
  const expireDate = expiration instanceof Date ? expiration : null;
  const revoked = await key.isRevoked(undefined, undefined, now);
  const emails = key
    .getUserIDs()
    .map((userId) => /<([^>]+)>/.exec(userId)?.[1] ?? userId)
    .map((email) => email.trim().toLowerCase())
    .filter((email) => email.includes("@"));
  const fingerprint = key.getFingerprint().toUpperCase();
  return {
    fingerprint,
    key_id: fingerprint.slice(-16),
    algorithm: info.curve === undefined ? info.algorithm : `${info.algorithm} ${info.curve}`,
    size: info.bits ?? CURVE_BITS[info.curve ?? ""] ?? 0,
    expire_date: expireDate?.toISOString() ?? null,
    // getExpirationTime() is Infinity for keys that never expire, null for an invalid self-signature.
    expired: expiration === null || (expireDate !== null && expireDate.getTime() <= now.getTime()),
    revoked,
    emails: [...new Set(emails)],
    armored: key.armor(),
  };
}
