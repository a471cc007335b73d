// What a Twitter worker holds (its context: saved in its snapshot, shown to operators), what it takes
// (its event union: the contract's orders, what its sync run tells it, a refusal of its credentials, its
// rate-limit deadline), and how a sync's end is written into it: the error classified by kind, the run
// into its history, the events given up on into their list.
import type { ContractMessage } from "../../contract/contract-message.ts";
import type { DeadlineMessage, RELOADED_EVENT, TypedMessage } from "../../runtime/actor-family.ts";
import type { Deadlines } from "../../runtime/deadlines.ts";
import type { PendingDelivery } from "../bridges/delivery-queue.ts";
import type { XUser } from "./dm-raw.ts";
import { DmSyncFailed, type DmSyncOutcome, type DmSyncProgress, IdentityGone, type PendingImport, type SkippedEvent } from "./dm-sync.ts";
import { InvalidCredentials, RateLimited } from "./x-client.ts";

export const RATE_LIMIT_RESET = "ratelimit.reset";
/** Finished runs and skipped events kept in the context. */
const HISTORY = 5;
const SKIPPED_KEPT = 20;

export interface TwitterSyncRun {
  total: number;
  done: number;
  skipped: number;
  started_at: string;
}

/** A finished run: "done", "stopped" (an import refused), or the kind of failure that ended it. */
export type FinishedTwitterRun = TwitterSyncRun & { finished_at: string; outcome: string };

export interface TwitterWorkerContext {
  identity_id: string;
  user_id: string;
  /** The newest DM event imported; ids are decimal strings compared as big integers. */
  last_seen_id: string | null;
  /** The account behind the credentials (from `users/me`), cached until a reload. */
  account: XUser | null;
  /** The sync running now (or the last one), for operators. */
  progress: TwitterSyncRun | null;
  history: FinishedTwitterRun[];
  /** A sync asked for while one runs or while rate-limited: done right after. */
  requested: boolean;
  last_sync: string | null;
  last_error: { message: string; at: string } | null;
  rate_limited_until: string | null;
  /** The poll interval before this worker asked for a slower one; restored after a sync succeeds. */
  slowed_from: string | null;
  /** The event whose import was refused, with its stored raw, retried first at the next sync. */
  retry: PendingImport | null;
  /** Events given up on, newest last, for operators. */
  skipped: SkippedEvent[];
  /** `deliver` requests waiting or running, oldest first. */
  deliveries: PendingDelivery[];
  deadlines: Deadlines;
}

export type SyncFailureKind = "gone" | "rate_limited" | "credentials" | "error";

export interface SyncFailure {
  kind: SyncFailureKind;
  message: string;
  reset_at: string | null;
  poll_interval: string | null;
  progress: DmSyncProgress | null;
  retry: PendingImport | null;
}

/** The orders the worker takes, what its sync run tells it, a refusal of its credentials, its deadline. */
export type TwitterWorkerEvent =
  | ContractMessage<"twitter_dm", "sync">
  | ContractMessage<"twitter_dm", "deliver">
  | TypedMessage<"sync.progress", DmSyncProgress>
  | TypedMessage<"sync.done", DmSyncOutcome>
  | TypedMessage<"sync.failed", SyncFailure>
  | TypedMessage<"credentials.refused", { message: string }>
  | TypedMessage<typeof RELOADED_EVENT, Record<string, never>>
  | DeadlineMessage<typeof RATE_LIMIT_RESET>;

/**
 * What a sync threw, as the worker takes it: the kind of failure, how far the run got, and the event to
 * retry first (`retryGiven`, the one the run started with, unless the run says otherwise).
 */
export function syncFailure(err: unknown, retryGiven: PendingImport | null): SyncFailure {
  const cause = err instanceof DmSyncFailed ? err.reason : err;
  return {
    kind:
      cause instanceof IdentityGone ? "gone" : cause instanceof RateLimited ? "rate_limited" : cause instanceof InvalidCredentials ? "credentials" : "error",
    message: cause instanceof Error ? cause.message : String(cause),
    reset_at: cause instanceof RateLimited ? cause.resetAt.toISOString() : null,
    poll_interval: err instanceof DmSyncFailed ? err.poll_interval : null,
    progress: err instanceof DmSyncFailed ? err.progress : null,
    retry: err instanceof DmSyncFailed ? err.retry : retryGiven,
  };
}

/** The history with a run that ended (how: `outcome`), newest first. */
export function withFinishedRun(context: TwitterWorkerContext, run: TwitterSyncRun, at: string, outcome: string): FinishedTwitterRun[] {
  return [{ ...run, finished_at: at, outcome }, ...context.history].slice(0, HISTORY);
}

/** The events given up on with a run's added, the latest few kept, newest last. */
export function withSkippedEvents(context: TwitterWorkerContext, events: SkippedEvent[]): SkippedEvent[] {
  return [...context.skipped, ...events].slice(-SKIPPED_KEPT);
}
