// Reading one user's notifications from their JetStream stream (actors/notifications/notification-stream.ts):
// pages of the recent ones, and a live feed that starts right after a given stream sequence (an event
// stream's Last-Event-ID). The subject read is built from the authenticated user's id and nothing else,
// so a user reads only their own; what is read is checked against the contract's shape (anyone allowed
// to publish on the subject could have put something else there) and the user it names.

import { type Consumer, DeliverPolicy, type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  MAX_NOTIFICATION_ELEMENTS,
  NOTIFICATION_ELEMENT_FIELDS,
  NOTIFICATION_FIELDS,
  type Notification,
  type NotificationElement,
  notificationSubject,
} from "../contract/events-table.ts";
import { decodeBusJson } from "../runtime/json.ts";
import { validatePayload } from "../runtime/payload-schema.ts";
import type { Subjects } from "../runtime/subjects.ts";

/** A notification as the API shows it: with its stream sequence, the event stream's `id`. */
export type StoredNotification = Notification & { seq: number };

/** A page: the newest first (`before`), or the oldest after `since`. `next` continues it; null when nothing is left. */
export interface NotificationPage {
  items: StoredNotification[];
  next: number | null;
}

/** Where a live feed starts: after this sequence, or with what is published from now on. */
export type FeedStart = { after: number } | "now";

export interface LiveFeed {
  /** The feed gives the notifications after this sequence (with "now", the last one stored when it started). */
  after: number;
  messages: AsyncIterable<StoredNotification>;
  /**
   * Why the client may have missed notifications, or null: its Last-Event-ID is older than the history
   * (kept 7 days, bounded), or unknown here (another deployment's, or a history made anew).
   */
  gap: string | null;
  stop(): Promise<void>;
}

/** Notifications pulled ahead of a slow reader, at most: what a live feed holds in memory (a notification is at most about 20 KiB). */
const LIVE_PREFETCH = 8;
/** How long a consumer of this API outlives its reader (one whose node died is not left behind for long). */
const CONSUMER_INACTIVE_MS = 30_000;
/** How long one pull of a page waits: the messages it asks for are there already. */
const PAGE_FETCH_MS = 2_000;

