// Messages and drafts of a user, and the lookups that de-duplicate imports: by external Message-ID (the
// first message that had it) and by Message-ID and content (one message per mail).
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import { hashed, type Lookups } from "./lookups.ts";
import type { Message, Page } from "./model.ts";
import { pageOf, type PageRequest } from "./paging.ts";

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

  /** Removes a message (e.g. a copy that lost the race to import the same mail); a missing one is fine. */
  async delete(userId: string, messageId: string): Promise<void> {
    await this.docs.delete(docKey(userId, messageId));
  }

  /** The first message that claimed this external Message-ID (see claimExternalId). */
  async byExternalId(userId: string, externalMessageId: string): Promise<Message | null> {
    const id = await this.lookups.get(externalKey(userId, externalMessageId));
    return id === null ? null : this.get(userId, id);
  }

  /**
   * Records that `externalMessageId` is `messageId` for this user. Returns the id that holds it: the
   * given one, or the message that claimed it first (two imports of one mail racing).
   */
  async claimExternalId(userId: string, externalMessageId: string, messageId: string): Promise<string> {
    const key = externalKey(userId, externalMessageId);
    if (await this.lookups.claim(key, messageId)) return messageId;
    return (await this.lookups.get(key)) ?? messageId;
  }

  /** The message holding this external Message-ID with this content (see claimContent). */
  async byContent(userId: string, externalMessageId: string, contentSha256: string): Promise<Message | null> {
    const id = await this.contentHolder(userId, externalMessageId, contentSha256);
    return id === null ? null : this.get(userId, id);
  }

  /** The id of the message holding this Message-ID and content, without reading the message. */
  async contentHolder(userId: string, externalMessageId: string, contentSha256: string): Promise<string | null> {
    return this.lookups.get(contentKey(userId, externalMessageId, contentSha256));
  }

  /**
   * Records that the mail with this Message-ID and this content (a hash) is `messageId`: one message per
   * mail, however many times or ways it arrives. Returns the id that holds it, as claimExternalId.
   */
  async claimContent(userId: string, externalMessageId: string, contentSha256: string, messageId: string): Promise<string> {
    const key = contentKey(userId, externalMessageId, contentSha256);
    if (await this.lookups.claim(key, messageId)) return messageId;
    return (await this.lookups.get(key)) ?? messageId;
  }

  /** Undoes claimContent for a message that is being dropped (only while the claim is still its own). */
  async releaseContent(userId: string, externalMessageId: string, contentSha256: string, messageId: string): Promise<void> {
    const key = contentKey(userId, externalMessageId, contentSha256);
    if ((await this.lookups.get(key)) === messageId) await this.lookups.release(key);
  }
}

const docKey = (userId: string, messageId: string) => `${userId}.${messageId}`;
const externalKey = (userId: string, externalId: string) => `msgref.${userId}.${hashed(externalId)}`;
const contentKey = (userId: string, externalId: string, contentSha256: string) => `msgcontent.${userId}.${hashed(`${externalId}\n${contentSha256}`)}`;
