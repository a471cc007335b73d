// One sync run of an IMAP worker, as an invoked callback actor: it borrows the account's connection
// (account-connection.ts: the watch's, or one it opens and keeps for a while), lists the account's
// folders and picks those to sync (account-folders.ts; an `inbox` run, for new mail the watch heard of,
// syncs INBOX alone), runs the sync algorithm (mailbox-sync.ts) on each folder that has anything new,
// importing each message (raw stored, then imported by the user's inbound actor in batches of raws:
// import-batcher.ts), and reports to the machine: `sync.connected`, `sync.progress` now and then (with
// the folder's cursor), then `sync.done` (every folder's cursor) or `sync.failed`. The connection is given back as soon as every body is
// fetched (the watch IDLEs again while the last imports finish), and in any case before either is told;
// a sync that failed or is stopped halfway closes it (it may be in the middle of an answer).
import type { ImapFlow } from "imapflow";
import { fromCallback } from "xstate";
import type { ActorMessage, TypedMessage } from "../../runtime/actor-family.ts";
import { isJsonObject } from "../../runtime/json.ts";
import { ImportBatcher } from "../inbound/import-batcher.ts";
import { type ImportBatchOrder, MAX_BATCH_RAWS } from "../inbound/inbound-batch.ts";
import { needsNewCredentials } from "../mail/mail-login.ts";
import { deleteIfOrphaned } from "../messages/message-locations.ts";
import type { Identity } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import type { AccountConnection, ImapLease } from "./account-connection.ts";
import { type FolderChanges, type FolderCursor, type FolderPlan, folderSelection, INBOX, listFolders, newFolderId, planFolders } from "./account-folders.ts";
import { storeFetched } from "./fetched-raw.ts";
import { type ReconcileMethod, type ReconcileOutcome, reconcileFolder } from "./folder-reconcile.ts";
import type { ImapAccount } from "./imap-account.ts";
import { ImapLoginError } from "./imap-connection.ts";
import { describeParserLimit, type ImapSyncLimits } from "./imap-limits.ts";
import { type FetchedMessage, type SkippedMessage, type SyncProgress, syncMailbox } from "./mailbox-sync.ts";
import { applyChanges, type PendingChange } from "./pending-changes.ts";
import { SyncDeadline } from "./sync-deadline.ts";

/**
 * `changes`: only the changes made here; `inbox`: INBOX only (new mail heard by the watch); `sync`: every
 * folder followed; `fullfetch`: all of them again. Each applies the changes made here first.
 */
export type SyncMode = "changes" | "inbox" | "sync" | "fullfetch";

const BREADTH: Record<SyncMode, number> = { changes: 0, inbox: 1, sync: 2, fullfetch: 3 };

/** The run that covers both (a fullfetch covers a sync, a sync an INBOX sync, each the changes made here). */
export function widestRun(requested: SyncMode | null, mode: SyncMode): SyncMode {
  return requested !== null && BREADTH[requested] >= BREADTH[mode] ? requested : mode;
}

export interface SyncRunInput {
  identity_id: string;
  user_id: string;
  folders: FolderCursor[];
  mode: SyncMode;
  /** Changes made here, for the server before anything else. */
  pending: PendingChange[];
}

/** What a run found changed on the server among the messages synced before. */
export interface ServerChanges {
  /** The most thorough way a folder's flags were read in this run. */
  method: ReconcileMethod;
  changed: number;
  expunged: number;
  /** Messages deleted here: gone from every folder on the server. */
  deleted: number;
}

/** What a run did: its counts over every folder, where each folder now stands, what changed in the list. */
export interface AccountSyncOutcome extends SyncProgress {
  folders: FolderCursor[];
  /** The first few messages skipped in this run (`skipped` counts them all). */
  skipped_messages: SkippedMessage[];
  /** null for a run that did not list the folders (`inbox`). */
  changes: FolderChanges | null;
  server_changes: ServerChanges;
  /** The pending changes of the input, all applied. */
  applied: PendingChange[];
}

/** What `sync.failed` carries. */
export interface SyncFailure {
  message: string;
  /** The identity is gone: nothing to retry. */
  gone: boolean;
  /** The account's OAuth 2.0 grant was refused: nothing to retry until the user grants access again. */
  needs_credentials: boolean;
  poll_interval: string | null;
  protocol: string | null;
}

