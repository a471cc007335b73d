// What every inbound processor (email, DMs) does around its own parsing: check the order and load the
// user, the receiving identity and the raw; link participants to the user's contacts; and store the new
// message once per user and external id (for mail: per external id and content) — the first import to
// claim it keeps it, a second identity receiving the same message is added to it, and every import marks
// its raw delivered.
import { failure, ok, type Reply } from "../../runtime/reply.ts";
import type { Identity, Message, Participant, RawMessage, User } from "../store/model.ts";
import type { Store } from "../store/store.ts";

export const ALREADY_IMPORTED = "raw message already imported";

export interface InboundOrder {
  /** The raw message's id. */
  message_id: string;
  /** The identity that received it. */
  remote_id: string;
  user_id: string;
}

export interface InboundSubjects {
  user: User;
  identity: Identity;
  raw: RawMessage;
}

/**
 * Checks the order and loads what it names; a failure reply names what is wrong. `refuse` says why this
 * processor does not take messages for an identity (null: it does).
 */
export async function loadInbound(store: Store, order: InboundOrder, refuse: (identity: Identity) => string | null): Promise<InboundSubjects | Reply> {
  for (const field of ["message_id", "remote_id", "user_id"] as const) {
    if (typeof order?.[field] !== "string" || order[field].trim() === "") return failure(`process_inbound needs a non-empty string ${field}`);
  }
  const { message_id: rawId, remote_id: identityId, user_id: userId } = order;
  const user = await store.users.get(userId);
  if (user === null) return failure(`unknown user ${userId}`);
  const identity = await store.identities.get(userId, identityId);
  if (identity === null) return failure(`identity ${identityId} is not an identity of user ${userId}`);
  if (identity.status === "deleted") return failure(`identity ${identityId} of user ${userId} is deleted`);
  const refused = refuse(identity);
  if (refused !== null) return failure(refused);
  const raw = await store.raws.get(rawId);
  if (raw === null) return failure(`unknown raw message ${rawId}`);
  if (raw.user_id !== null && raw.user_id !== userId) return failure(`raw message ${rawId} belongs to another user than ${userId}`);
  return { user, identity, raw };
}

/** Each participant's contact by address; the receiving identity's own address is the user's own card. */
export async function linkContacts(store: Store, user: User, ownAddress: string, participants: Participant[]): Promise<Participant[]> {
  const byAddress = new Map<string, Promise<string[]>>();
  const lookup = (address: string) => {
    let found = byAddress.get(address);
    if (found === undefined) {
      found = store.contacts.byAddress(user.user_id, address).then((contact) => {
        if (contact !== null) return [contact.contact_id];
        return address === ownAddress ? [user.contact_id] : [];
      });
      byAddress.set(address, found);
    }
    return found;
  };
  return Promise.all(participants.map(async (participant) => ({ ...participant, contact_ids: await lookup(participant.address) })));
}

/**
 * Stores a new message under its external id. Returns null when it is stored (its raw marked delivered),
 * or the "already imported" reply when another import of the same message claimed it first.
 *
 * Without `contentSha256` (DMs: an event id names one event) there is one message per external id.
 * With it (mail, whose Message-ID the sender writes) there is one message per external id and content;
 * a different content under an id that another message holds is stored as well, marked
 * `duplicate_message_id_of` that first message (the caller sets it when it knows the holder already;
 * a race is settled here). A failure leaves no message and no claim behind, so a retry starts afresh.
 */
export async function storeOnce(store: Store, message: Message, externalId: string, rawId: string, contentSha256?: string): Promise<Reply | null> {
  const { user_id: userId, message_id: messageId } = message;
  const identityId = message.user_identities[0] ?? "";
  await store.messages.create(message);
  let claimedContent = false;
  try {
    if (contentSha256 !== undefined) {
      const holder = await store.messages.claimContent(userId, externalId, contentSha256, messageId);
      if (holder !== messageId) {
        // The same mail imported at the same moment: the first to claim it keeps it.
        await store.messages.delete(userId, messageId);
        return alreadyImported(store, userId, holder, identityId, rawId, message.discussion_id);
      }
      claimedContent = true;
      await settleFirstHolder(store, message, externalId);
    } else {
      const holder = await store.messages.claimExternalId(userId, externalId, messageId);
      if (holder !== messageId) {
        await store.messages.delete(userId, messageId);
        return alreadyImported(store, userId, holder, identityId, rawId, message.discussion_id);
      }
    }
  } catch (err) {
    // Left claimed, the message would stand in for the one a retry stores; unclaimed, it would be a duplicate of it.
    if (claimedContent && contentSha256 !== undefined) await store.messages.releaseContent(userId, externalId, contentSha256, messageId).catch(() => undefined);
    await store.messages.delete(userId, messageId).catch(() => undefined);
    throw err;
  }
  await store.raws.markDelivered(rawId);
  return null;
}

/**
 * Makes sure the first message holding a Message-ID is known: this one claims it, or is marked as a
 * duplicate of the one that did. Idempotent: an import that stopped between its two claims (a crash)
 * is completed by the next import of the same mail.
 */
export async function settleFirstHolder(store: Store, message: Message, externalId: string): Promise<void> {
  if (typeof message.duplicate_message_id_of === "string") return;
  const holder = await store.messages.claimExternalId(message.user_id, externalId, message.message_id);
  if (holder === message.message_id) return;
  await store.messages.update(message.user_id, message.message_id, (current) =>
    current.duplicate_message_id_of === holder ? null : { ...current, duplicate_message_id_of: holder },
  );
}

/** The answer for a message stored before: the receiving identity is added to it. */
export async function alreadyImported(store: Store, userId: string, messageId: string, identityId: string, rawId: string, discussion: string): Promise<Reply> {
  const updated = await store.messages.update(userId, messageId, (current) =>
    current.user_identities.includes(identityId) ? null : { ...current, user_identities: [...current.user_identities, identityId] },
  );
  await store.raws.markDelivered(rawId);
  return ok(ALREADY_IMPORTED, { message_id: messageId, discussion_id: updated?.discussion_id ?? discussion });
}
