// The HTTP API's edges: how often a client may call, how long it may take to send a request, which
// browser origins may call, whether it speaks TLS, and which reverse proxies are believed about the
// client's address. A node reads them from CALIOPEN_HTTP_* (supervisors/http-config.ts); the defaults
// here are a node's with none of those set.
import { type DashboardLimits, DEFAULT_DASHBOARD_LIMITS } from "./dashboard-limits.ts";
import { DEFAULT_NOTIFICATION_STREAM_LIMITS, type NotificationStreamLimits } from "./notification-streams.ts";

export interface RateLimits {
  /** Requests a minute per token, on this node; null: no limit. */
  perToken: number | null;
  /** Requests a minute per client address that carry no valid token (none, unknown, expired, revoked), on this node; null: no limit. */
  perIp: number | null;
}

export interface Timeouts {
  /** How long a client has to send a request's headers (and, on HTTPS, to finish the TLS handshake). */
  headersMs: number;
  /** How long a client has to send a whole request, body included. */
  requestMs: number;
  /** A connection with no traffic either way this long is closed; longer than a `deliver` wait, which is silent. */
  idleMs: number;
  /** An idle keep-alive connection between two requests is closed after this long. */
  keepAliveMs: number;
}

export interface HttpSettings {
  rateLimits: RateLimits;
  timeouts: Timeouts;
  /** Origins (`https://app.example.org`) whose pages may call the API; empty: no CORS headers at all. */
  corsOrigins: string[];
  /** Serve HTTPS with this certificate chain and key (PEM); null: plain HTTP. */
  tls: { cert: string; key: string } | null;
  /** Addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed; empty: none is. */
  trustedProxies: string[];
  /** Bounds of the dashboard's live event streams on this node. */
  dashboard: DashboardLimits;
  /** Bounds of the users' notification event streams on this node. */
  notifications: NotificationStreamLimits;
}

export const DEFAULT_RATE_LIMITS: RateLimits = { perToken: 600, perIp: 60 };

/** The default wait for a `deliver` reply is 30 s: idle connections get that and 30 s more. */
export const DEFAULT_TIMEOUTS: Timeouts = { headersMs: 10_000, requestMs: 60_000, idleMs: 60_000, keepAliveMs: 5_000 };

export const DEFAULT_HTTP_SETTINGS: HttpSettings = {
  rateLimits: DEFAULT_RATE_LIMITS,
  timeouts: DEFAULT_TIMEOUTS,
  corsOrigins: [],
  tls: null,
  trustedProxies: [],
  dashboard: DEFAULT_DASHBOARD_LIMITS,
  notifications: DEFAULT_NOTIFICATION_STREAM_LIMITS,
};
