// The HTTP API's edges from CALIOPEN_HTTP_* (documented in the README): rate limits, timeouts, CORS
// origins, TLS, trusted reverse proxies, the dashboard's and the notifications' live streams. Every mistake is a StartupError naming the variable.
import { isIP } from "node:net";
import { type DashboardLimits, DEFAULT_DASHBOARD_LIMITS } from "../api/dashboard-limits.ts";
import { DEFAULT_RATE_LIMITS, DEFAULT_TIMEOUTS, type HttpSettings, type Timeouts } from "../api/http-settings.ts";
import { DEFAULT_NOTIFICATION_STREAM_LIMITS, type NotificationStreamLimits } from "../api/notification-streams.ts";
import { StartupError } from "../runtime/startup-error.ts";
import { integerSetting, listSetting, tlsPairSetting } from "./env-settings.ts";

/** `deliverTimeoutMs`: a `deliver` request is silent that long, so idle connections must outlast it. */
export function httpSettingsFromEnv(env: NodeJS.ProcessEnv, deliverTimeoutMs: number): HttpSettings {
  return {
    rateLimits: {
      perToken: perMinute(env.CALIOPEN_HTTP_RATE_LIMIT, "CALIOPEN_HTTP_RATE_LIMIT", DEFAULT_RATE_LIMITS.perToken),
      perIp: perMinute(env.CALIOPEN_HTTP_RATE_LIMIT_IP, "CALIOPEN_HTTP_RATE_LIMIT_IP", DEFAULT_RATE_LIMITS.perIp),
    },
    timeouts: timeouts(env, deliverTimeoutMs),
    corsOrigins: listSetting(env, "CALIOPEN_HTTP_CORS").map(origin),
    tls: tlsPairSetting(env, "CALIOPEN_HTTP_TLS_CERT", "CALIOPEN_HTTP_TLS_KEY"),
    trustedProxies: listSetting(env, "CALIOPEN_HTTP_TRUST_PROXY").map(proxy),
    dashboard: dashboardLimits(env),
    notifications: notificationStreamLimits(env),
  };
}

function notificationStreamLimits(env: NodeJS.ProcessEnv): NotificationStreamLimits {
  const streams = "number of streams";
  const defaults = DEFAULT_NOTIFICATION_STREAM_LIMITS;
  return {
    ...defaults,
    maxStreams: integerSetting(env, "CALIOPEN_NOTIFICATIONS_MAX_STREAMS", defaults.maxStreams, streams),
    maxStreamsPerToken: integerSetting(env, "CALIOPEN_NOTIFICATIONS_MAX_STREAMS_PER_TOKEN", defaults.maxStreamsPerToken, streams),
  };
}

function dashboardLimits(env: NodeJS.ProcessEnv): DashboardLimits {
  return {
    maxStreams: integerSetting(env, "CALIOPEN_DASHBOARD_MAX_STREAMS", DEFAULT_DASHBOARD_LIMITS.maxStreams, "number of streams"),
    maxStreamsPerToken: integerSetting(env, "CALIOPEN_DASHBOARD_MAX_STREAMS_PER_TOKEN", DEFAULT_DASHBOARD_LIMITS.maxStreamsPerToken, "number of streams"),
    eventsPerSecond: integerSetting(env, "CALIOPEN_DASHBOARD_EVENTS_PER_SECOND", DEFAULT_DASHBOARD_LIMITS.eventsPerSecond, "number of events a second"),
    recheckMs: DEFAULT_DASHBOARD_LIMITS.recheckMs,
  };
}

function timeouts(env: NodeJS.ProcessEnv, deliverTimeoutMs: number): Timeouts {
  const headersMs = milliseconds(env, "CALIOPEN_HTTP_HEADERS_TIMEOUT_MS", DEFAULT_TIMEOUTS.headersMs);
  const requestMs = milliseconds(env, "CALIOPEN_HTTP_REQUEST_TIMEOUT_MS", DEFAULT_TIMEOUTS.requestMs);
  const idleMs = milliseconds(env, "CALIOPEN_HTTP_IDLE_TIMEOUT_MS", Math.max(DEFAULT_TIMEOUTS.idleMs, deliverTimeoutMs + 30_000));
  const keepAliveMs = milliseconds(env, "CALIOPEN_HTTP_KEEPALIVE_TIMEOUT_MS", DEFAULT_TIMEOUTS.keepAliveMs);
  if (headersMs > requestMs)
    throw new StartupError(
      `CALIOPEN_HTTP_HEADERS_TIMEOUT_MS (${headersMs}) must not be over CALIOPEN_HTTP_REQUEST_TIMEOUT_MS (${requestMs}): headers are part of the request`,
    );
  if (idleMs <= deliverTimeoutMs) {
    throw new StartupError(
      `CALIOPEN_HTTP_IDLE_TIMEOUT_MS (${idleMs}) must be over CALIOPEN_DELIVER_TIMEOUT_MS (${deliverTimeoutMs}): a connection waiting for a deliver reply is silent that long`,
    );
  }
  return { headersMs, requestMs, idleMs, keepAliveMs };
}

function milliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  return integerSetting(env, name, fallback, "number of milliseconds");
}

/** `https://app.example.org` or `http://localhost:3000`: what browsers send as Origin. */
function origin(value: string): string {
  let parsed: URL | null = null;
  try {
    parsed = new URL(value);
  } catch {
    // reported below
  }
  if (parsed === null || !/^https?:$/.test(parsed.protocol) || parsed.origin !== value) {
    throw new StartupError(
      `CALIOPEN_HTTP_CORS lists origins such as https://app.example.org (scheme, host and port only; no "*", path or trailing slash), got "${value}"`,
    );
  }
  return value;
}

/** An address, a CIDR, or proxy-addr's names for address ranges. */
function proxy(value: string): string {
  if (["loopback", "linklocal", "uniquelocal"].includes(value)) return value;
  const [address = "", prefix, ...rest] = value.split("/");
  const version = isIP(address);
  const bits = version === 4 ? 32 : 128;
  const prefixOk = prefix === undefined || (/^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= bits);
  if (version === 0 || !prefixOk || rest.length > 0) {
    throw new StartupError(
      `CALIOPEN_HTTP_TRUST_PROXY lists the reverse proxies' addresses or CIDRs (10.0.0.5, 10.0.0.0/24, loopback), or is off; got "${value}"`,
    );
  }
  return value;
}

function perMinute(raw: string | undefined, name: string, fallback: number | null): number | null {
  const value = raw?.trim() ?? "";
  if (value === "") return fallback;
  if (value === "off") return null;
  const count = Number(value);
  if (!Number.isInteger(count) || count < 1) throw new StartupError(`${name} must be a number of requests a minute, or off, got "${raw}"`);
  return count;
}
