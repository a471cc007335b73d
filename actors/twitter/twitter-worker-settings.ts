// What a Twitter worker is configured with (the X API and the app's key from CALIOPEN_X_*, read by
// supervisors/caliopen-config.ts; the node's notification sink), and the defaults a node starts from.
import type { NotificationSink } from "../notifications/notification-publisher.ts";
import type { XClientConfig } from "./x-client.ts";

export interface TwitterWorkerOptions {
  /** X API base URL and the app's consumer key/secret (OAuth 1.0a). */
  x: XClientConfig;
  /** `max_results` per page of DM events. */
  pageSize: number;
  /** Pages read at most per sync. */
  maxPages: number;
  /** An event the importer refuses this many syncs in a row is skipped for good. */
  maxImportAttempts: number;
  /** Waited past the rate limit's reset time before syncing again. */
  resetMarginMs: number;
  /** Where the user is told of a DM sent (a `message_sent` notification); none when left out. */
  notifications?: NotificationSink;
}

export const DEFAULT_TWITTER_OPTIONS: TwitterWorkerOptions = {
  x: {},
  pageSize: 100,
  maxPages: 50,
  maxImportAttempts: 5,
  resetMarginMs: 1_000,
};
