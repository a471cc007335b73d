// How much of a node the dashboard's live streams may take: each stream holds a connection, a share of
// the transitions subscription and the time spent writing to it, so their number is bounded per node and
// per token, and each one is sent at most so many events a second (the rest coalesced or dropped).

export interface DashboardLimits {
  /** Event streams open at once on this node, all tokens together. */
  maxStreams: number;
  /** Event streams one token may hold open at once on this node. */
  maxStreamsPerToken: number;
  /** Events a second sent on one stream; beyond, an actor's transitions are coalesced (the latest kept) or dropped. */
  eventsPerSecond: number;
  /** How often a stream's token is checked again: a revoked token, or a user no longer admin, keeps its streams at most this long. */
  recheckMs: number;
}

export const DEFAULT_DASHBOARD_LIMITS: DashboardLimits = { maxStreams: 32, maxStreamsPerToken: 4, eventsPerSecond: 50, recheckMs: 30_000 };
