// Contacts of a user, with the lookup from an address (email or social identity) to the contact.
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import { hashed, type Lookups } from "./lookups.ts";
import type { Contact, Page } from "./model.ts";
import { type PageRequest, pageOf } from "./paging.ts";

export class ContactStore {
  constructor(
    private readonly docs: KvDocuments<Contact>,
    private readonly lookups: Lookups,
  ) {}

  async create(contact: Contact): Promise<Contact> {
    await this.docs.create(docKey(contact.user_id, contact.contact_id), contact);
    await this.indexAddresses(contact, []);
    return contact;
  }

  async get(userId: string, contactId: string): Promise<Contact | null> {
    return (await this.docs.get(docKey(userId, contactId)))?.value ?? null;
  }

  /** By title, then id. */
  async list(userId: string, page: PageRequest = {}): Promise<Page<Contact>> {
    const all = await this.docs.values(`${userId}.*`);
    all.sort((a, b) => a.title.localeCompare(b.title) || a.contact_id.localeCompare(b.contact_id));
    return pageOf(all, page);
  }

  /** Changes a contact by compare-and-swap and keeps the address lookup in step. */
  async update(userId: string, contactId: string, change: (current: Contact) => Contact | null): Promise<Contact | null> {
    let before: Contact | null = null;
    const updated = await this.docs.update(docKey(userId, contactId), (current) => {
      before = current;
      return change(current);
    });
    if (updated !== null && before !== null) await this.indexAddresses(updated, addressesOf(before));
    return updated;
  }

  /** The contact holding this address (an email, or a social identity's name), if any. */
  async byAddress(userId: string, address: string): Promise<Contact | null> {
    const id = await this.lookups.get(addressKey(userId, address));
    return id === null ? null : this.get(userId, id);
  }

  private async indexAddresses(contact: Contact, previous: string[]): Promise<void> {
    const now = addressesOf(contact);
    for (const gone of previous.filter((address) => !now.includes(address))) {
      if ((await this.lookups.get(addressKey(contact.user_id, gone))) === contact.contact_id) await this.lookups.release(addressKey(contact.user_id, gone));
    }
    // The first contact to claim an address keeps it.
    for (const address of now) await this.lookups.claim(addressKey(contact.user_id, address), contact.contact_id);
  }
}

function addressesOf(contact: Contact): string[] {
  return [...contact.emails.map((email) => email.address), ...contact.identities.map((identity) => identity.name)].map((value) => value.trim().toLowerCase());
}

const docKey = (userId: string, contactId: string) => `${userId}.${contactId}`;
const addressKey = (userId: string, address: string) => `contactaddr.${userId}.${hashed(address.trim().toLowerCase())}`;
