// The history of notifications' bounds from CALIOPEN_NOTIFICATIONS_* (documented in the README): what the
// JetStream stream of notifications keeps at most, besides its 7 days. Every mistake is a StartupError naming the variable.
import { DEFAULT_NOTIFICATION_HISTORY_LIMITS, type NotificationHistoryLimits } from "../actors/notifications/notification-stream.ts";
import { integerSetting } from "./env-settings.ts";

export function notificationHistoryFromEnv(env: NodeJS.ProcessEnv): NotificationHistoryLimits {
  const defaults = DEFAULT_NOTIFICATION_HISTORY_LIMITS;
  return {
    maxBytes: integerSetting(env, "CALIOPEN_NOTIFICATIONS_MAX_BYTES", defaults.maxBytes, "number of bytes"),
    maxMessages: integerSetting(env, "CALIOPEN_NOTIFICATIONS_MAX_MESSAGES", defaults.maxMessages, "number of notifications"),
    maxPerUser: integerSetting(env, "CALIOPEN_NOTIFICATIONS_MAX_PER_USER", defaults.maxPerUser, "number of notifications"),
  };
}
