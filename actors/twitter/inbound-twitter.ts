// The mq-worker's InboundTwitter (DECISIONS.md §4): `process_inbound` on `inboundTwitter` turns a stored
// DM (raw format: dm-raw.ts) into a message of the user whose Twitter identity fetched it. The same DM
// (by event id, per user) is imported once; another identity of the user seeing it is attached to it.
//
// A DM the account sent itself (direction "sent", fetched by a sync, e.g. written from another client)
// is imported too, as part of the conversation: read, not received. Every outcome is a Reply.
import { randomUUID } from "node:crypto";
import { failure, ok, type Reply } from "../../runtime/reply.ts";
import { discussionId } from "../messages/discussion.ts";
import { SCHEMA_VERSION, type Identity, type Message, type Participant, type User } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { decodeStoredDm, dmExternalKey, screenNameAddress, type StoredDm } from "./dm-raw.ts";

export interface InboundTwitterOrder {
  /** The raw message's id. */
  message_id: string;
  /** The Twitter identity that fetched it. */
  remote_id: string;
  user_id: string;
}

export interface InboundTwitterOptions {
  now?: () => Date;
}

export const TWITTER_PROTOCOL = "twitter";
const ALREADY_IMPORTED = "raw message already imported";

export async function processInboundTwitter(store: Store, order: InboundTwitterOrder, options: InboundTwitterOptions = {}): Promise<Reply> {
  const now = options.now ?? (() => new Date());
  try {
    return await importDm(store, order, now);
  } catch (err) {
    return failure(`cannot import raw message ${String(order?.message_id)} for user ${String(order?.user_id)}: ${describe(err)}`);
  }
}

async function importDm(store: Store, order: InboundTwitterOrder, now: () => Date): Promise<Reply> {
  for (const field of ["message_id", "remote_id", "user_id"] as const) {
    if (typeof order?.[field] !== "string" || order[field].trim() === "") return failure(`process_inbound needs a non-empty string ${field}`);
  }
  const { message_id: rawId, remote_id: identityId, user_id: userId } = order;

  const user = await store.users.get(userId);
  if (user === null) return failure(`unknown user ${userId}`);
  const identity = await store.identities.get(userId, identityId);
  if (identity === null) return failure(`identity ${identityId} is not an identity of user ${userId}`);
  if (identity.status === "deleted") return failure(`identity ${identityId} of user ${userId} is deleted`);
  if (identity.protocol !== "twitter") return failure(`identity ${identityId} is a ${identity.protocol} identity, not a twitter one`);
  const raw = await store.raws.get(rawId);
  if (raw === null) return failure(`unknown raw message ${rawId}`);
  if (raw.user_id !== null && raw.user_id !== userId) return failure(`raw message ${rawId} belongs to another user than ${userId}`);
  const bytes = await store.raws.read(rawId);
  if (bytes === null) return failure(`raw message ${rawId} has no stored content`);
  let dm: StoredDm;
  try {
    dm = decodeStoredDm(bytes);
  } catch (err) {
    return failure(`raw message ${rawId} is not a stored DM: ${describe(err)}`);
  }

  const eventId = dm.event.id;
  const externalKey = dmExternalKey(eventId);
  const known = await store.messages.byExternalId(userId, externalKey);
  if (known !== null) return alreadyImported(store, userId, known.message_id, identityId, rawId, known.discussion_id);

  const participants = await linkContacts(store, user, identity, participantsOf(dm));
  const sent = dm.direction === "sent";
  const message: Message = {
    schema: SCHEMA_VERSION,
    user_id: userId,
    message_id: randomUUID(),
    discussion_id: discussionId(participants),
    raw_msg_id: rawId,
    subject: "",
    body_plain: dm.event.text ?? "",
    body_html: "",
    date: dateOf(dm.event.created_at, now),
    date_insert: now().toISOString(),
    is_draft: false,
    // The account's own DM is part of the conversation, but nothing the user has not read.
    is_unread: !sent,
    is_received: !sent,
    is_answered: false,
    participants,
    external_references: { message_id: eventId, parent_id: "", ancestors_ids: [] },
    attachments: [],
    tags: [],
    protocol: TWITTER_PROTOCOL,
    user_identities: [identityId],
    parent_id: null,
  };

  await store.messages.create(message);
  let holder: string;
  try {
    holder = await store.messages.claimExternalId(userId, externalKey, message.message_id);
  } catch (err) {
    await store.messages.delete(userId, message.message_id).catch(() => undefined);
    throw err;
  }
  if (holder !== message.message_id) {
    // The same DM imported at the same moment: the first to claim it keeps it.
    await store.messages.delete(userId, message.message_id);
    return alreadyImported(store, userId, holder, identityId, rawId, message.discussion_id);
  }
  await store.raws.markDelivered(rawId);
  return ok("message imported", { message_id: message.message_id, discussion_id: message.discussion_id });
}

async function alreadyImported(store: Store, userId: string, messageId: string, identityId: string, rawId: string, discussion: string): Promise<Reply> {
  const updated = await store.messages.update(userId, messageId, (current) =>
    current.user_identities.includes(identityId) ? null : { ...current, user_identities: [...current.user_identities, identityId] },
  );
  await store.raws.markDelivered(rawId);
  return ok(ALREADY_IMPORTED, { message_id: messageId, discussion_id: updated?.discussion_id ?? discussion });
}

/** From the sender, To the recipient, by screen name. */
export function participantsOf(dm: Pick<StoredDm, "sender" | "recipient">): Participant[] {
  return [
    { type: "From", address: screenNameAddress(dm.sender.username), label: dm.sender.name, protocol: TWITTER_PROTOCOL, contact_ids: [] },
    { type: "To", address: screenNameAddress(dm.recipient.username), label: dm.recipient.name, protocol: TWITTER_PROTOCOL, contact_ids: [] },
  ];
}

/** Each participant's contact; the account's own screen name is the user's own card. */
async function linkContacts(store: Store, user: User, identity: Identity, participants: Participant[]): Promise<Participant[]> {
  return Promise.all(
    participants.map(async (participant) => {
      const contact = await store.contacts.byAddress(user.user_id, participant.address);
      const ids = contact !== null ? [contact.contact_id] : participant.address === screenNameAddress(identity.identifier) ? [user.contact_id] : [];
      return { ...participant, contact_ids: ids };
    }),
  );
}

function dateOf(value: string | undefined, now: () => Date): string {
  const parsed = value === undefined ? null : new Date(value);
  return parsed === null || Number.isNaN(parsed.getTime()) ? now().toISOString() : parsed.toISOString();
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}
