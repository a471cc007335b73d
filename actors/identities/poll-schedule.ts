// When a poller's next tick is due. Ticks sit on a fixed grid (the previous due time plus the
// interval), so they do not drift by the time each tick takes; a poller that was down for several
// intervals fires once when it comes back, then returns to the grid: no burst of missed ticks.

import type { IdentityProtocol } from "../store/model.ts";

/** Shortest interval honoured, whatever the configuration says: a poll loop must not spin. */
export const MIN_INTERVAL_MS = 1_000;
/** 3 days: the longest interval the bridges may ask for (docs/decisions.md §2). */
export const MAX_INTERVAL_MINUTES = 4_320;

/** Which protocols are polled, and the subject their `sync` goes to. */
export const SYNC_SUBJECT: Partial<Record<IdentityProtocol, string>> = { email: "IMAPfetcher", imap: "IMAPfetcher", twitter: "twitter_dm" };
/** The subject of the worker lifecycle orders for each polled protocol. */
export const WORKER_SUBJECT: Partial<Record<IdentityProtocol, string>> = { email: "imap_worker", imap: "imap_worker", twitter: "twitter_worker" };

/** Minutes as written on the wire (`"15"`, `"0.5"`) to milliseconds; null when it is not a positive decimal. */
export function intervalMs(minutes: string | undefined | null): number | null {
  if (minutes === undefined || minutes === null || !/^\s*[0-9]+(\.[0-9]+)?\s*$/.test(minutes)) return null;
  const value = Number(minutes);
  if (!(value > 0)) return null;
  return Math.max(MIN_INTERVAL_MS, Math.min(value, MAX_INTERVAL_MINUTES) * 60_000);
}

/** The first due time on the grid `from + k × interval` that is after `now`. */
export function nextDue(from: number, interval: number, now: number): number {
  if (from + interval > now) return from + interval;
  return from + interval * (Math.floor((now - from) / interval) + 1);
}
