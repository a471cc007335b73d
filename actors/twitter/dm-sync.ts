// One DM sync of a Twitter identity (docs/decisions.md §4 twitter-bridge): read the account's DM events newer
// than the last seen id, oldest first; store each as a raw message (dm-raw.ts), ask `inboundTwitter` to
// import it, and move the last seen id over it only once the import succeeded.
//
// - DMs the account sent itself are imported too: they are half of the conversation (InboundTwitter
//   files them read and not received).
// - An event the importer refuses stops the sync there (nothing after it is imported out of order); its
//   raw is kept and reused at the next sync. After `maxImportAttempts` refusals in a row the event is
//   skipped for good and listed for operators, so one poisoned event cannot block the account forever.
//   An importer that does not answer (timeout) fails the sync without counting an attempt.
// - A DM the account sent in a group conversation has no single recipient to file it under: skipped and
//   listed.

import { requestOrder } from "../../contract/emit-order.ts";
import { isBusy, requestWhileBusy } from "../bridges/busy-retry.ts";
import type { Store } from "../store/store.ts";
import { compareIds, type DmDirection, encodeStoredDm, isId, type XDmEvent, type XUser } from "./dm-raw.ts";
import { XApiError, XClient, type XClientConfig } from "./x-client.ts";

/** Where the last seen id is also kept on the identity (infos), for a worker started without a snapshot. */
export const LAST_SEEN_INFO = "twitter_last_seen_id";

export interface PendingImport {
  event_id: string;
  raw_msg_id: string;
  attempts: number;
}

export interface SkippedEvent {
  event_id: string;
  reason: string;
  at: string;
}

export interface DmSyncInput {
  user_id: string;
  identity_id: string;
  last_seen_id: string | null;
  /** The account behind the credentials, when already known. */
  account: XUser | null;
  retry: PendingImport | null;
}

export interface DmSyncDeps {
  store: Store;
  request(subject: string, payload: unknown, timeoutMs: number): Promise<unknown>;
  x: XClientConfig;
  pageSize: number;
  maxPages: number;
  maxImportAttempts: number;
  now: () => number;
}

export interface DmSyncProgress {
  total: number;
  done: number;
  skipped: number;
  last_seen_id: string | null;
  account: XUser | null;
}

export interface DmSyncOutcome extends DmSyncProgress {
  pages: number;
  /** Paging stopped at the page limit before the last seen id: some events may have been missed. */
  gap: boolean;
  retry: PendingImport | null;
  skipped_events: SkippedEvent[];
  /** What stopped the sync early (an import refused), null when every event was handled. */
  stopped: string | null;
}

/** The identity is gone (deleted, or not a Twitter identity): the worker has nothing left to do. */
export class IdentityGone extends Error {
  override name = "IdentityGone";
}

/** The sync failed part-way: what it had done so far travels with the error. */
export class DmSyncFailed extends Error {
  override name = "DmSyncFailed";
  constructor(
    readonly reason: unknown,
    readonly progress: DmSyncProgress,
    readonly retry: PendingImport | null,
    readonly poll_interval: string | null,
  ) {
    super(reason instanceof Error ? reason.message : String(reason));
  }
}