/** What a sync run tells the worker's machine. */
export type SyncRunEvent =
  | TypedMessage<"sync.connected", Record<string, never>>
  | TypedMessage<"sync.progress", { progress: SyncProgress; folder: FolderCursor }>
  | TypedMessage<"sync.done", { outcome: AccountSyncOutcome }>
  | TypedMessage<"sync.failed", SyncFailure>;

/** Sends an import batch to the user's inbound actor and resolves with its reply (runtime/cluster/actor-requests.ts). */
export type ImportBatchPort = (order: ImportBatchOrder) => Promise<unknown>;

/**
 * Messages a sync keeps in flight: two batches' worth, so that one batch's raws are stored while the one
 * before is imported. A whole body is held only until its raw is stored (at most this many at once, each
 * at most FETCH_PIECE_BYTES; a larger one streams).
 */
const IN_FLIGHT = 2 * MAX_BATCH_RAWS;
/** Skipped messages listed in an outcome; the count covers the rest. */
const SKIPPED_LISTED = 10;
const EMPTY_CURSOR = { uidvalidity: null, lastseenuid: 0, failed_uids: [] };

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

    const importInto = (folder: FolderCursor, current: Identity) => async (message: FetchedMessage) => {
      const from = {
        account: current.display_name || current.identifier,
        mailbox: folder.path,
        specialUse: folder.special_use,
        folderId: folder.folder_id,
        uidvalidity: message.uidvalidity,
        userId: input.user_id,
        uid: message.uid,
        flags: message.flags,
        labels: message.labels,
      };
      const stored = await storeFetched(store, input.identity_id, message.source, from);
      const reply = await batcher.import(stored.raw_msg_id, stored.size);
      if (!isJsonObject(reply) || reply.error !== false)
        throw new Error(`UID ${message.uid} not imported: ${isJsonObject(reply) ? String(reply.message) : "no reply"}`);
      // Where the message is on the server: the cursor passes this UID only once that is recorded.
      if (typeof reply.message_id === "string") {
        const place = { identity_id: input.identity_id, folder_id: folder.folder_id, uidvalidity: message.uidvalidity, uid: message.uid };
        await store.serverCopies.record(
          place,
          reply.message_id,
          message.flags.filter((flag) => flag !== "\\Recent"),
        );
      }
    };

    /**
     * The folders to sync: none for a `changes` run, INBOX alone for an `inbox` run, else what the server
     * lists and the identity selects.
     */
    const plan = async (client: ImapFlow, current: Identity): Promise<FolderPlan | { folders: FolderPlan["folders"]; changes: null }> => {
      if (mode === "changes") return { folders: [], changes: null };
      if (mode === "inbox") {
        const inbox = reached.get(INBOX) ?? { ...EMPTY_CURSOR, path: INBOX, folder_id: newFolderId(), special_use: null };
        return { folders: [{ cursor: inbox, upToDate: false }], changes: null };
      }
      deadline.waitingFor("the list of mailboxes");
      const open = client.mailbox === false ? null : client.mailbox.path;
      return planFolders(await listFolders(client), [...reached.values()], folderSelection(current.infos.mailboxes), open);
    };

    const syncOn = async (client: ImapFlow, current: Identity, fetched: () => void): Promise<AccountSyncOutcome> => {
      if (input.pending.length > 0) {
        deadline.waitingFor(`the server to take ${input.pending.length} change(s) made here`);
        await applyChanges(client, store, { identityId: input.identity_id, userId: input.user_id, folders: input.folders }, input.pending);
      }
      const { folders, changes } = await plan(client, current);
      const full = mode === "fullfetch";
      // A poll's sync sees every followed folder: only it may take a message gone from one for deleted.
      const wholeAccount = mode === "sync" || mode === "fullfetch";
      const total: SyncProgress = { total: 0, done: 0, failed: 0, skipped: 0 };
      const serverChanges: ServerChanges = { method: "none", changed: 0, expunged: 0, deleted: 0 };
      const orphans = new Set<string>();
      const skipped: SkippedMessage[] = [];
      const after = new Map<string, FolderCursor>();
      const toSync = folders.filter((folder) => full || !folder.upToDate).map((folder) => folder.cursor);
      // A run that ends on another folder looks at INBOX once more at the end (from where it got): mail
      // that came meanwhile is not missed, and the connection goes back to the watch on INBOX.
      const inbox = toSync.find((folder) => folder.path === INBOX) ?? folders.find((folder) => folder.cursor.path === INBOX)?.cursor;
      if (!full && inbox !== undefined && toSync.length > 0 && toSync.at(-1)?.path !== INBOX) toSync.push(inbox);
      for (const [index, planned] of toSync.entries()) {
        const start = after.get(planned.path) ?? planned;
        const base = { ...total };
        let present = start.present ?? null;
        const outcome = await syncMailbox(client, full ? EMPTY_CURSOR : start, {
          mailbox: start.path,
          full,
          concurrency: Math.max(concurrency, IN_FLIGHT),
          maxMessageBytes: limits.maxMessageBytes,
          waitingFor: (step) => deadline.waitingFor(start.path === INBOX ? step : `${step} (${start.path})`),
          // The connection goes back once the last folder's bodies are fetched.
          fetched: index === toSync.length - 1 ? fetched : undefined,
          importMessage: importInto(start, current),
          reconcile: async (open, known) => {
            const found = await reconcileFolder(open, store, {
              identityId: input.identity_id,
              userId: input.user_id,
              folderId: start.folder_id,
              path: start.path,
              ...known,
              present,
              // Twice for one folder in a run (INBOX at the end): once is enough.
              allFlags: wholeAccount && planned === start,
              expunges: wholeAccount,
            });
            present = found.present ?? present;
            addServerChanges(serverChanges, found);
            for (const orphan of found.orphans) orphans.add(orphan);
          },
          onProgress: (progress, cursor) => {
            const folder = { ...cursor, path: start.path, folder_id: start.folder_id, special_use: start.special_use, present };
            if (!full) reached.set(start.path, folder);
            if (!cancelled) tell({ type: "sync.progress", payload: { progress: sum(base, progress), folder } });
          },
        });
        Object.assign(total, sum(total, outcome));
        skipped.push(...outcome.skipped_messages.slice(0, SKIPPED_LISTED - skipped.length));
        // A fullfetch keeps the incremental cursor's place when the folder did not change identity.
        const cursor =
          full && outcome.cursor.uidvalidity === start.uidvalidity
            ? { ...outcome.cursor, lastseenuid: Math.max(outcome.cursor.lastseenuid, start.lastseenuid) }
            : outcome.cursor;
        after.set(start.path, { ...cursor, path: start.path, folder_id: start.folder_id, special_use: start.special_use, present });
      }
      // Gone from its folders and found in none synced since: deleted (or moved out of the followed folders) there.
      for (const orphan of orphans) if (await deleteIfOrphaned(store, input.user_id, input.identity_id, orphan)) serverChanges.deleted += 1;
      const synced = folders.map(({ cursor }) => after.get(cursor.path) ?? cursor);
      // A run that did not list the folders leaves the others where they were.
      const others = wholeAccount ? [] : input.folders.filter((folder) => !synced.some((known) => known.path === folder.path));
      return {
        ...total,
        folders: [...synced, ...others],
        skipped_messages: skipped,
        changes,
        server_changes: serverChanges,
        applied: input.pending,
      };
    };

    /** Each folder's cursor as of the last progress: where a second go starts from. */
    const reached = new Map(input.folders.map((folder) => [folder.path, folder]));
    const syncOnLease = async (current: Identity): Promise<AccountSyncOutcome> => {
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
      let outcome: AccountSyncOutcome;
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
      await store.identities.updateInfos(input.user_id, input.identity_id, { last_sync: new Date(now()).toISOString(), last_error: null });
      if (!cancelled) tell({ type: "sync.done", payload: { outcome } });
    })()
      .catch((err: Error & { gone?: boolean }) => {
        giveBack(false);
        if (cancelled) return;
        const timedOut = deadline.signal.aborted ? (deadline.signal.reason as Error).message : null;
        const refused = connectionError === null ? null : describeParserLimit(connectionError);
        const failed: SyncFailure = {
          message: err instanceof ImapLoginError || needsNewCredentials(err) ? err.message : `sync failed: ${timedOut ?? refused ?? err.message}`,
          gone: err.gone === true,
          needs_credentials: needsNewCredentials(err),
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

const METHOD_RANK: Record<ReconcileMethod, number> = { none: 0, condstore: 1, flags: 2 };

function addServerChanges(into: ServerChanges, found: ReconcileOutcome): void {
  if (METHOD_RANK[found.method] > METHOD_RANK[into.method]) into.method = found.method;
  into.changed += found.changed;
  into.expunged += found.expunged;
}

function sum(a: SyncProgress, b: SyncProgress): SyncProgress {
  return { total: a.total + b.total, done: a.done + b.done, failed: a.failed + b.failed, skipped: a.skipped + b.skipped };
}
