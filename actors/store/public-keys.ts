// Public keys attached to a contact (a user's own keys hang on the user's own contact card).
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import { DocumentExists } from "../../runtime/kv-documents.ts";
import { Conflict } from "./errors.ts";
import type { PublicKey } from "./model.ts";

export class PublicKeyStore {
  constructor(private readonly docs: KvDocuments<PublicKey>) {}

  /** Adds a key; the same fingerprint twice on one contact is a Conflict. */
  async add(key: PublicKey): Promise<PublicKey> {
    const known = await this.list(key.user_id, key.resource_id);
    if (known.some((other) => other.fingerprint === key.fingerprint)) throw new Conflict(`key ${key.fingerprint} is already known for this contact`);
    try {
      await this.docs.create(docKey(key.user_id, key.resource_id, key.key_id), key);
    } catch (err) {
      if (err instanceof DocumentExists) throw new Conflict(`key ${key.key_id} already exists`);
      throw err;
    }
    return key;
  }

  async get(userId: string, contactId: string, keyId: string): Promise<PublicKey | null> {
    return (await this.docs.get(docKey(userId, contactId, keyId)))?.value ?? null;
  }

  async list(userId: string, contactId: string): Promise<PublicKey[]> {
    return (await this.docs.values(`${userId}.${contactId}.*`)).sort((a, b) => a.date_insert.localeCompare(b.date_insert));
  }

  /** Returns false when there was no such key. */
  async delete(userId: string, contactId: string, keyId: string): Promise<boolean> {
    if ((await this.get(userId, contactId, keyId)) === null) return false;
    await this.docs.delete(docKey(userId, contactId, keyId));
    return true;
  }
}

const docKey = (userId: string, contactId: string, keyId: string) => `${userId}.${contactId}.${keyId}`;
