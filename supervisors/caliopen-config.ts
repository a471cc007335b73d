// Configuration of the Caliopen services (the node's own settings are in node-config.ts), from
// environment variables documented in the README; each part is read by its own module.

import type { Logger } from "pino";
import { DEFAULT_IMAP_SYNC_LIMITS } from "../actors/imap/imap-limits.ts";
import { DEFAULT_IMAP_OPTIONS, type ImapWorkerOptions } from "../actors/imap/imap-worker-settings.ts";
import type { DestinationSettings } from "../actors/network/destination-policy.ts";
import type { NotificationHistoryLimits } from "../actors/notifications/notification-stream.ts";
import type { OAuth2Providers } from "../actors/oauth2/oauth2-providers.ts";
import type { TwitterWorkerOptions } from "../actors/twitter/twitter-worker-settings.ts";
import type { HttpSettings } from "../api/http-settings.ts";
import { replyWithinMs } from "../contract/contract-table.ts";
import type { SecretBox } from "../runtime/secret-box.ts";
import { destinationsFromEnv } from "./destinations-config.ts";
import { integerSetting, listenSetting, onOffSetting, textSetting } from "./env-settings.ts";
import { httpSettingsFromEnv } from "./http-config.ts";
import { type KeysConfig, keysConfigFromEnv } from "./key-sources-config.ts";
import { type MailConfig, mailConfigFromEnv } from "./mail-config.ts";
import { notificationHistoryFromEnv } from "./notifications-config.ts";
import { oauth2ProvidersFromEnv } from "./oauth2-config.ts";
import { DEFAULT_POLLER_CHECK_EVERY_MS } from "./poller-check.ts";
import { nodeSecretKeys } from "./secret-keys.ts";

export interface CaliopenConfig {
  /** Seal identity credentials at rest (the first key seals, all open); every node of a deployment must hold the deployment's key. */
  secrets: SecretBox;
  /** Where the HTTP API listens, and its edges (rate limits, timeouts, CORS, TLS, trusted proxies; defaults when left out); null: no API on this node. */
  api: { host: string; port: number; http?: HttpSettings } | null;
  /** How long the API waits for a `deliver` reply (the contract says 30 s). */
  deliverTimeoutMs: number;
  mail: MailConfig;
  /** IMAP workers' settings (tests shorten the retry pauses). */
  imap: Partial<ImapWorkerOptions>;
  /** Twitter workers' settings: the X API and the app's OAuth 1.0a consumer key (a secret: never logged). */
  twitter: Partial<TwitterWorkerOptions>;
  /** Where public keys are looked up (discover_key) and published (publish_key / delete_key). */
  keys: KeysConfig;
  /** Which servers named by users or contacts may be reached, and the TLS exceptions and extra CAs for them. */
  destinations: DestinationSettings;
  /** The OAuth 2.0 providers of mail accounts (their token endpoints and the platform's client secrets: never logged). */
  oauth2Providers: OAuth2Providers;
  /** How often one node of the cluster checks that every active remote identity has its poller (poller-check.ts). */
  pollerCheckEveryMs: number;
  /** What the history of notifications keeps at most besides its 7 days (defaults when left out). */
  notifications?: NotificationHistoryLimits;
}

export function caliopenConfigFromEnv(env: NodeJS.ProcessEnv, dataDir: string, logger: Logger): CaliopenConfig {
  const apiListen = listenSetting(env, "CALIOPEN_HTTP", "127.0.0.1:8080");
  const deliverTimeoutMs = integerSetting(env, "CALIOPEN_DELIVER_TIMEOUT_MS", replyWithinMs("outboundSMTP", "deliver"), "number of milliseconds");
  // Everything else is read before the secret key, which may be made on first start: a mistake then leaves nothing behind.
  const api = apiListen === null ? null : { ...apiListen, http: httpSettingsFromEnv(env, deliverTimeoutMs) };
  const mail = mailConfigFromEnv(env);
  const imap = imapFromEnv(env);
  const keys = keysConfigFromEnv(env);
  const destinations = destinationsFromEnv(env);
  const oauth2Providers = oauth2ProvidersFromEnv(env);
  const twitter = twitterFromEnv(env);
  const pollerCheckEveryMs = integerSetting(env, "CALIOPEN_POLLER_CHECK_EVERY_MS", DEFAULT_POLLER_CHECK_EVERY_MS, "number of milliseconds");
  const notifications = notificationHistoryFromEnv(env);
  return {
    secrets: nodeSecretKeys(env, dataDir, logger),
    api,
    deliverTimeoutMs,
    mail,
    imap,
    twitter,
    keys,
    destinations,
    oauth2Providers,
    pollerCheckEveryMs,
    notifications,
  };
}

function imapFromEnv(env: NodeJS.ProcessEnv): Partial<ImapWorkerOptions> {
  const milliseconds = "number of milliseconds";
  return {
    push: onOffSetting(env, "CALIOPEN_IMAP_PUSH", true),
    connectsPerSecond: integerSetting(env, "CALIOPEN_IMAP_CONNECTS_PER_SECOND", DEFAULT_IMAP_OPTIONS.connectsPerSecond, "number of connections a second"),
    maxMessageBytes: integerSetting(env, "CALIOPEN_IMAP_MAX_MESSAGE_SIZE", DEFAULT_IMAP_SYNC_LIMITS.maxMessageBytes, "number of bytes"),
    timeoutMs: integerSetting(env, "CALIOPEN_IMAP_TIMEOUT_MS", DEFAULT_IMAP_SYNC_LIMITS.timeoutMs, milliseconds),
    syncMaxMs: integerSetting(env, "CALIOPEN_IMAP_SYNC_MAX_MS", DEFAULT_IMAP_SYNC_LIMITS.syncMaxMs, milliseconds),
  };
}

/** The X API's address and the app's consumer key (secrets: never logged). */
function twitterFromEnv(env: NodeJS.ProcessEnv): Partial<TwitterWorkerOptions> {
  const baseUrl = textSetting(env, "CALIOPEN_X_API_URL");
  const appKey = textSetting(env, "CALIOPEN_X_APP_KEY");
  const appSecret = textSetting(env, "CALIOPEN_X_APP_SECRET");
  return {
    x: {
      ...(baseUrl !== undefined && { baseUrl }),
      ...(appKey !== undefined && { appKey }),
      ...(appSecret !== undefined && { appSecret }),
    },
  };
}
