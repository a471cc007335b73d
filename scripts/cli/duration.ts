// Durations on the command line (`--expires`): a whole number and a unit, `45s`, `30m`, `12h`, `90d`,
// or `never`.
import { UsageError } from "./errors.ts";

const DAY_MS = 86_400_000;
const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: DAY_MS };
const MAX_DAYS = 3650;

/** Milliseconds, or null for `never`; UsageError (exit 2) for anything else. */
export function parseDuration(option: string, raw: string): number | null {
  const text = raw.trim().toLowerCase();
  if (text === "never") return null;
  const match = /^(\d{1,7})([smhd])$/.exec(text);
  const ms = match === null ? 0 : Number(match[1]) * (UNIT_MS[match[2] as string] ?? 0);
  if (ms <= 0) throw new UsageError(`${option} expects a duration such as 30m, 12h or 90d, or "never", got "${raw}"`);
  if (ms > MAX_DAYS * DAY_MS) throw new UsageError(`${option} is at most ${MAX_DAYS}d (for longer, "never"), got "${raw}"`);
  return ms;
}
