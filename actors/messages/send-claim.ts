// Sending a draft at most once: a send claims the draft by compare-and-swap (`sending_since`) before it
// goes out, so a second `deliver` of the same draft meanwhile is refused; the claim is released if the
// send fails, and goes stale by itself if the sender dies.
import type { Logger } from "pino";
import { failure, ok, type Reply } from "../../runtime/reply.ts";
import type { Message } from "../store/model.ts";
import type { Store } from "../store/store.ts";

/** A `sending_since` mark older than this belonged to a send that died; another may take over. */
export const SENDING_STALE_MS = 2 * 60_000;

/**
 * The draft a `deliver` names, or the reply it gets instead: not found, not a draft (a message this
 * platform sent already answers "already sent", so a retried deliver is a success), or a draft sent from
 * another identity than the order's.
 */
export async function draftToSend(store: Store, order: { message_id: string; remote_id: string; user_id: string }): Promise<Message | Reply> {
  const id = order.message_id;
  const draft = await store.messages.get(order.user_id, id);
  if (draft === null) return failure(`draft ${id} not found`);
  if (!draft.is_draft) {
    if (!draft.is_received) return ok(`message ${id} was already sent`, { message_id: id });
    return failure(`message ${id} is not a draft`);
  }
  if (draft.user_identities.length > 0 && !draft.user_identities.includes(order.remote_id)) {
    return failure(`draft ${id} is not sent from identity ${order.remote_id}`);
  }
  return draft;
}

export type SendClaim = { outcome: "claimed"; draft: Message } | { outcome: "busy"; since: string } | { outcome: "sent" } | { outcome: "gone" };

export async function claimDraft(store: Store, draft: Message, at: Date): Promise<SendClaim> {
  let outcome: SendClaim = { outcome: "gone" };
  const stored = await store.messages.update(draft.user_id, draft.message_id, (current) => {
    if (!current.is_draft) {
      outcome = { outcome: "sent" };
      return null;
    }
    const since = current.sending_since ?? null;
    if (since !== null && at.getTime() - Date.parse(since) < SENDING_STALE_MS) {
      outcome = { outcome: "busy", since };
      return null;
    }
    const next = { ...current, sending_since: at.toISOString() };
    outcome = { outcome: "claimed", draft: next };
    return next;
  });
  return stored === null ? { outcome: "gone" } : outcome;
}

/** Clears our own mark after a failed send, so the user may try again at once. */
export async function releaseClaim(store: Store, draft: Message, claimedAt: Date, log: Logger): Promise<void> {
  try {
    await store.messages.update(draft.user_id, draft.message_id, (current) =>
      current.sending_since === claimedAt.toISOString() ? { ...current, sending_since: null } : null,
    );
  } catch (err) {
    log.warn({ err: (err as Error).message }, "could not clear the draft's sending mark (it goes stale by itself)");
  }
}

/** The message a sent draft answers is marked answered (best effort). */
export async function markAnswered(store: Store, userId: string, parentId: string, log: Logger): Promise<void> {
  try {
    await store.messages.update(userId, parentId, (current) => (current.is_answered ? null : { ...current, is_answered: true }));
  } catch (err) {
    log.warn({ err: (err as Error).message, parent_id: parentId }, "could not mark the parent message answered");
  }
}
