// When a poller's next tick is due, in one of two forms. An interval (`poll_interval`, minutes): ticks sit
// on a fixed grid (the previous due time plus the interval), so they do not drift by the time each tick
// takes. A cron pattern (`poll_schedule`, e.g. `*/5 7-20 * * 1-5`, in UTC), computed by croner: ticks
// at the times it names. Either way the next tick is an absolute time the poller persists, and a poller
// that was down for several ticks fires once when it comes back, then returns to its schedule: no burst
// of missed ticks.
import { Cron } from "croner";
import type { IdentityInfos, IdentityProtocol } from "../store/model.ts";

/** Shortest interval honoured, whatever the configuration says: a poll loop must not spin. */
export const MIN_INTERVAL_MS = 1_000;
/** 3 days: the longest interval the bridges may ask for (docs/decisions.md §2). */
export const MAX_INTERVAL_MINUTES = 4_320;

/** Which protocols are polled, and the subject their `sync` goes to. */
export const SYNC_SUBJECT: Partial<Record<IdentityProtocol, "IMAPfetcher" | "twitter_dm">> = {
  email: "IMAPfetcher",
  imap: "IMAPfetcher",
  twitter: "twitter_dm",
};
/** The subject of the worker lifecycle orders for each polled protocol. */
export const WORKER_SUBJECT: Partial<Record<IdentityProtocol, "imap_worker" | "twitter_worker">> = {
  email: "imap_worker",
  imap: "imap_worker",
  twitter: "twitter_worker",
};

/** Minutes as written on the wire (`"15"`, `"0.5"`) to milliseconds; null when it is not a positive decimal. */
export function intervalMs(minutes: string | undefined | null): number | null {
  if (minutes === undefined || minutes === null || !/^\s*[0-9]+(\.[0-9]+)?\s*$/.test(minutes)) return null;
  const value = Number(minutes);
  if (!(value > 0)) return null;
  return Math.max(MIN_INTERVAL_MS, Math.min(value, MAX_INTERVAL_MINUTES) * 60_000);
}

/** The longest `poll_schedule` taken: a cron pattern is a few fields. */
export const MAX_SCHEDULE_CHARS = 128;

/**
 * Why `pattern` is not a usable poll schedule, or null when it is: croner's syntax (5 fields, or 6 with
 * seconds first; no year field), and it must fire at least once more. Seconds are allowed: an interval
 * may already be as short as MIN_INTERVAL_MS, which is a second too.
 */
export function scheduleError(pattern: string): string | null {
  const cron = cronOf(pattern);
  if (typeof cron === "string") return cron;
  return cron.nextRun() === null ? "this schedule never fires" : null;
}

/** The pattern parsed, or why it cannot be. */
function cronOf(pattern: string): Cron | string {
  if (pattern.length > MAX_SCHEDULE_CHARS) return `a poll schedule is at most ${MAX_SCHEDULE_CHARS} characters`;
  const fields = pattern.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6) return "a poll schedule is a cron pattern of 5 fields (minute hour day month weekday), or 6 with seconds first";
  try {
    return new Cron(pattern.trim(), { timezone: "UTC", paused: true });
  } catch (err) {
    return `not a cron pattern: ${(err as Error).message}`;
  }
}

/** The identity's poll schedule when it sets a usable one, else null (its interval applies). */
export function scheduleOf(infos: IdentityInfos): string | null {
  const pattern = infos.poll_schedule;
  return typeof pattern === "string" && pattern.trim() !== "" ? pattern.trim() : null;
}

/**
 * The first time after `now` that `pattern` names, and after `previous` (the tick just done, if any: a
 * node whose clock is a little behind the one that did it must not do it again); null when it fires no
 * more (or is not a usable pattern).
 */
export function nextScheduled(pattern: string, now: number, previous?: number): number | null {
  const cron = cronOf(pattern);
  if (typeof cron === "string") return null;
  return cron.nextRun(new Date(Math.max(now, previous ?? now)))?.getTime() ?? null;
}

/** The first due time on the grid `from + k × interval` that is after `now`. */
export function nextDue(from: number, interval: number, now: number): number {
  if (from + interval > now) return from + interval;
  return from + interval * (Math.floor((now - from) / interval) + 1);
}
