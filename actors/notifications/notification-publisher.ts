// Publishes notifications on `notifications.<user_id>` into JetStream (the stream of
// notification-stream.ts keeps them for the API), without ever making the caller wait or fail: a
// publish is handed to JetStream and forgotten, its outcome counted (and failures logged, at most one
// line every few seconds with how many went wrong meanwhile). At most `maxInFlight` publishes await
// JetStream's acknowledgement at once; beyond (JetStream slow or gone), a notification is dropped and
// counted rather than queued, so that an import of 10,000 mails while NATS struggles holds a bounded
// amount of memory. A notification is a hint: the messages themselves are stored whatever becomes of it.

import type { JetStreamClient } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import { type Notification, notificationSubject } from "../../contract/events-table.ts";
import { encodeJson } from "../../runtime/json.ts";
import type { Subjects } from "../../runtime/subjects.ts";

export const NOTIFICATIONS_METRIC = "caliopen_notifications_total";

/** What became of a notification: stored, a repeat JetStream discarded (same msgID), refused by JetStream, dropped here, or not publishable. */
export type PublishOutcome = "published" | "duplicate" | "failed" | "dropped" | "invalid";
const OUTCOMES: readonly PublishOutcome[] = ["published", "duplicate", "failed", "dropped", "invalid"];

export interface NotificationPublisherOptions {
  /** Publishes awaiting JetStream's acknowledgement at most; past it, new notifications are dropped. */
  maxInFlight: number;
  /** How long one publish waits for its acknowledgement. */
  timeoutMs: number;
  /** One warning at most this often; the others are counted into it. */
  warnEveryMs: number;
}

export const DEFAULT_PUBLISHER_OPTIONS: NotificationPublisherOptions = { maxInFlight: 1_024, timeoutMs: 5_000, warnEveryMs: 10_000 };

/** Where notifications go: the publisher, or a test's recorder. */
export interface NotificationSink {
  /** Never throws, never waits. `dedupId`: JetStream keeps one notification per id within its duplicate window. */
  publish(notification: Notification, dedupId?: string): void;
}

export class NotificationPublisher implements NotificationSink {
  private inFlight = 0;
  private readonly settled = new Set<() => void>();
  private readonly outcomes: Counter<"outcome">;
  private readonly counts: Record<PublishOutcome, number> = { published: 0, duplicate: 0, failed: 0, dropped: 0, invalid: 0 };
  private lastWarnAt = Number.NEGATIVE_INFINITY;
  private unreported = 0;

  constructor(
    private readonly js: JetStreamClient,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
    registry: Registry | null,
    private readonly options: NotificationPublisherOptions = DEFAULT_PUBLISHER_OPTIONS,
  ) {
    this.outcomes = new Counter({
      name: NOTIFICATIONS_METRIC,
      help: "Notifications of new mail, by outcome: published, duplicate (discarded by JetStream), failed (JetStream refused or timed out), dropped (too many awaiting JetStream), invalid",
      labelNames: ["outcome"],
      registers: registry === null ? [] : [registry],
    });
    for (const outcome of OUTCOMES) this.outcomes.inc({ outcome }, 0);
  }

  publish(notification: Notification, dedupId?: string): void {
    const subject = notificationSubject(notification.user_id);
    if (subject === null) {
      this.count("invalid");
      this.warn({ user_id: notification.user_id.slice(0, 80) }, "a notification's user id cannot be a subject token: not published");
      return;
    }
    if (this.inFlight >= this.options.maxInFlight) {
      this.count("dropped");
      this.warn({ in_flight: this.inFlight }, "too many notifications await JetStream: dropped");
      return;
    }
    this.inFlight += 1;
    this.js
      .publish(this.subjects.wire(subject), encodeJson(notification), {
        timeout: this.options.timeoutMs,
        ...(dedupId !== undefined && { msgID: dedupId }),
      })
      .then(
        (ack) => this.count(ack.duplicate ? "duplicate" : "published"),
        (err: Error) => {
          this.count("failed");
          this.warn({ err: err.message }, "a notification could not be stored in JetStream");
        },
      )
      .finally(() => {
        this.inFlight -= 1;
        if (this.inFlight === 0) for (const resolve of this.settled) resolve();
      });
  }

  /** How many notifications had each outcome on this node (for tests and the shutdown log). */
  get outcomeCounts(): Readonly<Record<PublishOutcome, number>> {
    return this.counts;
  }

  /** Waits (at most `timeoutMs`) for the publishes in flight: a stopping node lets them reach JetStream. */
  async settle(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    let resolve = () => {};
    const done = new Promise<void>((settled) => (resolve = settled));
    this.settled.add(resolve);
    const timer = setTimeout(resolve, timeoutMs);
    await done;
    clearTimeout(timer);
    this.settled.delete(resolve);
  }

  private count(outcome: PublishOutcome): void {
    this.counts[outcome] += 1;
    this.outcomes.inc({ outcome });
  }

  private warn(fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    if (now - this.lastWarnAt < this.options.warnEveryMs) {
      this.unreported += 1;
      return;
    }
    this.logger.warn({ ...fields, ...(this.unreported > 0 && { unreported_since_last_warning: this.unreported }) }, message);
    this.lastWarnAt = now;
    this.unreported = 0;
  }
}
