// Sending a draft at most once: a send claims the draft by compare-and-swap (`sending_since`) before it
// goes out, so a second `deliver` of the same draft meanwhile is refused; the claim is released if the
// send fails, and goes stale by itself if the sender dies.
import type { Logger } from "pino";
import type { Message } from "../store/model.ts";
import type { Store } from "../store/store.ts";

/** A `sending_since` mark older than this belonged to a send that died; another may take over. */
export const SENDING_STALE_MS = 2 * 60_000;

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
