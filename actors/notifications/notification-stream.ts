// The history of notifications: a JetStream stream capturing `notifications.>` (namespaced), so that the
// API can list a user's recent notifications and resume an event stream after the last one its client
// saw (Last-Event-ID is the stream sequence). Kept 7 days, bounded in bytes, messages and messages per
// user (one busy user cannot push everyone else's out); the oldest go first. Every node opens it the same
// way; a node whose operator changed the bounds applies them.

import { DiscardPolicy, type JetStreamManager, jetstreamManager, RetentionPolicy, StorageType, type StreamConfig } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { NOTIFICATIONS_EVENT } from "../../contract/events-table.ts";
import type { Subjects } from "../../runtime/subjects.ts";

/** How far back the history goes, and so how far back an event stream can resume. */
export const NOTIFICATION_RETENTION_MS = 7 * 24 * 3600 * 1000;

export interface NotificationHistoryLimits {
  /** Bytes the stream keeps at most, all users together. */
  maxBytes: number;
  /** Notifications it keeps at most, all users together. */
  maxMessages: number;
  /** Notifications it keeps at most for one user. */
  maxPerUser: number;
}

export const DEFAULT_NOTIFICATION_HISTORY_LIMITS: NotificationHistoryLimits = {
  maxBytes: 1024 * 1024 * 1024,
  maxMessages: 1_000_000,
  maxPerUser: 1_000,
};

/** Within this window JetStream keeps one notification per message id (a sent draft's, notified twice by racing deliveries). */
const DUPLICATE_WINDOW_MS = 2 * 60_000;

export function notificationStreamName(subjects: Subjects): string {
  return subjects.resource("caliopen_notifications");
}

/** Creates the stream, or brings its bounds to these; returns its name. */
export async function openNotificationStream(nc: NatsConnection, subjects: Subjects, limits: NotificationHistoryLimits, replicas: number): Promise<string> {
  const jsm: JetStreamManager = await jetstreamManager(nc);
  const name = notificationStreamName(subjects);
  const bounds = {
    max_age: NOTIFICATION_RETENTION_MS * 1_000_000,
    max_bytes: limits.maxBytes,
    max_msgs: limits.maxMessages,
    max_msgs_per_subject: limits.maxPerUser,
    discard: DiscardPolicy.Old,
    duplicate_window: DUPLICATE_WINDOW_MS * 1_000_000,
  };
  const existing = await jsm.streams.info(name).catch(() => null);
  if (existing === null) {
    const config: Partial<StreamConfig> & { name: string } = {
      name,
      subjects: [subjects.wire(NOTIFICATIONS_EVENT.wildcard)],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: replicas,
      ...bounds,
    };
    await jsm.streams.add(config).catch(async (err: Error) => {
      // Another node made it meanwhile.
      if ((await jsm.streams.info(name).catch(() => null)) === null) throw err;
    });
  } else if (
    existing.config.max_bytes !== bounds.max_bytes ||
    existing.config.max_msgs !== bounds.max_msgs ||
    existing.config.max_msgs_per_subject !== bounds.max_msgs_per_subject
  ) {
    await jsm.streams.update(name, { ...existing.config, ...bounds });
  }
  return name;
}
