// Reads the OpenPGP private key a user stores (POST /api/v2/keys/private): exactly one secret key, valid
// now (neither expired nor revoked), able to sign and to encrypt, whose secret parts are really there and
// really work (a probe message is signed, encrypted to it and decrypted). A key protected by a passphrase
// is unlocked here, once: the passphrase is not kept, the unlocked key is what gets sealed.
//
// Unlocking runs the key's passphrase derivation, which the uploader chooses: Argon2's memory is bounded
// (openpgp-limits.ts) and one key is unlocked at a time per process, a few more waiting at most.
import { createMessage, decrypt, decryptKey, encrypt, type Key, type PrivateKey, readKeys, readMessage, readSignature, sign, verify } from "openpgp";
import pLimit from "p-limit";
import { OPENPGP_CONFIG, OPENPGP_LIMITS } from "./openpgp-limits.ts";
import { KeyParseError, type ParsedPublicKey, parsePublicKey } from "./parse-public-key.ts";

/** The largest armored private key taken (a key with several subkeys and user ids is a few KiB). */
export const MAX_PRIVATE_KEY_CHARS = 128 * 1024;
export const MAX_PASSPHRASE_CHARS = 1024;
/** Keys being checked at once in this process beyond the one unlocking: past it, a busy refusal. */
const MAX_WAITING = 4;

export interface ParsedPrivateKey {
  /** Its public part, described as public keys are. */
  public: ParsedPublicKey;
  /** When the primary key was made (ISO date). */
  created: string;
  /** Its user ids as written (`Name <address>`). */
  user_ids: string[];
  /** Whether it came protected by a passphrase (the passphrase unlocked it here and was dropped). */
  was_protected: boolean;
  /** The key with its secret parts unlocked, armored: only ever sealed, never logged or returned. */
  unlocked: string;
}

/** Why a key is refused, naming the request field at fault; the message never quotes the key or the passphrase. */
export class PrivateKeyRefused extends Error {
  override readonly name = "PrivateKeyRefused";
  constructor(
    readonly field: "private_key" | "passphrase",
    message: string,
  ) {
    super(message);
  }
}

/** Too many keys are being checked in this process right now. */
export class PrivateKeyCheckBusy extends Error {
  override readonly name = "PrivateKeyCheckBusy";
}

const oneAtATime = pLimit(1);

export async function parsePrivateKey(armored: string, passphrase: string | undefined, now: Date = new Date()): Promise<ParsedPrivateKey> {
  if (armored.length > MAX_PRIVATE_KEY_CHARS) throw new PrivateKeyRefused("private_key", `the key is over ${MAX_PRIVATE_KEY_CHARS} characters`);
  if (passphrase !== undefined && passphrase.length > MAX_PASSPHRASE_CHARS) {
    throw new PrivateKeyRefused("passphrase", `the passphrase is over ${MAX_PASSPHRASE_CHARS} characters`);
  }
  if (oneAtATime.activeCount + oneAtATime.pendingCount > MAX_WAITING)
    throw new PrivateKeyCheckBusy("too many keys are being checked right now; try again shortly");
  return oneAtATime(() => check(armored, passphrase, now));
}

async function check(armored: string, passphrase: string | undefined, now: Date): Promise<ParsedPrivateKey> {
  // openpgp.js reads the first armor block and ignores what follows: a second block is refused, not dropped.
  const blocks = armored.match(/-----BEGIN PGP /g)?.length ?? 0;
  if (blocks > 1) throw new PrivateKeyRefused("private_key", `expected exactly one key, found ${blocks} armor blocks`);
  let keys: Key[];
  try {
    keys = await readKeys({ armoredKeys: armored, config: OPENPGP_LIMITS });
  } catch (err) {
    throw new PrivateKeyRefused("private_key", `not a readable OpenPGP key: ${(err as Error).message}`);
  }
  if (keys.length !== 1) throw new PrivateKeyRefused("private_key", `expected exactly one key, found ${keys.length}`);
  const key = keys[0] as Key;
  if (!key.isPrivate()) throw new PrivateKeyRefused("private_key", "this is a public key: store the private (secret) key, exported with its secret parts");

  let described: ParsedPublicKey;
  try {
    described = await parsePublicKey(key.toPublic().armor(), now);
  } catch (err) {
    if (err instanceof KeyParseError) throw new PrivateKeyRefused("private_key", err.message);
    throw err;
  }
  if (described.revoked) throw new PrivateKeyRefused("private_key", "this key is revoked");
  if (described.expired) throw new PrivateKeyRefused("private_key", "this key is expired (or its self-signature is not valid)");
  try {
    await key.getSigningKey(undefined, now, undefined, OPENPGP_CONFIG);
  } catch {
    throw new PrivateKeyRefused("private_key", "this key cannot sign: neither it nor any subkey is a valid signing key");
  }
  try {
    await key.getEncryptionKey(undefined, now, undefined, OPENPGP_CONFIG);
  } catch {
    throw new PrivateKeyRefused(
      "private_key",
      "this key cannot encrypt: it has no valid encryption subkey (Caliopen encrypts your copy of the mail you send to it)",
    );
  }

  const wasProtected = !key.isDecrypted();
  let unlocked = key;
  if (wasProtected) {
    if (passphrase === undefined || passphrase === "")
      throw new PrivateKeyRefused("passphrase", "this key is protected by a passphrase: give it as `passphrase`");
    try {
      unlocked = await decryptKey({ privateKey: key, passphrase, config: OPENPGP_LIMITS });
    } catch (err) {
      // openpgp.js wraps the Argon2OutOfMemoryError into a plain Error naming it.
      if (/Argon2/i.test((err as Error).message)) {
        throw new PrivateKeyRefused("private_key", "unlocking this key would take more memory than allowed (Argon2 over 64 MiB)");
      }
      throw new PrivateKeyRefused("passphrase", "the passphrase does not unlock this key");
    }
  }
  await probe(unlocked, now);
  const created = key.getCreationTime();
  return {
    public: described,
    created: created.toISOString(),
    user_ids: key.getUserIDs(),
    was_protected: wasProtected,
    unlocked: unlocked.armor(),
  };
}

/** Signs, encrypts and decrypts a probe with the key: secret parts that are stubs (gnu-dummy) or broken fail here. */
async function probe(key: PrivateKey, now: Date): Promise<void> {
  const config = OPENPGP_LIMITS;
  const text = new TextEncoder().encode("caliopen private key check");
  try {
    const signature = await sign({ message: await createMessage({ binary: text }), signingKeys: key, detached: true, format: "binary", date: now, config });
    const checked = await verify({
      message: await createMessage({ binary: text }),
      signature: await readSignature({ binarySignature: signature, config }),
      verificationKeys: key.toPublic(),
      date: now,
      config,
    });
    await checked.signatures[0]?.verified;
  } catch {
    throw new PrivateKeyRefused("private_key", "this key's secret signing part is missing or does not work (a stub exported without it?)");
  }
  try {
    const encrypted = await encrypt({ message: await createMessage({ binary: text }), encryptionKeys: key.toPublic(), format: "binary", date: now, config });
    await decrypt({ message: await readMessage({ binaryMessage: encrypted, config }), decryptionKeys: key, format: "binary", date: now, config });
  } catch {
    throw new PrivateKeyRefused("private_key", "this key's secret decryption part is missing or does not work (a stub exported without it?)");
  }
}
