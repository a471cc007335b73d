// A user's discussions, newest activity first, paged at the cost of a page however many messages the
// user holds. Each message outside drafts is listed in its discussion's own index (and, while unread, in
// its discussion's unread index): a discussion's count and unread count are those indexes' counts, its
// messages a page of the first. A summary per discussion (its last message) is listed in the user's
// discussions index by the date of that message: it orders the listing, the discussion's own index says
// what is shown. The summary is moved to a message before the message is written, so a crash leaves it
// ahead, never missing; a reader that finds it ahead or behind its discussion's index sets it right.
import { DocumentContention, DocumentExists, type KvDocuments } from "../../runtime/kv-documents.ts";
import { ListedDocuments, type Place } from "./listed-documents.ts";
import { readListingPage } from "./listing-page.ts";
import { byCodeUnits, type Listings, pickFromEvery, userToken } from "./listings.ts";
import { hashed } from "./lookups.ts";
import type { Message, Page } from "./model.ts";
import { encodeCursor, type PageRequest, pageWindow } from "./paging.ts";
import { type Order, type Position, SortedIndex } from "./sorted-index.ts";
import { WriteBatches } from "./write-batches.ts";

/** Newest first: date, then id, both descending. */
const newestFirst: Order = (a, b) => byCodeUnits(b[0], a[0]) || byCodeUnits(b[1], a[1]);

export interface DiscussionSummary {
  user_id: string;
  discussion_id: string;
  /** The discussion's newest message (or one being written, until a reader checks it). */
  last_message_id: string;
  last_date: string;
}

/** A discussion as a listing shows it. */
export interface Discussion {
  discussion_id: string;
  last_message: Message;
  /** When its newest message was written or received. */
  date: string;
  total_count: number;
  unread_count: number;
}

/** The part of a message a discussion keeps track of. */
export type Listed = Pick<Message, "user_id" | "message_id" | "discussion_id" | "date" | "is_draft" | "is_unread">;

export class DiscussionStore {
  private readonly listed: ListedDocuments<DiscussionSummary>;
  private readonly arrivals = new WriteBatches<Listed>();

  constructor(
    private readonly summaries: KvDocuments<DiscussionSummary>,
    private readonly listings: Listings,
  ) {
    this.listed = new ListedDocuments(summaries, (summary) => ({
      index: this.discussions(summary.user_id),
      position: [summary.last_date, summary.discussion_id],
    }));
  }

  /** The entries a message has in its discussion's indexes (none for a draft). */
  placesOf(message: Listed): Place[] {
    if (message.is_draft) return [];
    const position: Position = [message.date, message.message_id];
    const all = { index: this.messagesOf(message.user_id, message.discussion_id), position };
    return message.is_unread ? [all, { index: this.unreadOf(message.user_id, message.discussion_id), position }] : [all];
  }

  /**
   * Before a message is written into its discussion: the summary moves to it if it is the newest.
   * Messages of one discussion arriving together (an import) move it once, to the newest of them.
   */
  async arriving(message: Listed): Promise<void> {
    if (message.is_draft) return;
    await this.arrivals.push(summaryKey(message.user_id, message.discussion_id), "arrive", [message], async (_kind, arrived) => {
      const newest = arrived.reduce((best, next) => (newestFirst([next.date, next.message_id], [best.date, best.message_id]) < 0 ? next : best));
      await this.arrive(newest);
      return arrived.length;
    });
  }

  private async arrive(message: Listed): Promise<void> {
    const key = summaryKey(message.user_id, message.discussion_id);
    const summary: DiscussionSummary = {
      user_id: message.user_id,
      discussion_id: message.discussion_id,
      last_message_id: message.message_id,
      last_date: message.date,
    };
    const newer = (current: DiscussionSummary) =>
      newestFirst([message.date, message.message_id], [current.last_date, current.last_message_id]) < 0 ? summary : null;
    try {
      if ((await this.listed.update(key, newer)).before !== null) return;
    } catch (err) {
      // Many messages of one discussion written at once: a summary that lags is set right by its readers.
      if (err instanceof DocumentContention) return;
      throw err;
    }
    try {
      await this.listed.create(key, summary);
    } catch (err) {
      // Another writer made it first: this message is newer than that one's, or not.
      if (!(err instanceof DocumentExists)) throw err;
      await this.listed.update(key, newer);
    }
  }

  /**
   * After `leaving` left a discussion (deleted, moved, back to a draft): the summary follows the
   * discussion's index. One with no message left goes, unless the summary names another message (one
   * being written right now).
   */
  async refresh(userId: string, discussionId: string, leaving: string, load: (id: string) => Promise<Message | null>): Promise<void> {
    const newest = (await this.messagesPage(userId, discussionId, { limit: 1 }, load)).items[0];
    const key = summaryKey(userId, discussionId);
    if (newest !== undefined) return this.settle(key, newest);
    const current = (await this.summaries.get(key))?.value;
    if (current?.last_message_id === leaving) await this.listed.delete(key);
  }

