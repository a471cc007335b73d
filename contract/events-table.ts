// Subjects this build publishes for clients to follow, beside the contract's orders: nobody takes orders
// on them (no queue group, no reply), so they are not rows of CONTRACT, which every node subscribes.
// Today one: the user's notifications of new mail (the original stored them in Cassandra, §5.7 and §6.2
// of the reference; here they are NATS messages, kept in a JetStream stream for the API to resume from).
// docs/contract.md renders this table too; the TypeScript types of the payloads are derived from it.

import type { FieldSpec, PayloadOf, PayloadSchema } from "../runtime/payload-schema.ts";
import { ID_MAX_LENGTH, ID_PATTERN, ID_RULE } from "./contract-table.ts";

export interface EventSpec {
  /** The subject, with the part that varies in angle brackets (`notifications.<user_id>`). */
  subject: string;
  /** The wildcard that covers every subject of the event (what its stream captures). */
  wildcard: string;
  /** What the part in angle brackets is: a field of the payload, checked by ID_PATTERN before it becomes a subject token. */
  tokenField: string;
  emittedBy: string;
  /** Who reads it. */
  readBy: string;
  /** The payload's fields. */
  payload: PayloadSchema;
  /** A list field of the payload, with the fields of each entry (schemas are flat). */
  list?: { field: string; maxEntries: number; when: string; entry: PayloadSchema };
  /** What this build adds it for (every event is an extension of the seed contract). */
  extension: string;
}

const id = (description: string) =>
  ({ type: "string", required: true, description, maxLength: ID_MAX_LENGTH, pattern: ID_PATTERN, patternDescription: ID_RULE }) as const satisfies FieldSpec;
const text = (description: string, maxLength: number) => ({ type: "string", required: false, description, maxLength }) as const satisfies FieldSpec;

/** Messages a notification lists at most; above, it says only how many (the original's threshold). */
export const MAX_NOTIFICATION_ELEMENTS = 20;
/** The summary's texts (from, subject, excerpt) are cut to this many characters. */
export const MAX_SUMMARY_CHARS = 160;

/** `new_message`: mail or DMs imported (the original's type); `message_sent`: a draft sent (this build's). */
export const NOTIFICATION_TYPES = ["new_message", "message_sent"] as const;
export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export const NOTIFICATION_FIELDS = {
  type: { type: "string", required: true, description: "`new_message`: messages imported; `message_sent`: a draft sent", enum: NOTIFICATION_TYPES },
  user_id: id("the user it is for: the last token of its subject"),
  size: { type: "number", required: true, description: "how many messages it is about (at least 1)" },
  emitted_at: { type: "string", required: true, description: "when it was published (ISO 8601)", maxLength: 40 },
} as const satisfies PayloadSchema;

export const NOTIFICATION_ELEMENT_FIELDS = {
  message_id: id("the message"),
  discussion_id: { type: "string", required: true, description: "its discussion", maxLength: 128 },
  identity_id: id("the user's identity that received or sent it"),
  protocol: { type: "string", required: true, description: "email or twitter", maxLength: 16 },
  is_received: { type: "boolean", required: true, description: "false for the user's own mail (sent, or synced from a Sent folder)" },
  is_unread: { type: "boolean", required: true, description: "as the message is stored" },
  date: { type: "string", required: true, description: "the message's date (ISO 8601)", maxLength: 40 },
  from: text(`the sender: "label <address>" or the address, at most ${MAX_SUMMARY_CHARS} characters`, MAX_SUMMARY_CHARS),
  subject: text(`the subject, at most ${MAX_SUMMARY_CHARS} characters`, MAX_SUMMARY_CHARS),
  excerpt: text(`the start of the plain body, blanks collapsed, at most ${MAX_SUMMARY_CHARS} characters; never for an encrypted message`, MAX_SUMMARY_CHARS),
} as const satisfies PayloadSchema;

/** One message of a notification; empty summary fields are left out. */
export type NotificationElement = PayloadOf<typeof NOTIFICATION_ELEMENT_FIELDS>;

/** What is published on `notifications.<user_id>`: `elements` only when `size` is at most MAX_NOTIFICATION_ELEMENTS. */
export type Notification = PayloadOf<typeof NOTIFICATION_FIELDS> & { type: NotificationType; elements?: NotificationElement[] };

export const NOTIFICATIONS_EVENT = {
  subject: "notifications.<user_id>",
  wildcard: "notifications.>",
  tokenField: "user_id",
  emittedBy: "mq-worker (the user's inbound actor: mail by IMAP or SMTP, DMs), smtp-bridge and twitter-bridge (a draft sent)",
  readBy:
    "apiv2: GET /api/v2/notifications/stream (server-sent events) and GET /api/v2/notifications, from the JetStream stream `caliopen_notifications` (behind the namespace), kept 7 days",
  payload: NOTIFICATION_FIELDS,
  list: { field: "elements", maxEntries: MAX_NOTIFICATION_ELEMENTS, when: `size ≤ ${MAX_NOTIFICATION_ELEMENTS}`, entry: NOTIFICATION_ELEMENT_FIELDS },
  extension:
    "The original's `new_message` notification (`message_id`, `discussion_id`) with the identity and a short summary, batched as the original batched a sync: " +
    `a user's imports that follow each other (a sync's, an SMTP delivery's) are one notification, \`{"size": N, "elements": [...]}\` with no elements when N > ${MAX_NOTIFICATION_ELEMENTS}; ` +
    "published to NATS (the original stored them in Cassandra), and one `message_sent` for each draft sent (this build's)",
} as const satisfies EventSpec;

export const EVENTS: readonly EventSpec[] = [NOTIFICATIONS_EVENT];

/** `notifications.<user_id>` for this user (without the namespace), or null when the id cannot be a subject token. */
export function notificationSubject(userId: string): string | null {
  return ID_PATTERN.test(userId) ? `notifications.${userId}` : null;
}
