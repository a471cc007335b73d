// Users' own OpenPGP private keys, which sign the mail they send and which their copy of encrypted mail
// is encrypted to. The unlocked key is sealed with the deployment's secret key like identity credentials,
// bound to its user and fingerprint (a sealed blob copied under another user or key does not open), and
// only leaves the store through `unlockedKey()`, for the SMTP bridge that signs with it. Everything else
// (listings, the API) sees the public description only.
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import { DocumentExists } from "../../runtime/kv-documents.ts";
import type { SealedSecret, SecretBox } from "../../runtime/secret-box.ts";
import type { ParsedPrivateKey } from "../keys/parse-private-key.ts";
import { Conflict } from "./errors.ts";
import { SCHEMA_VERSION } from "./model.ts";
import { countSealed, type ResealReport, resealEvery, type SealedCount } from "./sealed-documents.ts";

/** Keys one user may store. */
export const MAX_PRIVATE_KEYS_PER_USER = 8;

/** What is said of a stored private key: its public description, never its secret. */
export interface PrivateKeyInfo {
  schema: number;
  user_id: string;
  fingerprint: string;
  /** The last 16 hex digits of the fingerprint. */
  key_id: string;
  algorithm: string;
  size: number;
  /** When the key was made (ISO date). */
  created: string;
  expire_date: string | null;
  user_ids: string[];
  /** Addresses named by its user ids, lower case: which of the user's identities it signs for first. */
  emails: string[];
  /** Whether it came protected by a passphrase (which unlocked it once and was not kept). */
  was_protected: boolean;
  /** Its public part, armored: what the user's copy of encrypted mail is encrypted to, and what to publish. */
  public_key: string;
  date_insert: string;
}

interface StoredPrivateKey extends PrivateKeyInfo {
  sealed_key: SealedSecret;
}

export class PrivateKeyStore {
  constructor(
    private readonly docs: KvDocuments<StoredPrivateKey>,
    /** null where secrets are not needed (the operator CLI's status): storing or reading a key then fails. */
    private readonly box: SecretBox | null,
  ) {}

  /** Stores a checked key; the same key twice, or more than MAX_PRIVATE_KEYS_PER_USER keys, is a Conflict. */
  async add(userId: string, parsed: ParsedPrivateKey, now: Date = new Date()): Promise<PrivateKeyInfo> {
    const fingerprint = parsed.public.fingerprint;
    const held = await this.docs.keys(`${keyToken(userId)}.*`);
    if (held.includes(docKey(userId, fingerprint))) throw new Conflict(`private key ${fingerprint} is already stored`);
    if (held.length >= MAX_PRIVATE_KEYS_PER_USER) throw new Conflict(`at most ${MAX_PRIVATE_KEYS_PER_USER} private keys may be stored: delete one first`);
    const stored: StoredPrivateKey = {
      schema: SCHEMA_VERSION,
      user_id: userId,
      fingerprint,
      key_id: parsed.public.key_id,
      algorithm: parsed.public.algorithm,
      size: parsed.public.size,
      created: parsed.created,
      expire_date: parsed.public.expire_date,
      user_ids: parsed.user_ids,
      emails: parsed.public.emails,
      was_protected: parsed.was_protected,
      public_key: parsed.public.armored,
      date_insert: now.toISOString(),
      sealed_key: this.secrets().seal(parsed.unlocked, keyAad(userId, fingerprint)),
    };
    try {
      await this.docs.create(docKey(userId, fingerprint), stored);
    } catch (err) {
      if (err instanceof DocumentExists) throw new Conflict(`private key ${fingerprint} is already stored`);
      throw err;
    }
    return publicPart(stored);
  }

  /** The user's keys, oldest first, without their secret. */
  async list(userId: string): Promise<PrivateKeyInfo[]> {
    const stored = await this.docs.values(`${keyToken(userId)}.*`);
    return stored.map(publicPart).sort((a, b) => a.date_insert.localeCompare(b.date_insert) || a.fingerprint.localeCompare(b.fingerprint));
  }

  /** Returns false when there was no such key. */
  async delete(userId: string, fingerprint: string): Promise<boolean> {
    const key = docKey(userId, fingerprint.toUpperCase());
    if ((await this.docs.get(key)) === null) return false;
    await this.docs.delete(key);
    return true;
  }

  /** The unlocked armored key, for signing and decrypting the user's copy. Never log the result. */
  async unlockedKey(userId: string, fingerprint: string): Promise<string | null> {
    const found = await this.docs.get(docKey(userId, fingerprint.toUpperCase()));
    if (found === null) return null;
    return this.secrets().open(found.value.sealed_key, keyAad(userId, found.value.fingerprint));
  }

  /** As IdentityStore.resealCredentials, for private keys: each by compare-and-swap, safe to run again. */
  async reseal(): Promise<ResealReport> {
    return resealEvery(this.docs, this.secrets(), {
      sealedOf: (stored) => ({ sealed: stored.sealed_key, aad: keyAad(stored.user_id, stored.fingerprint) }),
      withSealed: (stored, sealed) => ({ ...stored, sealed_key: sealed }),
    });
  }

  /** How many keys are sealed under each key id (key ids only: no key is needed). */
  async sealedCounts(): Promise<SealedCount[]> {
    return countSealed(this.docs, (stored) => stored.sealed_key);
  }

  private secrets(): SecretBox {
    if (this.box === null) throw new Error("no secret key is configured here, so private keys cannot be sealed or read");
    return this.box;
  }
}

function publicPart(stored: StoredPrivateKey): PrivateKeyInfo {
  const { sealed_key: _sealed, ...info } = stored;
  return info;
}

/** What a sealed key is bound to: its purpose, user and fingerprint. */
const keyAad = (userId: string, fingerprint: string) => JSON.stringify(["caliopen private key", userId, fingerprint]);
const keyToken = (id: string) => id.replace(/[^A-Za-z0-9_-]/g, "_");
const docKey = (userId: string, fingerprint: string) => `${keyToken(userId)}.${fingerprint.replace(/[^A-Fa-f0-9]/g, "_")}`;
