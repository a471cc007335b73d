// The public keys a recipient's mail may be encrypted to: the keys stored on the user's contact holding
// that address (discovered by KeyAction or added by the user), each one read and kept only if it can
// encrypt now (not expired, not revoked, with a valid encryption key or subkey). Keys whose user ids
// name the address are preferred; when none of them is usable, any usable key of the contact is (the
// user put it on that person's card). When there is none, the verdict says why.
import { type Key, type PublicKey, readKey } from "openpgp";
import pLimit from "p-limit";
import { OPENPGP_CONFIG, OPENPGP_LIMITS } from "../keys/openpgp-limits.ts";
import type { PublicKey as StoredPublicKey } from "../store/model.ts";
import type { Store } from "../store/store.ts";

/** Keys of one contact read at most (a contact is the user's own data, but keys come from key servers). */
export const MAX_KEYS_PER_CONTACT = 16;
/** Recipients looked up at once. */
const LOOKUPS_AT_ONCE = 8;

export interface UsableKey {
  fingerprint: string;
  key_id: string;
  emails: string[];
  key: PublicKey;
}

export interface RecipientKeys {
  address: string;
  /** Usable keys, those naming the address first; empty when there is none. */
  keys: UsableKey[];
  /** Why there is no usable key (absent when there is one). */
  problem?: string;
}

/** Reads stored keys, once per key and per computation. */
export class KeyReader {
  private readonly byContact = new Map<string, Promise<{ usable: UsableKey[]; refused: string[]; total: number }>>();

  constructor(
    private readonly store: Store,
    private readonly userId: string,
    private readonly now: Date,
  ) {}

  /** The usable keys of a contact, and why the others are not. */
  contactKeys(contactId: string): Promise<{ usable: UsableKey[]; refused: string[]; total: number }> {
    let found = this.byContact.get(contactId);
    if (found === undefined) {
      found = this.store.keys.list(this.userId, contactId).then(async (stored) => {
        const considered = stored.slice(-MAX_KEYS_PER_CONTACT);
        const verdicts = await Promise.all(considered.map((key) => usableKey(key, this.now)));
        return {
          usable: verdicts.filter((v): v is UsableKey => !("refused" in v)),
          refused: verdicts.flatMap((v) => ("refused" in v ? [v.refused] : [])),
          total: stored.length,
        };
      });
      this.byContact.set(contactId, found);
    }
    return found;
  }

  /** The keys mail to `address` may be encrypted to. */
  async forAddress(address: string): Promise<RecipientKeys> {
    const contact = await this.store.contacts.byAddress(this.userId, address);
    if (contact === null) return { address, keys: [], problem: "no contact has this address" };
    const { usable, refused, total } = await this.contactKeys(contact.contact_id);
    if (total === 0) return { address, keys: [], problem: "the contact has no public key" };
    if (usable.length === 0) return { address, keys: [], problem: `no usable key: ${refused.join("; ")}` };
    const naming = usable.filter((key) => key.emails.includes(address));
    return { address, keys: naming.length > 0 ? naming : usable };
  }
}

/** The keys of every recipient, in order. */
export async function recipientsKeys(reader: KeyReader, addresses: string[]): Promise<RecipientKeys[]> {
  const limit = pLimit(LOOKUPS_AT_ONCE);
  return Promise.all(addresses.map((address) => limit(() => reader.forAddress(address))));
}

/** A stored key read and checked for encryption now, or why it cannot be used. */
export async function usableKey(stored: Pick<StoredPublicKey, "armored" | "fingerprint" | "emails">, now: Date): Promise<UsableKey | { refused: string }> {
  let key: Key;
  try {
    key = await readKey({ armoredKey: stored.armored, config: OPENPGP_LIMITS });
  } catch {
    return { refused: `${stored.fingerprint}: unreadable` };
  }
  try {
    await key.getEncryptionKey(undefined, now, undefined, OPENPGP_CONFIG);
  } catch {
    return { refused: `${stored.fingerprint}: ${await whyNot(key, now)}` };
  }
  const fingerprint = key.getFingerprint().toUpperCase();
  return { fingerprint, key_id: fingerprint.slice(-16), emails: stored.emails, key: key.toPublic() };
}

async function whyNot(key: Key, now: Date): Promise<string> {
  if (await key.isRevoked(undefined, undefined, now, OPENPGP_CONFIG).catch(() => false)) return "revoked";
  const expires = await key.getExpirationTime(undefined, OPENPGP_CONFIG).catch(() => null);
  if (expires === null || (expires instanceof Date && expires.getTime() <= now.getTime())) return "expired";
  return "no valid encryption subkey (expired or revoked subkeys, or none)";
}