export class NotificationFeed {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly subjects: Subjects,
    readonly stream: string,
  ) {}

  static async open(nc: NatsConnection, subjects: Subjects, stream: string): Promise<NotificationFeed> {
    return new NotificationFeed(jetstream(nc), await jetstreamManager(nc), subjects, stream);
  }

  /** The user's notifications with a sequence above `since`, oldest first. */
  async since(userId: string, since: number, limit: number): Promise<NotificationPage> {
    const consumer = await this.js.consumers.get(this.stream, {
      filter_subjects: this.subjectOf(userId),
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: since + 1,
      inactive_threshold: CONSUMER_INACTIVE_MS,
    });
    try {
      const pending = (await consumer.info(true)).num_pending;
      const pulled = await this.pull(consumer, Math.min(pending, limit));
      const items: StoredNotification[] = [];
      for (const message of pulled) {
        const read = readNotification(message.data, userId, message.seq);
        if (read !== null) items.push(read);
      }
      // After the last one read, shown or not (one that is not a notification is passed over).
      const last = pulled.at(-1)?.seq ?? null;
      return { items, next: pending > limit && last !== null ? last : null };
    } finally {
      await consumer.delete().catch(() => false);
    }
  }

  /**
   * The user's newest notifications below `before` (all when null), newest first. A user's history is
   * bounded (CALIOPEN_NOTIFICATIONS_MAX_PER_USER), and this walks only its sequences (headers, no bodies)
   * to find the newest, then reads those.
   */
  async newest(userId: string, before: number | null, limit: number): Promise<NotificationPage> {
    const consumer = await this.js.consumers.get(this.stream, {
      filter_subjects: this.subjectOf(userId),
      deliver_policy: DeliverPolicy.All,
      headers_only: true,
      inactive_threshold: CONSUMER_INACTIVE_MS,
    });
    // The sequences of the newest `limit`, oldest first.
    const newest: number[] = [];
    let older = false;
    try {
      let pending = (await consumer.info(true)).num_pending;
      walk: while (pending > 0) {
        const batch = await this.pull(consumer, Math.min(pending, 256));
        if (batch.length === 0) break;
        for (const message of batch) {
          pending -= 1;
          if (before !== null && message.seq >= before) break walk;
          newest.push(message.seq);
          if (newest.length > limit) {
            newest.shift();
            older = true;
          }
        }
      }
    } finally {
      await consumer.delete().catch(() => false);
    }
    const subject = this.subjectOf(userId);
    const read = await Promise.all(
      [...newest].reverse().map(async (seq) => {
        const stored = await this.jsm.streams.getMessage(this.stream, { seq }).catch(() => null);
        return stored === null || stored.subject !== subject ? null : readNotification(stored.data, userId, seq);
      }),
    );
    const items = read.filter((item): item is StoredNotification => item !== null);
    return { items, next: older ? (newest[0] ?? null) : null };
  }

  /** The user's notifications from `start` on, as they are published, until stopped. */
  async live(userId: string, start: FeedStart): Promise<LiveFeed> {
    const subject = this.subjectOf(userId);
    // "Now" is a sequence too, so that nothing published while the consumer is made falls between.
    const { first_seq: first, last_seq: last } = (await this.jsm.streams.info(this.stream)).state;
    let after = last;
    let gap: string | null = null;
    if (start !== "now") {
      if (start.after > last) gap = "Last-Event-ID is not a notification of this history: notifications may have been missed";
      else {
        if (start.after + 1 < first) gap = "Last-Event-ID is older than the history kept: notifications may have been missed";
        after = start.after;
      }
    }
    const consumer = await this.js.consumers.get(this.stream, {
      filter_subjects: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: after + 1,
      inactive_threshold: CONSUMER_INACTIVE_MS,
    });
    const messages = await consumer.consume({ max_messages: LIVE_PREFETCH });
    async function* notifications(): AsyncGenerator<StoredNotification> {
      for await (const message of messages) {
        const read = readNotification(message.data, userId, message.seq);
        if (read !== null) yield read;
      }
    }
    return {
      after,
      messages: notifications(),
      gap,
      stop: async () => {
        await messages.close().catch(() => undefined);
        await consumer.delete().catch(() => false);
      },
    };
  }

  private subjectOf(userId: string): string {
    const subject = notificationSubject(userId);
    if (subject === null) throw new Error(`user id ${JSON.stringify(userId.slice(0, 80))} cannot name a notification subject`);
    return this.subjects.wire(subject);
  }

  /** `count` messages the consumer has already (it was just made: they are there), in order. */
  private async pull(consumer: Consumer, count: number): Promise<{ seq: number; data: Uint8Array }[]> {
    if (count <= 0) return [];
    const out: { seq: number; data: Uint8Array }[] = [];
    const batch = await consumer.fetch({ max_messages: count, expires: PAGE_FETCH_MS });
    for await (const message of batch) {
      out.push({ seq: message.seq, data: message.data });
      if (out.length >= count) break;
    }
    return out;
  }
}

/** A stored notification, checked; null when it is not one, or not this user's. */
export function readNotification(data: Uint8Array, userId: string, seq: number): StoredNotification | null {
  const decoded = decodeBusJson(data);
  if (!decoded.ok) return null;
  const checked = validatePayload(NOTIFICATION_FIELDS, decoded.value);
  if (!checked.ok || checked.value.user_id !== userId) return null;
  const { type, size, emitted_at, elements } = checked.value;
  if (type !== "new_message" && type !== "message_sent") return null;
  if (!Number.isInteger(size) || size < 1) return null;
  const notification: StoredNotification = { seq, type, user_id: userId, size, emitted_at };
  if (elements === undefined) return notification;
  if (!Array.isArray(elements) || elements.length > MAX_NOTIFICATION_ELEMENTS) return null;
  const listed: NotificationElement[] = [];
  for (const element of elements) {
    const entry = validatePayload(NOTIFICATION_ELEMENT_FIELDS, element);
    if (!entry.ok) return null;
    listed.push(knownFields(entry.value));
  }
  return { ...notification, elements: listed };
}

/** The contract's fields of an element, nothing else (a client is shown what the contract names). */
function knownFields(element: NotificationElement): NotificationElement {
  const { message_id, discussion_id, identity_id, protocol, is_received, is_unread, date, from, subject, excerpt } = element;
  return {
    message_id,
    discussion_id,
    identity_id,
    protocol,
    is_received,
    is_unread,
    date,
    ...(from !== undefined && { from }),
    ...(subject !== undefined && { subject }),
    ...(excerpt !== undefined && { excerpt }),
  };
}
