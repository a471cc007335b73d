// Messages and drafts of a user, and the lookup by external Message-ID that de-duplicates imports.
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import { hashed, type Lookups } from "./lookups.ts";
import type { Message, Page } from "./model.ts";
import { type PageRequest, pageOf } from "./paging.ts";

export interface MessageFilter extends PageRequest {
  is_draft?: boolean;
  discussion_id?: string;
}

export class MessageStore {
  constructor(
    private readonly docs: KvDocuments<Message>,
    private readonly lookups: Lookups,
  ) {}

  async create(message: Message): Promise<Message> {
    await this.docs.create(docKey(message.user_id, message.message_id), message);
    return message;
  }

  async get(userId: string, messageId: string): Promise<Message | null> {
    return (await this.docs.get(docKey(userId, messageId)))?.value ?? null;
  }

  /** Newest first. */
  async list(userId: string, filter: MessageFilter = {}): Promise<Page<Message>> {
    const all = (await this.docs.values(`${userId}.*`)).filter(
      (message) =>
        (filter.is_draft === undefined || message.is_draft === filter.is_draft) &&
        (filter.discussion_id === undefined || message.discussion_id === filter.discussion_id),
    );
    all.sort((a, b) => b.date.localeCompare(a.date) || b.message_id.localeCompare(a.message_id));
    return pageOf(all, filter);
  }

  /** Changes a message by compare-and-swap; `change` returns the new message or null for no change. */
  async update(userId: string, messageId: string, change: (current: Message) => Message | null): Promise<Message | null> {
    return this.docs.update(docKey(userId, messageId), change);
  }

  /**
   * Removes a message; a missing one is fine. Not for a received message while its external id stays
   * claimed: the next import of that id would store it again (see storeOnce).
   */
  async delete(userId: string, messageId: string): Promise<void> {
    await this.docs.delete(docKey(userId, messageId));
  }

  /**
   * The id of the message that claimed this external Message-ID, without reading the message (which
   * may not be stored yet, see claimExternalId): enough to point at it, as a reply points at its parent.
   */
  async idByExternalId(userId: string, externalMessageId: string): Promise<string | null> {
    return this.lookups.get(externalKey(userId, externalMessageId));
  }

  /** The message that claimed this external Message-ID (see claimExternalId). */
  async byExternalId(userId: string, externalMessageId: string): Promise<Message | null> {
    const id = await this.lookups.get(externalKey(userId, externalMessageId));
    return id === null ? null : this.get(userId, id);
  }

  /**
   * Records that `externalMessageId` is `messageId` for this user. Returns the id that holds it: the
   * given one, or the message that claimed it first (two imports of one mail racing), which may not be
   * stored yet (imports claim before they store, see storeOnce).
   */
  async claimExternalId(userId: string, externalMessageId: string, messageId: string): Promise<string> {
    const key = externalKey(userId, externalMessageId);
    const claimed = await this.lookups.claimOrHolder(key, messageId);
    if (claimed !== null) return claimed;
    // Taken. A replica answering the read may not have the claim yet: wait for it, never take the id
    // for ours (that would be a second message under one external id).
    for (let attempt = 1; ; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, CLAIM_READ_PAUSE_MS));
      const holder = await this.lookups.get(key);
      if (holder !== null) return holder;
      if (attempt >= CLAIM_READ_ATTEMPTS) throw new Error(`the external id of a message of user ${userId} is claimed, but the claim cannot be read`);
    }
  }
}

const CLAIM_READ_ATTEMPTS = 20;
const CLAIM_READ_PAUSE_MS = 50;

const docKey = (userId: string, messageId: string) => `${userId}.${messageId}`;
const externalKey = (userId: string, externalId: string) => `msgref.${userId}.${hashed(externalId)}`;
