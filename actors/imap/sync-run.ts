// One sync run of an IMAP worker, as an invoked callback actor: it borrows the account's connection
// (account-connection.ts: the watch's, or one it opens and keeps for a while), runs the sync algorithm
// (mailbox-sync.ts) importing each message (raw stored, then imported by the user's inbound actor in
// batches of raws: import-batcher.ts), and reports to the machine: `sync.connected`, `sync.progress` now
// and then, then `sync.done` or `sync.failed`. The connection is given back as soon as every body is
// fetched (the watch IDLEs again while the last imports finish), and in any case before either is told;
// a sync that failed or is stopped halfway closes it (it may be in the middle of an answer).
import type { ImapFlow } from "imapflow";
import { fromCallback } from "xstate";
import type { ActorMessage, TypedMessage } from "../../runtime/actor-family.ts";
import { isJsonObject } from "../../runtime/json.ts";
import { ImportBatcher } from "../inbound/import-batcher.ts";
import { type ImportBatchOrder, MAX_BATCH_RAWS } from "../inbound/inbound-batch.ts";
import type { Identity } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import type { AccountConnection, ImapLease } from "./account-connection.ts";
import { storeFetched } from "./fetched-raw.ts";
import type { ImapAccount } from "./imap-account.ts";
import { ImapLoginError } from "./imap-connection.ts";
import { describeParserLimit, type ImapSyncLimits } from "./imap-limits.ts";
import { type SyncCursor, type SyncOutcome, type SyncProgress, syncMailbox } from "./mailbox-sync.ts";
import { SyncDeadline } from "./sync-deadline.ts";

export type SyncMode = "sync" | "fullfetch";

export interface SyncRunInput {
  identity_id: string;
  user_id: string;
  mailbox: string;
  cursor: SyncCursor;
  mode: SyncMode;
}

/** What `sync.failed` carries. */
export interface SyncFailure {
  message: string;
  /** The identity is gone: nothing to retry. */
  gone: boolean;
  poll_interval: string | null;
  protocol: string | null;
}

/** What a sync run tells the worker's machine. */
export type SyncRunEvent =
  | TypedMessage<"sync.connected", Record<string, never>>
  | TypedMessage<"sync.progress", { progress: SyncProgress; cursor: SyncCursor }>
  | TypedMessage<"sync.done", { outcome: SyncOutcome }>
  | TypedMessage<"sync.failed", SyncFailure>;

/** Sends an import batch to the user's inbound actor and resolves with its reply (runtime/cluster/actor-requests.ts). */
export type ImportBatchPort = (order: ImportBatchOrder) => Promise<unknown>;

/**
 * Messages a sync keeps in flight: two batches' worth, so that one batch's raws are stored while the one
 * before is imported. A whole body is held only until its raw is stored (at most this many at once, each
 * at most FETCH_PIECE_BYTES; a larger one streams).
 */
const IN_FLIGHT = 2 * MAX_BATCH_RAWS;

