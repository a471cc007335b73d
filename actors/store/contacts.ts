// Contacts of a user, with the lookup from an address (email or social identity) to the contact. Listed by
// title from a sorted index (see listings.ts): a page costs the same whatever the user holds.
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import { ListedDocuments } from "./listed-documents.ts";
import { readListingPage } from "./listing-page.ts";
import { type Listings, pickFromEvery, userToken } from "./listings.ts";
import { hashed, type Lookups } from "./lookups.ts";
import type { Contact, Page } from "./model.ts";
import { encodeCursor, type PageRequest, pageWindow } from "./paging.ts";
import type { Order, Position, SortedIndex } from "./sorted-index.ts";

/** By title, then id, as the user's locale-free collation orders them. */
export const byTitle: Order = (a, b) => a[0].localeCompare(b[0]) || a[1].localeCompare(b[1]);

export class ContactStore {
  constructor(
    private readonly docs: KvDocuments<Contact>,
    private readonly lookups: Lookups,
    private readonly listings: Listings,
  ) {
    this.listed = new ListedDocuments(docs, (contact) => ({ index: this.index(contact.user_id), position: positionOf(contact) }));
  }

  private readonly listed: ListedDocuments<Contact>;

  async create(contact: Contact): Promise<Contact> {
    await this.listed.create(docKey(contact.user_id, contact.contact_id), contact);
    await this.indexAddresses(contact, []);
    return contact;
  }

  async get(userId: string, contactId: string): Promise<Contact | null> {
    return (await this.docs.get(docKey(userId, contactId)))?.value ?? null;
  }

  /** By title, then id; `next` is a cursor for the page after (`after`). */
  async list(userId: string, page: PageRequest = {}): Promise<Page<Contact>> {
    const window = pageWindow(page);
    const index = this.index(userId);
    await this.listings.ensureBuilt(index.tree, async () => {
      const now = Date.now();
      await index.insert(await pickFromEvery(this.docs, `${userId}.*`, (contact) => [...positionOf(contact), now] as const));
    });
    const read = await readListingPage(
      { indexes: [index], load: (id) => this.get(userId, id), placeOf: (contact) => ({ tree: index.tree, position: positionOf(contact) }) },
      window,
    );
    return { items: read.items, total: read.total, offset: window.offset, limit: window.limit, next: read.next === null ? null : encodeCursor(read.next) };
  }

  /** Changes a contact by compare-and-swap and keeps the address lookup and its listing entry in step. */
  async update(userId: string, contactId: string, change: (current: Contact) => Contact | null): Promise<Contact | null> {
    const { before, after } = await this.listed.update(docKey(userId, contactId), change);
    if (after !== null && before !== null) await this.indexAddresses(after, addressesOf(before));
    return after;
  }

  /** The contact holding this address (an email, or a social identity's name), if any. */
  async byAddress(userId: string, address: string): Promise<Contact | null> {
    const id = await this.lookups.get(addressKey(userId, address));
    return id === null ? null : this.get(userId, id);
  }

  private index(userId: string): SortedIndex {
    return this.listings.index(`c.${userToken(userId)}`, byTitle);
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

const positionOf = (contact: Contact): Position => [contact.title, contact.contact_id];
const docKey = (userId: string, contactId: string) => `${userId}.${contactId}`;
const addressKey = (userId: string, address: string) => `contactaddr.${userId}.${hashed(address.trim().toLowerCase())}`;
