// What an IMAP worker is configured with (CALIOPEN_IMAP_*, read by supervisors/caliopen-config.ts),
// and the defaults a node starts from.
import type { BackoffPolicy } from "../../runtime/backoff.ts";
import { DestinationPolicy } from "../network/destination-policy.ts";
import type { AccessTokens } from "../oauth2/access-tokens.ts";
import { DEFAULT_IMAP_SYNC_LIMITS, type ImapSyncLimits } from "./imap-limits.ts";
import type { ImportBatchPort } from "./sync-run.ts";

export interface ImapWorkerOptions extends ImapSyncLimits {
  /** Keep a connection open and sync within seconds of new mail. */
  push: boolean;
  /** New IMAP connections this node opens a second at most, all accounts together (a watch's or a sync's). */
  connectsPerSecond: number;
  /** How long a connection no watch uses stays open after a sync, for the next one (see account-connection.ts). */
  keepUnwatchedMs: number;
  /** Messages in flight during a sync (at least two import batches' worth: see sync-run.ts). */
  concurrency: number;
  /** Pause between failed syncs. */
  retry: BackoffPolicy;
  /** After this many failed syncs in a row, ask the identities worker to poll half as often. */
  slowDownAfterFailures: number;
  /** After failing for this long without a success, the identity is disabled (72 h). */
  disableAfterMs: number;
  /** Which IMAP servers may be reached, and how (TLS exceptions, extra CAs): the node's destination policy. */
  destinations: DestinationPolicy;
  /** Sends a sync's raws to the user's inbound actor in batches (the node's route to it). */
  importBatch: ImportBatchPort;
  /** Refreshes the access tokens of OAuth 2.0 accounts (the node's, shared with the SMTP bridge); null: none can log in. */
  accessTokens: AccessTokens | null;
}

export const DEFAULT_IMAP_OPTIONS: ImapWorkerOptions = {
  push: true,
  connectsPerSecond: 100,
  keepUnwatchedMs: 30_000,
  concurrency: 8,
  retry: { initialMs: 30_000, maxMs: 30 * 60_000, factor: 2, jitter: 0.2 },
  slowDownAfterFailures: 3,
  disableAfterMs: 72 * 3600_000,
  // Public addresses only, TLS required and verified: a node gives its own (with the operator's allow list).
  destinations: new DestinationPolicy(),
  // A worker without its node's route imports nothing (every message fails, and is retried next sync).
  importBatch: async () => {
    throw new Error("this node gives IMAP workers no route to the inbound actors");
  },
  accessTokens: null,
  ...DEFAULT_IMAP_SYNC_LIMITS,
};