export function syncRun(
  store: Store,
  account: (input: SyncRunInput) => ImapAccount,
  /** The worker's connection (one per running worker: its actor system is its own). */
  connectionOf: (input: SyncRunInput, system: object) => AccountConnection,
  concurrency: number,
  limits: ImapSyncLimits,
  now: () => number,
  importBatch: ImportBatchPort,
) {
  return fromCallback<ActorMessage, SyncRunInput>(({ sendBack, input, system }) => {
    const tell = (event: SyncRunEvent) => sendBack(event);
    const { mode } = input;
    const imap = account(input);
    const connection = connectionOf(input, system);
    let cancelled = false;
    let lease: ImapLease | null = null;
    const heldLease = (): ImapLease | null => lease;
    const giveBack = (reusable: boolean) => {
      const held = lease;
      lease = null;
      held?.giveBack(reusable);
    };
    const deadline = new SyncDeadline(limits);
    // What closed the connection, when imapflow's parser refused an answer (a pending command only
    // sees "connection closed").
    let connectionError: Error | null = null;
    let identity: Identity | null = null;
    const batcher = new ImportBatcher((rawIds) => importBatch({ user_id: input.user_id, remote_id: input.identity_id, raw_ids: rawIds }));

    const syncOn = (client: ImapFlow, current: Identity, fetched: () => void) =>
      syncMailbox(client, mode === "fullfetch" ? { uidvalidity: null, lastseenuid: 0, failed_uids: [] } : reached, {
        mailbox: input.mailbox,
        full: mode === "fullfetch",
        concurrency: Math.max(concurrency, IN_FLIGHT),
        maxMessageBytes: limits.maxMessageBytes,
        waitingFor: (step) => deadline.waitingFor(step),
        fetched,
        importMessage: async (message) => {
          const from = {
            account: current.display_name || current.identifier,
            mailbox: input.mailbox,
            userId: input.user_id,
            uid: message.uid,
            flags: message.flags,
            labels: message.labels,
          };
          const { uid } = message;
          const stored = await storeFetched(store, input.identity_id, message.source, from);
          const reply = await batcher.import(stored.raw_msg_id, stored.size);
          if (!isJsonObject(reply) || reply.error !== false)
            throw new Error(`UID ${uid} not imported: ${isJsonObject(reply) ? String(reply.message) : "no reply"}`);
        },
        onProgress: (progress, cursor) => {
          reached = cursor;
          if (!cancelled) tell({ type: "sync.progress", payload: { progress, cursor } });
        },
      });

    /** The cursor of the last progress: where a second go starts from. */
    let reached = input.cursor;
    const syncOnLease = async (current: Identity): Promise<SyncOutcome> => {
      // A new connection first waits for its turn at the node's pacer: that wait is not the server's.
      deadline.queued("its turn to connect (CALIOPEN_IMAP_CONNECTS_PER_SECOND)");
      lease = await connection.borrow(deadline.signal, () => deadline.waitingFor("connecting and logging in"));
      const client = lease.client;
      const noteError = (err: Error) => {
        connectionError ??= err;
      };
      // A deadline closes the connection: whatever was awaited fails, and the catch below says why.
      const closeOnDeadline = () => client.close();
      client.on("error", noteError);
      deadline.signal.addEventListener("abort", closeOnDeadline, { once: true });
      const detach = () => {
        deadline.signal.removeEventListener("abort", closeOnDeadline);
        client.off("error", noteError);
      };
      if (!cancelled) tell({ type: "sync.connected", payload: {} });
      // Once every body is fetched the connection goes back (to the watch's IDLE) while the imports finish.
      return syncOn(client, current, () => {
        detach();
        giveBack(true);
      }).finally(detach);
    };

    (async () => {
      const current = await imap.identity();
      identity = current;
      if (current === null) throw Object.assign(new Error(`identity ${input.identity_id} no longer exists`), { gone: true });
      let outcome: SyncOutcome;
      try {
        outcome = await syncOnLease(current);
      } catch (err) {
        // A connection that was open before (the watch's, or kept) and turns out dead (a server that
        // restarted, a NAT that forgot it, a session the server ended): one more go on a new one, from
        // where this one got. Any other failure is the run's.
        const failedOn = heldLease();
        const dead = failedOn?.reused === true && !failedOn.client.usable && !cancelled && !deadline.signal.aborted && connectionError === null;
        if (!dead) throw err;
        giveBack(false);
        outcome = await syncOnLease(current);
      }
      // Back to the watch (or kept for the next sync) before the machine hears of the end (given back
      // already once every body was fetched, unless the sync ended early).
      giveBack(true);
      // A fullfetch keeps the incremental cursor's place when the mailbox did not change identity.
      const cursor =
        mode === "fullfetch" && outcome.cursor.uidvalidity === input.cursor.uidvalidity
          ? { ...outcome.cursor, lastseenuid: Math.max(outcome.cursor.lastseenuid, input.cursor.lastseenuid) }
          : outcome.cursor;
      await store.identities.updateInfos(input.user_id, input.identity_id, { last_sync: new Date(now()).toISOString(), last_error: null });
      if (!cancelled) tell({ type: "sync.done", payload: { outcome: { ...outcome, cursor } } });
    })()
      .catch((err: Error & { gone?: boolean }) => {
        giveBack(false);
        if (cancelled) return;
        const timedOut = deadline.signal.aborted ? (deadline.signal.reason as Error).message : null;
        const refused = connectionError === null ? null : describeParserLimit(connectionError);
        const failed: SyncFailure = {
          message: err instanceof ImapLoginError ? err.message : `sync failed: ${timedOut ?? refused ?? err.message}`,
          gone: err.gone === true,
          poll_interval: typeof identity?.infos.poll_interval === "string" ? identity.infos.poll_interval : null,
          protocol: identity?.protocol ?? null,
        };
        tell({ type: "sync.failed", payload: failed });
      })
      .finally(() => {
        batcher.cancel();
        deadline.stop();
      });
    return () => {
      cancelled = true;
      batcher.cancel();
      deadline.cancel();
      // Stopped halfway through: the connection may be in the middle of an answer.
      giveBack(false);
    };
  });
}
