// The mq-worker's InboundTwitter (docs/decisions.md §4): `process_inbound` on `inboundTwitter` turns a stored
// DM (raw format: dm-raw.ts) into a message of the user whose Twitter identity fetched it. The same DM
// (by event id, per user) is imported once; another identity of the user seeing it is attached to it.
//
// A DM the account sent itself (direction "sent", fetched by a sync, e.g. written from another client)
// is imported too, as part of the conversation: read, not received. Every outcome is a Reply.
import { randomUUID } from "node:crypto";
import { failure, isReply, ok, type Reply } from "../../runtime/reply.ts";
import { discussionId } from "../messages/discussion.ts";
import type { InboundCache } from "../messages/inbound-cache.ts";
import { alreadyImported, type ImportObserver, type InboundOrder, importFailure, linkContacts, loadInbound, storeOnce } from "../messages/inbound-import.ts";
import { type Message, type Participant, SCHEMA_VERSION } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { decodeStoredDm, dmExternalKey, type StoredDm, screenNameAddress } from "./dm-raw.ts";

export interface InboundTwitterOptions {
  now?: () => Date;
  /** What the user's inbound actor remembers between imports (see inbound-cache.ts). */
  cache?: InboundCache;
  onImported?: ImportObserver;
}

export const TWITTER_PROTOCOL = "twitter";

export async function processInboundTwitter(store: Store, order: InboundOrder, options: InboundTwitterOptions = {}): Promise<Reply> {
  try {
    return await importInboundTwitter(store, order, options);
  } catch (err) {
    return importFailure(order, err);
  }
}

/**
 * processInboundTwitter for a caller that retries: what it cannot answer (the store unreachable, ...) is
 * thrown instead of replied; `importFailure` makes the reply processInboundTwitter would give.
 */
export async function importInboundTwitter(store: Store, order: InboundOrder, options: InboundTwitterOptions = {}): Promise<Reply> {
  const now = options.now ?? (() => new Date());
  const cache = options.cache;
  const loaded = await loadInbound(
    store,
    order,
    (identity) => (identity.protocol === TWITTER_PROTOCOL ? null : `identity ${identity.identity_id} is a ${identity.protocol} identity, not a twitter one`),
    cache,
  );
  if (isReply(loaded)) return loaded;
  const { user, identity, raw } = loaded;
  const rawId = raw.raw_msg_id;
  const userId = user.user_id;
  const identityId = identity.identity_id;
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

  const participants = await linkContacts(store, user, screenNameAddress(identity.identifier), participantsOf(dm), cache);
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

  const stored = await storeOnce(store, message, externalKey, rawId);
  if (!stored.created) return alreadyImported(store, userId, stored.message.message_id, identityId, rawId, stored.message.discussion_id);
  options.onImported?.(stored.message);
  return ok("message imported", { message_id: stored.message.message_id, discussion_id: stored.message.discussion_id });
}

/** From the sender, To the recipient, by screen name. */
export function participantsOf(dm: Pick<StoredDm, "sender" | "recipient">): Participant[] {
  return [
    { type: "From", address: screenNameAddress(dm.sender.username), label: dm.sender.name, protocol: TWITTER_PROTOCOL, contact_ids: [] },
    { type: "To", address: screenNameAddress(dm.recipient.username), label: dm.recipient.name, protocol: TWITTER_PROTOCOL, contact_ids: [] },
  ];
}

function dateOf(value: string | undefined, now: () => Date): string {
  const parsed = value === undefined ? null : new Date(value);
  return parsed === null || Number.isNaN(parsed.getTime()) ? now().toISOString() : parsed.toISOString();
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}
