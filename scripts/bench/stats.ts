// Small statistics over measured samples: percentiles, medians, rates and human-readable numbers.
import type { PushLatency } from "./results.ts";

/** The p-th percentile (0–100) by nearest rank; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/** Items per second. */
export function rate(items: number, elapsedMs: number): number {
  return elapsedMs > 0 ? (items * 1000) / elapsedMs : Number.NaN;
}

/** 123456 → "123.5k", 1234567 → "1.23M". */
export function formatCount(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return Number.isInteger(value) || value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

export function formatMs(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  return value >= 10 ? `${value.toFixed(1)} ms` : `${value.toFixed(3)} ms`;
}

export function formatMicros(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(value >= 10 ? 1 : 2)} µs` : "n/a";
}

export function formatPercent(fraction: number): string {
  return Number.isFinite(fraction) ? `${(fraction * 100).toFixed(0)} %` : "n/a";
}

export function formatBytes(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (Math.abs(value) >= 1024 * 1024) return `${(value / 1024 / 1024).toFixed(1)} MiB`;
  if (Math.abs(value) >= 1024) return `${(value / 1024).toFixed(2)} KiB`;
  return `${value.toFixed(0)} B`;
}

export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : "n/a";
}

/** A monotonic wall clock shared by processes on this machine (epoch ms, sub-ms precision). */
export function epochNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Latencies measured (null: not seen in time), as a report shows them: median, p90, max, how many were missed. */
export function latencySummary(samples: (number | null)[]): PushLatency {
  const seen = samples.filter((value): value is number => value !== null);
  return {
    samples: seen,
    median: median(seen),
    p90: percentile(seen, 90),
    max: seen.length === 0 ? Number.NaN : Math.max(...seen),
    missed: samples.length - seen.length,
  };
}