  /** Points the summary at `newest`, its discussion's newest message (creating it if need be). */
  private async settle(key: string, newest: Message): Promise<void> {
    const summary: DiscussionSummary = {
      user_id: newest.user_id,
      discussion_id: newest.discussion_id,
      last_message_id: newest.message_id,
      last_date: newest.date,
    };
    const changed = await this.listed.update(key, (current) =>
      current.last_message_id === summary.last_message_id && current.last_date === summary.last_date ? null : summary,
    );
    if (changed.before !== null) return;
    await this.listed.create(key, summary).catch((err: unknown) => {
      if (!(err instanceof DocumentExists)) throw err;
    });
  }

  /** The user's discussions, newest activity first. */
  async list(userId: string, request: PageRequest, load: (id: string) => Promise<Message | null>): Promise<Page<Discussion>> {
    const window = pageWindow(request);
    const index = this.discussions(userId);
    const page = await readListingPage(
      {
        indexes: [index],
        load: async (discussionId) => (await this.summaries.get(summaryKey(userId, discussionId)))?.value ?? null,
        placeOf: (summary) => ({ tree: index.tree, position: [summary.last_date, summary.discussion_id] }),
      },
      window,
    );
    const found = await Promise.all(page.items.map((summary) => this.shown(summary, load)));
    const items = found.filter((discussion): discussion is Discussion => discussion !== null);
    return { items, total: page.total, offset: window.offset, limit: window.limit, next: page.next === null ? null : encodeCursor(page.next) };
  }

  /** A discussion's messages, newest first (drafts are not in it). */
  async messagesPage(userId: string, discussionId: string, request: PageRequest, load: (id: string) => Promise<Message | null>): Promise<Page<Message>> {
    const window = pageWindow(request);
    const index = this.messagesOf(userId, discussionId);
    const page = await readListingPage(
      {
        indexes: [index],
        load,
        placeOf: (message) => ({
          tree: message.is_draft ? "" : this.messagesOf(message.user_id, message.discussion_id).tree,
          position: [message.date, message.message_id],
        }),
      },
      window,
    );
    return { items: page.items, total: page.total, offset: window.offset, limit: window.limit, next: page.next === null ? null : encodeCursor(page.next) };
  }

  /**
   * Builds the discussions of messages stored before they were kept (once per user): their entries, then
   * each discussion's summary.
   */
  async ensureBuilt(userId: string, messages: KvDocuments<Message>, load: (id: string) => Promise<Message | null>): Promise<void> {
    await this.listings.ensureBuilt(`d.${userToken(userId)}`, async () => {
      const now = Date.now();
      const picked = await pickFromEvery(messages, `${userId}.*`, (message) => ({ discussion: message.discussion_id, places: this.placesOf(message) }));
      const byIndex = new Map<string, { index: SortedIndex; positions: Position[] }>();
      for (const { places } of picked) {
        for (const place of places) {
          const known = byIndex.get(place.index.tree) ?? { index: place.index, positions: [] };
          known.positions.push(place.position);
          byIndex.set(place.index.tree, known);
        }
      }
      for (const { index, positions } of byIndex.values()) await index.insert(positions.map((position) => [...position, now] as const));
      const discussions = new Set(picked.filter((entry) => entry.places.length > 0).map((entry) => entry.discussion));
      for (const discussionId of discussions) {
        const [newest] = (await this.messagesPage(userId, discussionId, { limit: 1 }, load)).items;
        if (newest !== undefined) await this.settle(summaryKey(userId, discussionId), newest);
      }
    });
  }

  /**
   * What a listing shows of a summary: its discussion's newest message as the index has it (the summary
   * set right when it lags or runs ahead), and the counts. Null while the discussion has no message
   * written yet (its first one in flight).
   */
  private async shown(summary: DiscussionSummary, load: (id: string) => Promise<Message | null>): Promise<Discussion | null> {
    const [newest] = (await this.messagesPage(summary.user_id, summary.discussion_id, { limit: 1 }, load)).items;
    if (newest === undefined) return null;
    if (newest.message_id !== summary.last_message_id || newest.date !== summary.last_date)
      await this.settle(summaryKey(summary.user_id, summary.discussion_id), newest);
    const [total, unread] = await Promise.all([
      this.messagesOf(summary.user_id, summary.discussion_id).count(),
      this.unreadOf(summary.user_id, summary.discussion_id).count(),
    ]);
    return {
      discussion_id: summary.discussion_id,
      last_message: newest,
      date: newest.date,
      total_count: Math.max(1, SortedIndex.countOf(total)),
      unread_count: SortedIndex.countOf(unread),
    };
  }

  private discussions(userId: string): SortedIndex {
    return this.listings.index(`m.${userToken(userId)}.discussions`, newestFirst);
  }

  private messagesOf(userId: string, discussionId: string): SortedIndex {
    return this.listings.index(`m.${userToken(userId)}.d.${discussionTokenOf(discussionId)}`, newestFirst);
  }

  private unreadOf(userId: string, discussionId: string): SortedIndex {
    return this.listings.index(`m.${userToken(userId)}.u.${discussionTokenOf(discussionId)}`, newestFirst);
  }
}

/** A discussion id as a key token (any string an earlier version stored becomes a valid one). */
const discussionTokenOf = (discussionId: string) => hashed(`discussion:${discussionId}`).slice(0, 32);
const summaryKey = (userId: string, discussionId: string) => `${userToken(userId)}.${discussionTokenOf(discussionId)}`;
