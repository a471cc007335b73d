// The folders a synced mail is in on its accounts' servers (Message.locations): one message however many
// folders hold it, each folder recorded once per identity, and a bounded number of them whatever a
// server holds.
import type { Message, MessageLocation } from "../store/model.ts";
import type { Store } from "../store/store.ts";

/** Folders one message records at most (a mail copied into more keeps the first ones). */
export const MAX_LOCATIONS = 32;

/** The message's locations with `location` in them (its UID updated), or null when nothing changes. */
export function withLocation(message: Pick<Message, "locations">, location: MessageLocation): MessageLocation[] | null {
  const locations = message.locations ?? [];
  const same = locations.findIndex((entry) => entry.identity_id === location.identity_id && entry.mailbox === location.mailbox);
  if (same >= 0) {
    if (locations[same]?.uid === location.uid) return null;
    return locations.map((entry, index) => (index === same ? location : entry));
  }
  if (locations.length >= MAX_LOCATIONS) return null;
  return [...locations, location];
}

/**
 * Deletes a message that has no copy left on any server and came by no identity but `identityId` (a
 * mail deleted or moved out of the followed folders on its account). One that also came by a local
 * address or another account stays. True when it was deleted.
 */
export async function deleteIfOrphaned(store: Store, userId: string, identityId: string, messageId: string): Promise<boolean> {
  const message = await store.messages.get(userId, messageId);
  if (message === null || (message.locations ?? []).length > 0 || !message.user_identities.every((id) => id === identityId)) return false;
  await store.messages.delete(userId, messageId);
  return true;
}
