// `deliver` on `twitter_dm` (docs/decisions.md §2, §4 twitter-bridge): send a draft's plain body as a DM to its
// first `To` participant (a screen name), keep the sent event as a raw message (delivered), flip the draft
// to a sent message whose external reference is the new event id, reply.
//
// Idempotent by message_id: a draft already sent is answered "already sent" without sending again, and a
// draft being sent by another request (marked `sending_since` by compare-and-swap) is refused until that
// send ends or its mark goes stale. Every outcome is a reply; nothing is thrown.
import type { Logger } from "pino";
import { failure, isReply, ok, type Reply } from "../../runtime/reply.ts";
import { claimDraft, draftToSend, markAnswered, releaseClaim } from "../messages/send-claim.ts";
import type { Store } from "../store/store.ts";
import { dmExternalKey, encodeStoredDm, screenNameAddress, type XDmEvent, type XUser } from "./dm-raw.ts";
import { InvalidCredentials, RateLimited, XClient, type XClientConfig } from "./x-client.ts";

export interface DmDeliverOrder {
  message_id: string;
  /** The Twitter identity the draft is sent from. */
  remote_id: string;
  user_id: string;
}

export interface DmDeliverDeps {
  store: Store;
  x: XClientConfig;
  logger: Logger;
  now?: () => Date;
}

export interface DmDeliverResult {
  reply: Reply;
  /** The X API refused the credentials (or there are none): the worker waits for new ones. */
  invalid_credentials: boolean;
  /** The account behind the credentials, when it was looked up. */
  account: XUser | null;
}

export async function deliverDm(deps: DmDeliverDeps, order: DmDeliverOrder, account: XUser | null): Promise<DmDeliverResult> {
  const result: DmDeliverResult = { reply: failure("not sent"), invalid_credentials: false, account };
  try {
    result.reply = await deliver(deps, order, result);
  } catch (err) {
    deps.logger.error({ err: (err as Error).message, message_id: order.message_id, user_id: order.user_id }, "DM deliver failed unexpectedly");
    result.reply = failure(`failed to send message ${order.message_id}: ${(err as Error).message ?? String(err)}`);
  }
  return result;
}

async function deliver(deps: DmDeliverDeps, order: DmDeliverOrder, result: DmDeliverResult): Promise<Reply> {
  const { store } = deps;
  const now = deps.now ?? (() => new Date());
  const id = order.message_id;
  if (typeof id !== "string" || id === "") return failure("deliver needs a non-empty string message_id");
  const log = deps.logger.child({ message_id: id, user_id: order.user_id, identity_id: order.remote_id });

  const draft = await draftToSend(store, order);
  if (isReply(draft)) return draft;
  const identity = await store.identities.get(order.user_id, order.remote_id);
  if (identity === null || identity.status === "deleted") return failure(`identity ${order.remote_id} of user ${order.user_id} not found`);
  if (identity.protocol !== "twitter") return failure(`identity ${order.remote_id} is a ${identity.protocol} identity, not a twitter one`);
  const to = draft.participants.find((participant) => participant.type === "To");
  const screenName = to === undefined ? "" : screenNameAddress(to.address);
  if (screenName === "") return failure(`draft ${id} has no recipient (a To participant with a screen name)`);
  const text = draft.body_plain;
  if (text.trim() === "") return failure(`draft ${id} has no text to send`);

  let client: XClient;
  try {
    client = XClient.fromCredentials(await store.identities.credentials(order.user_id, order.remote_id), deps.x);
  } catch (err) {
    return refused(id, err, result);
  }

  const claimedAt = now();
  const claim = await claimDraft(store, draft, claimedAt);
  if (claim.outcome === "gone") return failure(`draft ${id} not found`);
  if (claim.outcome === "sent") return ok(`message ${id} was already sent`, { message_id: id });
  if (claim.outcome === "busy") return failure(`draft ${id} is already being sent (since ${claim.since}); try again later`);

  let sender: XUser;
  let recipient: XUser;
  let sent: { dm_event_id: string; dm_conversation_id: string };
  try {
    sender = result.account ?? (await client.me());
    result.account = sender;
    recipient = await client.userByUsername(screenName);
    log.info({ to: recipient.username }, "sending DM");
    sent = await client.sendDm(recipient.id, text);
  } catch (err) {
    await releaseClaim(store, claim.draft, claimedAt, log);
    log.warn({ reason: (err as Error).message }, "sending the DM failed");
    return refused(id, err, result);
  }

  // Sent: from here on, never release the claim for a resend; record what went out.
  const sentAt = now().toISOString();
  const event: XDmEvent = {
    id: sent.dm_event_id,
    event_type: "MessageCreate",
    text,
    created_at: sentAt,
    sender_id: sender.id,
    dm_conversation_id: sent.dm_conversation_id,
  };
  const problems: string[] = [];
  let rawId: string | null = null;
  try {
    const raw = await store.raws.put(order.user_id, encodeStoredDm({ event, sender, recipient, direction: "sent" }));
    rawId = raw.raw_msg_id;
    await store.raws.markDelivered(rawId);
  } catch (err) {
    problems.push(`storing the sent event failed: ${(err as Error).message}`);
  }
  try {
    // The next sync sees this event too: it must find it imported already (this message).
    const holder = await store.messages.claimExternalId(order.user_id, dmExternalKey(sent.dm_event_id), id);
    if (holder !== id)
      log.warn({ dm_event_id: sent.dm_event_id, holder }, "a sync imported the sent DM before the draft was marked sent: two messages show it");
  } catch (err) {
    problems.push(`recording its event id failed: ${(err as Error).message}`);
  }
  try {
    const flipped = await store.messages.update(order.user_id, id, (current) => ({
      ...current,
      is_draft: false,
      is_unread: false,
      raw_msg_id: rawId,
      date: sentAt,
      external_references: { message_id: sent.dm_event_id, parent_id: "", ancestors_ids: [] },
      sending_since: null,
    }));
    if (flipped === null) log.warn("the draft was deleted while it was being sent");
  } catch (err) {
    problems.push(`marking it sent failed: ${(err as Error).message}`);
  }
  if (claim.draft.parent_id) await markAnswered(store, order.user_id, claim.draft.parent_id, log);
  if (problems.length > 0) {
    log.error({ dm_event_id: sent.dm_event_id, reason: problems.join("; ") }, "the DM was sent but recording it failed");
    return failure(`message ${id} was sent, but ${problems.join("; ")}`, { message_id: id, dm_event_id: sent.dm_event_id });
  }
  return ok(`message ${id} has been sent`, { message_id: id, dm_event_id: sent.dm_event_id });
}

function refused(id: string, err: unknown, result: DmDeliverResult): Reply {
  if (err instanceof InvalidCredentials) {
    result.invalid_credentials = true;
    return failure(`failed to send message ${id}: ${err.message}; new credentials are needed`);
  }
  if (err instanceof RateLimited)
    return failure(`failed to send message ${id}: rate limited by the X API until ${err.resetAt.toISOString()}`, { retry_after: err.resetAt.toISOString() });
  return failure(`failed to send message ${id}: ${(err as Error).message ?? String(err)}`);
}
