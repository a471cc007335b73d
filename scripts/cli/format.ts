// How values from the debug replies are shown in tables and lines: state values, times, JSON.

/** An XState state value: `idle`, or `{"sync":"fetching"}` for nested states. */
export function formatState(value: unknown): string {
  if (value === null || value === undefined) return "-";
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function compactJson(value: unknown): string {
  return value === undefined ? "-" : JSON.stringify(value);
}

/** "12s ago", "in 5m", "now"; anything that is not a date is shown as it is. */
export function relativeTime(iso: string | null | undefined, now: number = Date.now()): string {
  if (iso === null || iso === undefined || iso === "") return "-";
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const seconds = Math.round((now - at) / 1000);
  const magnitude = Math.abs(seconds);
  if (magnitude < 1) return "now";
  const amount =
    magnitude < 60
      ? `${magnitude}s`
      : magnitude < 3600
        ? `${Math.floor(magnitude / 60)}m`
        : magnitude < 86_400
          ? `${Math.floor(magnitude / 3600)}h`
          : `${Math.floor(magnitude / 86_400)}d`;
  return seconds > 0 ? `${amount} ago` : `in ${amount}`;
}

/** Local "2025-06-01 14:03:07", for records an operator compares with logs. */
export function localDateTime(iso: string | null | undefined): string {
  if (iso === null || iso === undefined || iso === "") return "-";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return iso;
  return `${at.getFullYear()}-${two(at.getMonth() + 1)}-${two(at.getDate())} ${clock(at)}`;
}

/** Local "14:03:07.123", for lines printed as things happen. */
export function localClock(iso: string | null | undefined): string {
  const at = iso === null || iso === undefined ? new Date() : new Date(iso);
  if (Number.isNaN(at.getTime())) return String(iso);
  return `${clock(at)}.${String(at.getMilliseconds()).padStart(3, "0")}`;
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function clock(at: Date): string {
  return `${two(at.getHours())}:${two(at.getMinutes())}:${two(at.getSeconds())}`;
}

function two(n: number): string {
  return String(n).padStart(2, "0");
}
