// Changes made here to synced messages, on their way to the account's server: `store_flags` (read,
// flagged, tags: the message's state now) and `move_to_trash` (the message deleted here). The IMAP worker
// queues them (in its context, so they survive a restart and show in its state) and its next run applies
// them first, before it looks at what changed on the server; a run that fails keeps them for its retry.
// Applying one twice does nothing more: flags are set to what the message says, a copy moved is forgotten.
import type { ImapFlow } from "imapflow";
import { flagChanges, withChanges } from "../messages/message-flags.ts";
import type { Message, MessageLocation } from "../store/model.ts";
import type { CopyPlace } from "../store/server-copies.ts";
import type { Store } from "../store/store.ts";
import type { FolderCursor } from "./account-folders.ts";

export type ChangeOrder = "store_flags" | "move_to_trash";

export interface PendingChange {
  order: ChangeOrder;
  message_id: string;
  /** When it was asked for (ISO date). */
  since: string;
}

/** Changes one worker queues at most: past it an order is refused (the account's server is away). */
export const MAX_PENDING_CHANGES = 500;

/** The queue with `change` in it: one entry per message, a move to Trash covering a flag change. */
export function withPendingChange(changes: PendingChange[], change: PendingChange): PendingChange[] {
  const earlier = changes.find((pending) => pending.message_id === change.message_id);
  if (earlier === undefined) return [...changes, change];
  if (earlier.order === "move_to_trash" || change.order === earlier.order) return changes;
  return changes.map((pending) => (pending === earlier ? change : pending));
}

/** The queue without the changes a run applied (a change asked for again since is a new entry, kept). */
export function withoutApplied(changes: PendingChange[], applied: PendingChange[]): PendingChange[] {
  const done = new Set(applied.map(changeKey));
  return changes.filter((change) => !done.has(changeKey(change)));
}

function changeKey(change: PendingChange): string {
  return `${change.order} ${change.message_id} ${change.since}`;
}

export interface ChangeTarget {
  identityId: string;
  userId: string;
  /** The folders as the worker knows them: where each copy is now, by its folder's id. */
  folders: FolderCursor[];
}

/** Applies the changes in order; throws (keeping the rest for a retry) when the server fails. */
export async function applyChanges(client: ImapFlow, store: Store, target: ChangeTarget, changes: PendingChange[]): Promise<void> {
  let trash: string | null | undefined;
  const trashPath = async () => {
    trash ??= (await client.list()).find((entry) => entry.specialUse === "\\Trash")?.path ?? null;
    return trash;
  };
  for (const change of changes) {
    const message = await store.messages.get(target.userId, change.message_id);
    if (message === null) continue;
    const copies = copiesOf(message, target);
    if (change.order === "store_flags") {
      for (const { place, path } of copies) await storeFlags(client, store, message, place, path);
      continue;
    }
    const into = await trashPath();
    if (into === null) throw new Error("the account has no Trash folder (no \\Trash attribute)");
    for (const { place, path } of copies) {
      if (path !== into) await onFolder(client, path, () => client.messageMove(String(place.uid), into, { uid: true }));
      await store.serverCopies.forget(place);
    }
    await forgetCopies(store, target, message);
  }
}

interface Copy {
  place: CopyPlace;
  path: string;
}

/** The message's copies on this account whose folder is still where the worker knows it. */
function copiesOf(message: Message, target: ChangeTarget): Copy[] {
  const copies: Copy[] = [];
  for (const location of message.locations ?? []) {
    const { folder_id: folderId, uidvalidity, uid } = location;
    if (location.identity_id !== target.identityId || folderId === undefined || uidvalidity === undefined || uid === null) continue;
    const folder = target.folders.find((known) => known.folder_id === folderId && known.uidvalidity === uidvalidity);
    if (folder === undefined) continue;
    copies.push({ place: { identity_id: target.identityId, folder_id: folderId, uidvalidity, uid }, path: folder.path });
  }
  return copies;
}

async function storeFlags(client: ImapFlow, store: Store, message: Message, place: CopyPlace, path: string): Promise<void> {
  const copy = await store.serverCopies.get(place);
  const current = copy?.flags ?? [];
  const changes = flagChanges(message, current);
  if (changes.add.length === 0 && changes.remove.length === 0) return;
  await onFolder(client, path, async () => {
    if (changes.add.length > 0) await client.messageFlagsAdd(String(place.uid), changes.add, { uid: true });
    if (changes.remove.length > 0) await client.messageFlagsRemove(String(place.uid), changes.remove, { uid: true });
  });
  await store.serverCopies.record(place, message.message_id, withChanges(current, changes));
}

/** Runs `work` with the folder open read-write. */
async function onFolder(client: ImapFlow, path: string, work: () => Promise<unknown>): Promise<void> {
  const lock = await client.getMailboxLock(path);
  try {
    await work();
  } finally {
    lock.release();
  }
}

/**
 * The message without its copies on this account; deleted here, as the user asked, once no account holds
 * a copy any more (with several, the last one's worker deletes it).
 */
async function forgetCopies(store: Store, target: ChangeTarget, message: Message): Promise<void> {
  const updated = await store.messages.update(target.userId, message.message_id, (current) => {
    const kept = (current.locations ?? []).filter((location: MessageLocation) => location.identity_id !== target.identityId);
    return kept.length === (current.locations ?? []).length ? null : { ...current, locations: kept };
  });
  if (((updated ?? message).locations ?? []).every((location) => location.identity_id === target.identityId)) {
    await store.messages.delete(target.userId, message.message_id);
  }
}