/** `signal` stops the sync between two events (the worker was stopped or restarted). */
export async function syncDms(
  deps: DmSyncDeps,
  input: DmSyncInput,
  onProgress: (progress: DmSyncProgress) => void,
  signal?: AbortSignal,
): Promise<DmSyncOutcome> {
  const { store } = deps;
  const identity = await store.identities.get(input.user_id, input.identity_id);
  if (identity === null || identity.status === "deleted") throw new IdentityGone(`identity ${input.identity_id} no longer exists`);
  if (identity.protocol !== "twitter") throw new IdentityGone(`identity ${input.identity_id} is a ${identity.protocol} identity, not a twitter one`);
  const pollInterval = typeof identity.infos.poll_interval === "string" ? identity.infos.poll_interval : null;

  const progress: DmSyncProgress = {
    total: 0,
    done: 0,
    skipped: 0,
    // The identity's copy may be ahead: a run restarted from an older snapshot, or a worker without one.
    last_seen_id: newest(input.last_seen_id, isId(identity.infos[LAST_SEEN_INFO]) ? (identity.infos[LAST_SEEN_INFO] as string) : null),
    account: input.account,
  };
  let retry = input.retry;
  const skipped: SkippedEvent[] = [];
  const skip = async (eventId: string, reason: string) => {
    skipped.push({ event_id: eventId, reason, at: new Date(deps.now()).toISOString() });
    progress.skipped += 1;
    progress.last_seen_id = eventId;
    if (retry?.event_id === eventId) retry = null;
    await store.identities.updateInfos(input.user_id, input.identity_id, { [LAST_SEEN_INFO]: eventId });
    onProgress({ ...progress });
  };

  try {
    const client = XClient.fromCredentials(await store.identities.credentials(input.user_id, input.identity_id), deps.x);
    const account = progress.account ?? (await client.me());
    progress.account = account;
    const listed = await client.dmEventsSince(progress.last_seen_id, { pageSize: deps.pageSize, maxPages: deps.maxPages });
    progress.total = listed.events.length;
    onProgress({ ...progress });
    const users = new Map(listed.users);
    users.set(account.id, account);
    const userOf = async (id: string): Promise<XUser> => {
      let user = users.get(id);
      if (user === undefined) {
        try {
          user = await client.userById(id);
        } catch (err) {
          // An account deleted since: its DMs stay, known by its id.
          if (!(err instanceof XApiError) || err.status !== 404) throw err;
          user = { id, username: id, name: "" };
        }
        users.set(id, user);
      }
      return user;
    };

    for (const event of listed.events) {
      if (signal?.aborted) throw new Error("sync cancelled");
      const sides = sidesOf(event, account);
      if (sides === null) {
        await skip(event.id, event.sender_id === account.id ? "sent by the account in a group conversation: no single recipient" : "no sender");
        continue;
      }
      const dm = { event, sender: await userOf(sides.sender), recipient: await userOf(sides.recipient), direction: sides.direction };
      const rawId = retry?.event_id === event.id ? retry.raw_msg_id : (await store.raws.put(input.user_id, encodeStoredDm(dm))).raw_msg_id;
      const attempts = retry?.event_id === event.id ? retry.attempts : 0;
      // Until it is imported, the stored raw is what the next attempt reuses.
      retry = { event_id: event.id, raw_msg_id: rawId, attempts };
      const reply = await requestWhileBusy(() =>
        requestOrder(deps, "inboundTwitter", "process_inbound", { message_id: rawId, remote_id: input.identity_id, user_id: input.user_id }),
      );
      // Busy processors are no refusal of this event: the next sync tries it again, its attempts unchanged.
      if (isBusy(reply))
        return {
          ...progress,
          pages: listed.pages,
          gap: !listed.complete,
          retry,
          skipped_events: skipped,
          stopped: `event ${event.id} not imported yet: inboundTwitter is busy; retried at the next sync`,
        };
      if (reply.error) {
        const reason = `event ${event.id} not imported: ${reply.message}`;
        if (attempts + 1 >= deps.maxImportAttempts) {
          await skip(event.id, `${reason} (given up after ${attempts + 1} attempts)`);
          continue;
        }
        retry = { event_id: event.id, raw_msg_id: rawId, attempts: attempts + 1 };
        return { ...progress, pages: listed.pages, gap: !listed.complete, retry, skipped_events: skipped, stopped: `${reason}; retried at the next sync` };
      }
      retry = null;
      progress.done += 1;
      progress.last_seen_id = event.id;
      await store.identities.updateInfos(input.user_id, input.identity_id, { [LAST_SEEN_INFO]: event.id });
      onProgress({ ...progress });
    }
    return { ...progress, pages: listed.pages, gap: !listed.complete, retry, skipped_events: skipped, stopped: null };
  } catch (err) {
    throw new DmSyncFailed(err, { ...progress }, retry, pollInterval);
  }
}

function newest(a: string | null, b: string | null): string | null {
  if (a === null || !isId(a)) return b;
  if (b === null) return a;
  return compareIds(a, b) >= 0 ? a : b;
}

/**
 * Who sent the event and to whom, from the account's side: a DM from someone else is to the account; the
 * account's own DM in a one-to-one conversation (`<id>-<id>`) is to the other participant.
 */
export function sidesOf(event: XDmEvent, account: XUser): { sender: string; recipient: string; direction: DmDirection } | null {
  const sender = event.sender_id;
  if (!isId(sender)) return null;
  if (sender !== account.id) return { sender, recipient: account.id, direction: "received" };
  const parts = (event.dm_conversation_id ?? "").split("-");
  if (parts.length === 2 && parts.every(isId) && parts.includes(account.id)) {
    const other = parts[0] === account.id ? parts[1] : parts[0];
    if (other !== undefined && other !== account.id) return { sender, recipient: other, direction: "sent" };
  }
  const others = (event.participant_ids ?? []).filter((id) => id !== account.id);
  if (others.length === 1 && isId(others[0])) return { sender, recipient: others[0], direction: "sent" };
  return null;
}
