// A received mail whose Message-ID a message of the user already holds with a different content.
// docs/decisions.md §4 keeps one message per (user, Message-ID), so it becomes no second message; but the
// first copy to arrive may be a forgery under the genuine mail's Message-ID, so the other one must not
// vanish either: its raw stays stored and is listed on the message as a conflicting copy, where the user
// (API) sees it. One entry per content and receiving identity, so a retried order, an MTA retry or an
// IMAP re-import of the same copy adds nothing; a bounded list, so a flood of copies cannot grow the
// document: past the bound they are only counted.
import { ok, type Reply } from "../../runtime/reply.ts";
import type { Message, MessageIdConflict } from "../store/model.ts";
import type { Store } from "../store/store.ts";

/** Conflicting copies listed on one message; those past it are counted in `message_id_conflicts_omitted`. */
export const MAX_MESSAGE_ID_CONFLICTS = 20;

export const CONFLICT_KEPT = "a different mail under this Message-ID was kept as a conflicting copy";

/** The copy is listed on the message already (the same content received by the same identity). */
export function isListed(message: Message, conflict: Pick<MessageIdConflict, "content_sha256" | "identity_id">): boolean {
  return (message.message_id_conflicts ?? []).some(
    (listed) => listed.content_sha256 === conflict.content_sha256 && listed.identity_id === conflict.identity_id,
  );
}

/** The message with the copy listed (or counted, the list being full); null when it is listed already. */
export function withConflict(message: Message, conflict: MessageIdConflict): Message | null {
  if (isListed(message, conflict)) return null;
  const listed = message.message_id_conflicts ?? [];
  if (listed.length >= MAX_MESSAGE_ID_CONFLICTS) return { ...message, message_id_conflicts_omitted: (message.message_id_conflicts_omitted ?? 0) + 1 };
  return { ...message, message_id_conflicts: [...listed, conflict] };
}

/**
 * Records the copy on the message (compare-and-swap, so copies racing are all recorded) and marks its
 * raw delivered (and the message's own): the reply names the message, as for the same mail imported again.
 */
export async function keepConflictingCopy(store: Store, message: Message, conflict: MessageIdConflict): Promise<Reply> {
  const updated = await store.messages.update(message.user_id, message.message_id, (current) => withConflict(current, conflict));
  // The message's own raw too, in case the import that stored it stopped before marking it.
  const own = updated?.raw_msg_id ?? null;
  if (own !== null && own !== conflict.raw_id) await store.raws.markDelivered(own);
  await store.raws.markDelivered(conflict.raw_id);
  return ok(CONFLICT_KEPT, { message_id: message.message_id, discussion_id: updated?.discussion_id ?? message.discussion_id });
}
