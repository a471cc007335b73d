// What every section of the report shares: a target's verdict, a scenario's failures, background load
// and logged warnings, and the units figures are written in.
import type { Outcome } from "./bench-run.ts";
import { formatCount, formatMs } from "./stats.ts";

export interface Verdict {
  target: string;
  measured: string;
  met: boolean | null;
}

export const mark = (met: boolean | null) => (met === null ? "not measured" : met ? "✅ met" : "❌ not met");

export const found = <T>(outcomes: Outcome<T>[], pick: (value: T) => boolean): T | undefined => {
  for (const outcome of outcomes) if (outcome.ok && pick(outcome.value)) return outcome.value;
  return undefined;
};

/** Background load per scenario process, flagged when it could have moved the figures. */
export function backgroundLine(outcomes: Outcome<unknown>[]): string[] {
  if (outcomes.length === 0) return [];
  const parts = outcomes.map((outcome) => `${outcome.label} ${outcome.backgroundCores.toFixed(2)}`);
  const worst = Math.max(...outcomes.map((outcome) => outcome.backgroundCores));
  return [
    "",
    `Cores kept busy by other processes during each run: ${parts.join(", ")}${worst > 0.2 ? " — **figures of the runs above 0.2 were disturbed**" : ""}.`,
  ];
}

export const failures = (outcomes: Outcome<unknown>[]): string[] =>
  outcomes.flatMap((outcome) => (outcome.ok ? [] : [`- **${outcome.label} failed**: ${outcome.error.split("\n")[0] ?? ""}`]));

/** The runtime's own warnings and errors during a scenario: a run that "worked" while the runtime struggled must say so. */
export function warningLines(
  sources: { label: string; warnings: Record<string, number> }[],
  intro = "Warnings and errors the runtime logged during these runs (for the raw durable baseline: its own failed publishes):",
): string[] {
  const lines: string[] = [];
  for (const { label, warnings } of sources) {
    const entries = Object.entries(warnings).sort((a, b) => b[1] - a[1]);
    if (entries.length === 0) continue;
    lines.push(`- **${label}**: ${entries.map(([message, count]) => `"${message}" × ${formatCount(count)}`).join(", ")}`);
  }
  return lines.length === 0 ? [] : ["", intro, "", ...lines];
}

/** A failed scenario in one line: how the process ended, and the error it printed. */
export function failureText(error: string): string {
  const [first, ...rest] = error.split("\n");
  const cause = rest.find((line) => /^\s*(\w*Error|error)\b.*:/.test(line) || /^Error/.test(line.trim()));
  return `**Failed**: ${first ?? ""}${cause === undefined ? "" : ` — ${cause.trim()}`}`;
}
export const seconds = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(ms >= 10_000 ? 1 : 2)} s` : "n/a");
export const perMessage = (ms: number, messages: number) => formatMs(ms / messages);

export const MiB = 1024 * 1024;

export const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
export const signedMib = (bytes: number) => `${bytes < 0 ? "−" : "+"}${mib(Math.abs(bytes))}`;
