// What every inbound processor (email, DMs) does around its own parsing: check the order and load the
// user, the receiving identity and the raw; link participants to the user's contacts; and store the new
// message once per user and external id — the first import to claim it keeps it, a second identity
// receiving the same message is added to it, and every import marks its raw delivered.

import { randomUUID } from "node:crypto";
import type { OrderFields } from "../../contract/contract-table.ts";
import { DocumentExists } from "../../runtime/kv-documents.ts";
import { failure, ok, type Reply } from "../../runtime/reply.ts";
import type { Message, MessageLocation, Participant, RawMessage } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import type { CachedIdentity, CachedUser, InboundCache } from "./inbound-cache.ts";
import { withLocation } from "./message-locations.ts";

export const ALREADY_IMPORTED = "raw message already imported";

/** Told of each message an import stored for the first time (never of one imported before): notifications. */
export type ImportObserver = (message: Message) => void;

/** `process_inbound`'s fields: the raw message (`message_id`) that the identity `remote_id` of `user_id` received. */
export type InboundOrder = OrderFields<"inboundSMTP", "process_inbound">;

export interface InboundSubjects {
  user: CachedUser;
  identity: CachedIdentity;
  raw: RawMessage;
}

/**
 * Checks the order and loads what it names; a failure reply names what is wrong. `refuse` says why this
 * processor does not take messages for an identity (null: it does). With a cache, the user and the
 * identity may come from it; the raw's document comes from memory when this node wrote it.
 */
export async function loadInbound(
  store: Store,
  order: InboundOrder,
  refuse: (identity: CachedIdentity) => string | null,
  cache?: InboundCache,
): Promise<InboundSubjects | Reply> {
  for (const field of ["message_id", "remote_id", "user_id"] as const) {
    if (typeof order?.[field] !== "string" || order[field].trim() === "") return failure(`process_inbound needs a non-empty string ${field}`);
  }
  const { message_id: rawId, remote_id: identityId, user_id: userId } = order;
  const readUser = () => store.users.get(userId);
  const user = cache === undefined ? await readUser() : await cache.user(userId, readUser);
  if (user === null) return failure(`unknown user ${userId}`);
  const readIdentity = () => store.identities.get(userId, identityId);
  const identity =
    cache === undefined
      ? await readIdentity()
      : await cache.identity(identityId, (known) => known.status !== "deleted" && refuse(known) === null, readIdentity);
  if (identity === null) return failure(`identity ${identityId} is not an identity of user ${userId}`);
  if (identity.status === "deleted") return failure(`identity ${identityId} of user ${userId} is deleted`);
  const refused = refuse(identity);
  if (refused !== null) return failure(refused);
  const raw = await store.raws.forImport(rawId);
  if (raw === null) return failure(`unknown raw message ${rawId}`);
  if (raw.user_id !== null && raw.user_id !== userId) return failure(`raw message ${rawId} belongs to another user than ${userId}`);
  return { user, identity, raw };
}

/**
 * Each participant's contact by address; the receiving identity's own address is the user's own card.
 * With a cache, addresses looked up lately are not looked up again.
 */
export async function linkContacts(
  store: Store,
  user: CachedUser,
  ownAddress: string,
  participants: Participant[],
  cache?: InboundCache,
): Promise<Participant[]> {
  const byAddress = new Map<string, Promise<string[]>>();
  const read = (address: string) => () => store.contacts.byAddress(user.user_id, address).then((contact) => (contact === null ? [] : [contact.contact_id]));
  const lookup = (address: string) => {
    let found = byAddress.get(address);
    if (found === undefined) {
      found = (cache === undefined ? read(address)() : cache.contactIds(address, read(address))).then((ids) => {
        if (ids.length > 0) return ids;
        return address === ownAddress ? [user.contact_id] : [];
      });
      byAddress.set(address, found);
    }
    return found;
  };
  return Promise.all(participants.map(async (participant) => ({ ...participant, contact_ids: await lookup(participant.address) })));
}

/**
 * The one message under an external id: `message`, stored now (`created`, its raw marked delivered), or
 * the message stored before. The claim on the external id is written first and the message under the
 * id it names, so an import that stopped between the two leaves a claim without its message, which the
 * next import of the same id completes (its message stored under the claimed id), never a message
 * without its claim, which a retry would store a second time. (Received messages are never deleted, so
 * a claim without its message is always such an import.)
 */
export async function storeOnce(store: Store, message: Message, externalId: string, rawId: string): Promise<{ message: Message; created: boolean }> {
  const holder = await store.messages.claimExternalId(message.user_id, externalId, message.message_id);
  return storeClaimed(store, holder === message.message_id ? message : { ...message, message_id: holder }, rawId);
}

/**
 * Claims an external id before the message is built (as storeOnce does, earlier): the id to store the
 * new message under, and the message already stored under the claim if there is one. A claim whose
 * message is not there is an import that stopped in between: this one completes it, under its id.
 */
export async function claimExternal(store: Store, userId: string, externalId: string): Promise<{ messageId: string; existing: Message | null }> {
  const ours = randomUUID();
  const holder = await store.messages.claimExternalId(userId, externalId, ours);
  if (holder === ours) return { messageId: ours, existing: null };
  return { messageId: holder, existing: await store.messages.get(userId, holder) };
}

/** Stores a message under the id its external id's claim names (see storeOnce, claimExternal). */
export async function storeClaimed(store: Store, message: Message, rawId: string): Promise<{ message: Message; created: boolean }> {
  try {
    await store.messages.create(message);
  } catch (err) {
    if (!(err instanceof DocumentExists)) throw err;
    // Another import of the same id got there first.
    const existing = await store.messages.get(message.user_id, message.message_id);
    if (existing === null) throw new Error(`message ${message.message_id} of user ${message.user_id} exists but cannot be read`);
    return { message: existing, created: false };
  }
  await store.raws.markDelivered(rawId);
  return { message, created: true };
}

/** The reply for an import that failed on something other than the order or the raw. */
export function importFailure(order: InboundOrder, err: unknown): Reply {
  const why = err instanceof Error ? err.message || err.name : String(err);
  return failure(`cannot import raw message ${String(order?.message_id)} for user ${String(order?.user_id)}: ${why}`);
}

/**
 * The answer for a message stored before: the receiving identity is added to it, and the folder this
 * copy came from (a mail synced from a second folder). The message's own raw is marked delivered too:
 * the import that stored it may have stopped before marking it, and a copy fetched again comes as
 * another raw, so nothing else would (an undelivered raw looks abandoned).
 */
export async function alreadyImported(
  store: Store,
  userId: string,
  messageId: string,
  identityId: string,
  rawId: string,
  discussion: string,
  location: MessageLocation | null = null,
): Promise<Reply> {
  const updated = await store.messages.update(userId, messageId, (current) => {
    const identities = current.user_identities.includes(identityId) ? null : [...current.user_identities, identityId];
    const locations = location === null ? null : withLocation(current, location);
    if (identities === null && locations === null) return null;
    return { ...current, ...(identities !== null && { user_identities: identities }), ...(locations !== null && { locations }) };
  });
  const own = updated?.raw_msg_id ?? null;
  if (own !== null && own !== rawId) await store.raws.markDelivered(own);
  await store.raws.markDelivered(rawId);
  return ok(ALREADY_IMPORTED, { message_id: messageId, discussion_id: updated?.discussion_id ?? discussion });
}
