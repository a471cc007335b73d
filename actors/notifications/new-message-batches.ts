// Gathers the `new_message` notifications of each user into one, as the original's batch did for a sync
// (reference §5.7, §6.2 step 6): a notification says how many messages arrived (`size`) and lists them
// while they are at most MAX_NOTIFICATION_ELEMENTS (no list above, as the original). Imports that follow
// each other closely are one batch: it goes once no import joined it for `quietMs` (the end of a sync,
// of an SMTP delivery), and at the latest `maxDelayMs` after its first message, so that a sync of 10,000
// mails tells the user as it goes. A batch holds at most the listed elements and a count, and batches
// wait for at most `maxUsers` users at once (past it the oldest goes early): bounded memory, whatever
// is imported. What waits here is lost if the node dies within that moment; the messages are not.

import { MAX_NOTIFICATION_ELEMENTS, type NotificationElement } from "../../contract/events-table.ts";
import type { Message } from "../store/model.ts";
import type { NotificationSink } from "./notification-publisher.ts";
import { notificationElement } from "./notification-summary.ts";

export interface BatchTiming {
  /** A batch goes once no message joined it for this long. */
  quietMs: number;
  /** ... and at the latest this long after its first message. */
  maxDelayMs: number;
  /** Users whose batches wait at once, at most. */
  maxUsers: number;
}

export const DEFAULT_BATCH_TIMING: BatchTiming = { quietMs: 200, maxDelayMs: 2_000, maxUsers: 1_000 };

interface Batch {
  size: number;
  elements: NotificationElement[];
  firstAt: number;
  lastAt: number;
  timer: NodeJS.Timeout | null;
}

export class NewMessageBatches {
  private readonly batches = new Map<string, Batch>();

  constructor(
    private readonly sink: NotificationSink,
    private readonly timing: BatchTiming = DEFAULT_BATCH_TIMING,
    private readonly now: () => number = Date.now,
  ) {}

  /** One message imported for `userId`: it joins the user's batch. */
  add(userId: string, element: NotificationElement): void {
    this.join(userId, () => element);
  }

  /** A message an import stored for the first time, received by `identityId`. */
  imported(message: Message, identityId: string): void {
    this.join(message.user_id, () => notificationElement(message, identityId));
  }

  /** `element` is made only while the batch still lists its messages: a long sync's cost no more than a count. */
  private join(userId: string, element: () => NotificationElement): void {
    const now = this.now();
    let batch = this.batches.get(userId);
    if (batch === undefined) {
      const oldest = this.batches.keys().next();
      if (this.batches.size >= this.timing.maxUsers && oldest.done !== true) this.flush(oldest.value);
      batch = { size: 0, elements: [], firstAt: now, lastAt: now, timer: null };
      this.batches.set(userId, batch);
    }
    batch.size += 1;
    batch.lastAt = now;
    // Past the threshold the notification lists nothing: keep no more than it could list.
    if (batch.size <= MAX_NOTIFICATION_ELEMENTS) batch.elements.push(element());
    else if (batch.elements.length > 0) batch.elements = [];
    if (batch.timer === null) this.schedule(userId, batch);
  }

  /** Publishes the user's batch now, if one waits. */
  flush(userId: string): void {
    const batch = this.batches.get(userId);
    if (batch === undefined) return;
    this.batches.delete(userId);
    if (batch.timer !== null) clearTimeout(batch.timer);
    this.sink.publish({
      type: "new_message",
      user_id: userId,
      size: batch.size,
      emitted_at: new Date(this.now()).toISOString(),
      ...(batch.size <= MAX_NOTIFICATION_ELEMENTS && { elements: batch.elements }),
    });
  }

  /** Publishes every waiting batch (the node is stopping). */
  flushAll(): void {
    for (const userId of [...this.batches.keys()]) this.flush(userId);
  }

  /** Users with a batch waiting (for tests). */
  get waiting(): number {
    return this.batches.size;
  }

  /** Elements the user's waiting batch holds (for tests: what it costs in memory). */
  held(userId: string): number {
    return this.batches.get(userId)?.elements.length ?? 0;
  }

  /** One timer per batch, not one per message: when it fires early (messages came meanwhile), it is set again. */
  private schedule(userId: string, batch: Batch): void {
    const due = Math.min(batch.lastAt + this.timing.quietMs, batch.firstAt + this.timing.maxDelayMs);
    batch.timer = setTimeout(
      () => {
        batch.timer = null;
        if (this.batches.get(userId) !== batch) return;
        const now = this.now();
        if (now >= Math.min(batch.lastAt + this.timing.quietMs, batch.firstAt + this.timing.maxDelayMs)) this.flush(userId);
        else this.schedule(userId, batch);
      },
      Math.max(0, due - this.now()),
    );
    // A timer of its own must not keep a stopping process alive; the node flushes on its way out.
    batch.timer.unref();
  }
}
