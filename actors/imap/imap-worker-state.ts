// What an IMAP worker holds (its context: saved in its snapshot, shown to operators), what it takes
// (its event union: the contract's orders, what its sync run and its new-mail watch tell it, its retry
// deadline), and how a finished run is written into its history and the identity's last error.
import { createHash } from "node:crypto";
import type { ContractMessage } from "../../contract/contract-message.ts";
import type { DeadlineMessage, RELOADED_EVENT, TypedMessage } from "../../runtime/actor-family.ts";
import type { Deadlines } from "../../runtime/deadlines.ts";
import type { PendingDelivery } from "../bridges/delivery-queue.ts";
import { type FolderChanges, type FolderCursor, INBOX } from "./account-folders.ts";
import type { SkippedMessage, SyncProgress } from "./mailbox-sync.ts";
import type { PendingChange } from "./pending-changes.ts";
import type { AccountSyncOutcome, ServerChanges, SyncMode, SyncRunEvent } from "./sync-run.ts";

export const RETRY_DUE = "retry.due";
/** Finished runs kept in the context. */
export const HISTORY = 5;

export type SyncRun = SyncProgress & { mode: SyncMode; started_at: string };
/**
 * A finished run: done (skipped messages listed, folders that changed, what changed on the server and
 * how it was found, changes made here that it carried) or failed (with its error).
 */
export type FinishedRun = SyncRun & {
  finished_at: string;
  outcome: "done" | "failed";
  skipped_messages: SkippedMessage[];
  folder_changes?: FolderChanges;
  server_changes?: ServerChanges;
  changes_applied?: number;
  error?: string;
};

export interface ImapWorkerContext {
  identity_id: string;
  user_id: string;
  /** Each folder synced, where its sync stands: INBOX first. */
  folders: FolderCursor[];
  /** The sync running now (or the last one), for operators. */
  progress: SyncRun | null;
  mode: SyncMode;
  /** The last few runs that finished, newest first, for operators: what they skipped, or why they failed. */
  history: FinishedRun[];
  /** A sync (or an INBOX sync, or a fullfetch) asked for while one runs: done right after it. */
  requested: SyncMode | null;
  last_sync: string | null;
  last_error: { message: string; at: string } | null;
  failures: number;
  first_failure_at: string | null;
  /** The poll interval before this worker asked for a slower one; restored after a success. */
  slowed_from: string | null;
  /** `deliver` requests waiting or running, oldest first. */
  deliveries: PendingDelivery[];
  /** Changes made here on their way to the server (`store_flags`, `move_to_trash`), oldest first. */
  pending_changes: PendingChange[];
  deadlines: Deadlines;
}

/** The orders the worker takes, what its sync run and its new-mail watch tell it, its retry deadline. */
export type ImapWorkerEvent =
  | ContractMessage<"IMAPfetcher", "sync">
  | ContractMessage<"IMAPfetcher", "fullfetch">
  | ContractMessage<"IMAPfetcher", "store_flags">
  | ContractMessage<"IMAPfetcher", "move_to_trash">
  | ContractMessage<"outboundIMAP", "deliver">
  | SyncRunEvent
  | TypedMessage<"mail.arrived", Record<string, never>>
  | TypedMessage<typeof RELOADED_EVENT, Record<string, never>>
  | DeadlineMessage<typeof RETRY_DUE>;

/**
 * A context saved by an earlier release: before every folder was synced its one cursor was INBOX's;
 * before changes went to the server folders had no id (one is derived from the path, the same at every
 * restore until the context is saved again) and nothing was pending.
 */
export function upgradeImapContext(saved: Record<string, unknown>): Record<string, unknown> {
  const { cursor, mailbox: _mailbox, ...rest } = saved;
  const folders: unknown[] = Array.isArray(saved.folders) ? saved.folders : typeof cursor === "object" && cursor !== null ? [{ ...cursor, path: INBOX }] : [];
  const withIds = folders.map((folder) => {
    const fields = folder as Record<string, unknown>;
    const path = String(fields.path);
    return { special_use: null, ...fields, folder_id: typeof fields.folder_id === "string" ? fields.folder_id : derivedFolderId(path) };
  });
  return { ...rest, folders: withIds, pending_changes: Array.isArray(saved.pending_changes) ? saved.pending_changes : [] };
}

function derivedFolderId(path: string): string {
  return createHash("sha256").update(path, "utf8").digest("hex").slice(0, 12);
}

/** The history with the run in progress (if any) ended by a failure, newest first. */
export function withFailedRun(context: ImapWorkerContext, error: string, at: string): FinishedRun[] {
  if (context.progress === null) return context.history;
  return [{ ...context.progress, finished_at: at, outcome: "failed" as const, skipped_messages: [], error }, ...context.history].slice(0, HISTORY);
}

/** What a run skipped, for the identity's last_error: the user learns that a message was not imported. */
export function skippedNote(outcome: AccountSyncOutcome): string {
  const listed = outcome.skipped_messages
    .slice(0, 3)
    .map((skipped) => `${skipped.mailbox === INBOX ? "" : `${skipped.mailbox} `}UID ${skipped.uid} (${skipped.reason})`);
  const more = outcome.skipped - listed.length;
  return `${outcome.skipped} message(s) skipped, not imported: ${listed.join("; ")}${more > 0 ? `; and ${more} more` : ""}`;
}
