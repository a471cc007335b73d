// What changed on the server in one folder among the messages synced before, with the folder open:
// flags (CONDSTORE's CHANGEDSINCE when the server keeps mod-sequences, else the flags of every known UID,
// on a poll's sync only) carried to the stored messages, and messages gone (expunged, or moved to a
// folder not followed) taken off the messages they were copies of. A message left with no copy anywhere
// is for the run to decide on (see sync-run.ts): it may be in a folder synced later in the same run.
import type { ImapFlow } from "imapflow";
import { followServerFlags } from "../messages/message-flags.ts";
import type { MessageLocation } from "../store/model.ts";
import type { CopyPlace, ServerCopy } from "../store/server-copies.ts";
import type { Store } from "../store/store.ts";

/** How a folder's flags were looked at: `condstore` (changed ones only), `flags` (all), `none` (not this run). */
export type ReconcileMethod = "condstore" | "flags" | "none";

export interface ReconcileInput {
  identityId: string;
  userId: string;
  folderId: string;
  path: string;
  uidvalidity: string;
  lastseenuid: number;
  highestmodseq: string | null;
  /** The folder's messages up to lastseenuid when last looked at (null: not known, look at every copy). */
  present: number | null;
  /** Read every known UID's flags when the server keeps no mod-sequences. */
  allFlags: boolean;
  /** Look for expunged messages (a poll's sync, which sees every followed folder). */
  expunges: boolean;
}

export interface ReconcileOutcome {
  method: ReconcileMethod;
  /** Messages whose flags changed on the server. */
  changed: number;
  /** Copies gone from the folder. */
  expunged: number;
  /** The folder's messages up to lastseenuid now (null when not counted this run). */
  present: number | null;
  /** Messages that lost their last copy here: the run looks at them once every folder is synced. */
  orphans: string[];
}

/** Orphans one folder reports at most (the rest keep their last copy's loss unnoticed until the next run). */
const MAX_ORPHANS = 10_000;

export async function reconcileFolder(client: ImapFlow, store: Store, input: ReconcileInput): Promise<ReconcileOutcome> {
  const place = (uid: number): CopyPlace => ({ identity_id: input.identityId, folder_id: input.folderId, uidvalidity: input.uidvalidity, uid });
  const outcome: ReconcileOutcome = { method: "none", changed: 0, expunged: 0, present: null, orphans: [] };

  if (input.expunges) {
    const found = (await client.search({ uid: `1:${input.lastseenuid}` }, { uid: true })) || [];
    const present = new Set(found.filter((uid) => uid <= input.lastseenuid));
    outcome.present = present.size;
    // An answer that lost UIDs (the folder holds more than it names, counting every UID it may hold past
    // the cursor) deletes nothing: what it leaves out is not known to be gone.
    const mailbox = client.mailbox;
    const above = mailbox === false ? 0 : Math.max(0, mailbox.uidNext - 1 - input.lastseenuid);
    const believable = mailbox !== false && mailbox.exists <= present.size + above;
    if (believable && (input.present === null || present.size < input.present)) {
      for (const copy of await store.serverCopies.inFolder(input.identityId, input.folderId, input.uidvalidity)) {
        // A copy past the cursor was imported by a run that stopped before the cursor passed it: SEARCH
        // did not look that far.
        if (copy.uid > input.lastseenuid || present.has(copy.uid)) continue;
        const orphan = await dropCopy(store, input, copy);
        await store.serverCopies.forget(place(copy.uid));
        outcome.expunged += 1;
        if (orphan && outcome.orphans.length < MAX_ORPHANS) outcome.orphans.push(copy.message_id);
      }
    }
  }

  const condstore = client.enabled.has("CONDSTORE") && input.highestmodseq !== null;
  if (!condstore && !input.allFlags) return outcome;
  outcome.method = condstore ? "condstore" : "flags";
  const rows = client.fetch(
    `1:${input.lastseenuid}`,
    { uid: true, flags: true },
    { uid: true, ...(condstore && { changedSince: BigInt(input.highestmodseq ?? "0") }) },
  );
  for await (const row of rows) {
    if (typeof row.uid !== "number" || row.uid > input.lastseenuid) continue;
    const flags = [...(row.flags ?? [])].filter((flag) => flag !== "\\Recent");
    const copy = await store.serverCopies.get(place(row.uid));
    if (copy === null || sameFlags(copy.flags, flags)) continue;
    await store.messages.update(input.userId, copy.message_id, (message) => {
      const next = followServerFlags(message, copy.flags, flags);
      return next === null ? null : { ...message, ...next };
    });
    await store.serverCopies.record(place(row.uid), copy.message_id, flags);
    outcome.changed += 1;
  }
  return outcome;
}

/** Takes the copy off its message; true when the message has no copy left anywhere. */
async function dropCopy(store: Store, input: ReconcileInput, copy: ServerCopy): Promise<boolean> {
  const isThisCopy = (location: MessageLocation) =>
    location.identity_id === input.identityId && location.uid === copy.uid && location.folder_id === input.folderId;
  const updated = await store.messages.update(input.userId, copy.message_id, (message) => {
    const locations = message.locations ?? [];
    const kept = locations.filter((location) => !isThisCopy(location));
    return kept.length === locations.length ? null : { ...message, locations: kept };
  });
  return updated !== null && (updated.locations ?? []).length === 0;
}

function sameFlags(a: string[], b: string[]): boolean {
  const lower = (flags: string[]) => new Set(flags.map((flag) => flag.toLowerCase()));
  const left = lower(a);
  const right = lower(b);
  return left.size === right.size && [...left].every((flag) => right.has(flag));
}
