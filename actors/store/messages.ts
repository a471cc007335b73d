// Messages and drafts of a user, and the lookup by external Message-ID that de-duplicates imports. Their
// listing, newest first, reads two sorted indexes (mail, drafts; see listings.ts) merged, so a page costs
// the same whatever the user holds.
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import type { Discussion, DiscussionStore } from "./discussions.ts";
import { ListedDocuments, type Place } from "./listed-documents.ts";
import { readListingPage } from "./listing-page.ts";
import { byCodeUnits, type Listings, pickFromEvery, userToken } from "./listings.ts";
import { hashed, type Lookups } from "./lookups.ts";
import type { Message, Page } from "./model.ts";
import { encodeCursor, type PageRequest, pageOf, pageWindow } from "./paging.ts";
import type { Order, Position, SortedIndex } from "./sorted-index.ts";

export interface MessageFilter extends PageRequest {
  is_draft?: boolean;
  /** Reads every message of the user (no index by discussion): for a tool, not for the API. */
  discussion_id?: string;
}

/** Newest first: date, then id, both descending. */
export const newestFirst: Order = (a, b) => byCodeUnits(b[0], a[0]) || byCodeUnits(b[1], a[1]);

export class MessageStore {
  constructor(
    private readonly docs: KvDocuments<Message>,
    private readonly lookups: Lookups,
    private readonly listings: Listings,
    private readonly discussions: DiscussionStore,
  ) {
    this.listed = new ListedDocuments(docs, (message) => [this.placeOf(message), ...discussions.placesOf(message)]);
  }

  private readonly listed: ListedDocuments<Message>;

  async create(message: Message): Promise<Message> {
    await this.discussions.arriving(message);
    await this.listed.create(docKey(message.user_id, message.message_id), message);
    return message;
  }

  async get(userId: string, messageId: string): Promise<Message | null> {
    return (await this.docs.get(docKey(userId, messageId)))?.value ?? null;
  }

  /** Newest first; `next` is a cursor for the page after (`after`), which costs what a first page does. */
  async list(userId: string, filter: MessageFilter = {}): Promise<Page<Message>> {
    const window = pageWindow(filter);
    if (filter.discussion_id !== undefined) return this.listReadingAll(userId, filter, window.after);
    await this.ensureIndexed(userId);
    const [mail, drafts] = this.indexes(userId);
    const indexes = filter.is_draft === undefined ? [mail, drafts] : [filter.is_draft ? drafts : mail];
    const page = await readListingPage(
      {
        indexes,
        load: (id) => this.get(userId, id),
        placeOf: (message) => {
          const place = this.placeOf(message);
          return { tree: place.index.tree, position: place.position };
        },
      },
      window,
    );
    return { items: page.items, total: page.total, offset: window.offset, limit: window.limit, next: page.next === null ? null : encodeCursor(page.next) };
  }

  /** Changes a message by compare-and-swap; `change` returns the new message or null for no change. */
  async update(userId: string, messageId: string, change: (current: Message) => Message | null): Promise<Message | null> {
    const { before, after } = await this.listed.update(docKey(userId, messageId), change, async (current, next) => {
      if (movesInDiscussions(current, next)) await this.discussions.arriving(next);
    });
    // Where it arrived was seen to before the write; the discussion it left (or where it moved back in
    // time) follows its index now.
    if (before !== null && after !== null && !before.is_draft && movesInDiscussions(before, after)) {
      await this.discussions.refresh(userId, before.discussion_id, messageId, (id) => this.get(userId, id));
    }
    return after;
  }

  /**
   * Removes a message; a missing one is fine. Not for a received message while its external id stays
   * claimed: the next import of that id would store it again (see storeOnce).
   */
  async delete(userId: string, messageId: string): Promise<void> {
    const stored = await this.get(userId, messageId);
    await this.listed.delete(docKey(userId, messageId));
    if (stored !== null && !stored.is_draft) await this.discussions.refresh(userId, stored.discussion_id, messageId, (id) => this.get(userId, id));
  }

  /** The user's discussions, newest activity first (see discussions.ts). */
  async listDiscussions(userId: string, request: PageRequest = {}): Promise<Page<Discussion>> {
    await this.discussions.ensureBuilt(userId, this.docs, (id) => this.get(userId, id));
    return this.discussions.list(userId, request, (id) => this.get(userId, id));
  }

  /** One discussion's messages, newest first; an empty page for a discussion the user does not have. */
  async discussionMessages(userId: string, discussionId: string, request: PageRequest = {}): Promise<Page<Message>> {
    await this.discussions.ensureBuilt(userId, this.docs, (id) => this.get(userId, id));
    return this.discussions.messagesPage(userId, discussionId, request, (id) => this.get(userId, id));
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

  /** Builds the user's indexes from messages stored without entries (by an earlier version), once. */
  async ensureIndexed(userId: string): Promise<void> {
    await this.listings.ensureBuilt(`m.${userToken(userId)}`, async () => {
      const [mail, drafts] = this.indexes(userId);
      const now = Date.now();
      const placed = await pickFromEvery(this.docs, `${userId}.*`, (message) => ({ draft: message.is_draft, entry: [...positionOf(message), now] as const }));
      await mail.insert(placed.filter((place) => !place.draft).map((place) => place.entry));
      await drafts.insert(placed.filter((place) => place.draft).map((place) => place.entry));
    });
  }

  /** Every message of the user, filtered and sorted in memory: what listing cost before the indexes. */
  private async listReadingAll(userId: string, filter: MessageFilter, after: Position | null): Promise<Page<Message>> {
    const all = (await this.docs.values(`${userId}.*`)).filter(
      (message) =>
        (filter.is_draft === undefined || message.is_draft === filter.is_draft) &&
        (filter.discussion_id === undefined || message.discussion_id === filter.discussion_id) &&
        (after === null || newestFirst(positionOf(message), after) > 0),
    );
    all.sort((a, b) => newestFirst(positionOf(a), positionOf(b)));
    return pageOf(all, filter);
  }

  private indexes(userId: string): [mail: SortedIndex, drafts: SortedIndex] {
    const user = userToken(userId);
    return [this.listings.index(`m.${user}.mail`, newestFirst), this.listings.index(`m.${user}.drafts`, newestFirst)];
  }

  private placeOf(message: Message): Place {
    const [mail, drafts] = this.indexes(message.user_id);
    return { index: message.is_draft ? drafts : mail, position: positionOf(message) };
  }
}

const positionOf = (message: Message): Position => [message.date, message.message_id];

/** Whether a change moves the message in or out of a discussion, or within it. */
const movesInDiscussions = (before: Message, after: Message) =>
  before.is_draft !== after.is_draft || before.discussion_id !== after.discussion_id || before.date !== after.date;

const CLAIM_READ_ATTEMPTS = 20;
const CLAIM_READ_PAUSE_MS = 50;

const docKey = (userId: string, messageId: string) => `${userId}.${messageId}`;
const externalKey = (userId: string, externalId: string) => `msgref.${userId}.${hashed(externalId)}`;
