// This process's memory, sampled on a timer while something runs: its peak, and whether it grows over
// the run. Timed samples include garbage not yet collected (V8 lets the old space fill before a major GC),
// so growth is read from the samples taken right after each major GC: what was still alive then.
import { constants, type PerformanceEntry, PerformanceObserver } from "node:perf_hooks";

/** One reading of `process.memoryUsage()`, in bytes. */
export interface MemorySample {
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

export interface TimedMemorySample extends MemorySample {
  /** ms since sampling started. */
  at: number;
}

/** Peaks over a run, each against `idle` (the same process before the run, settled by full GCs). */
export interface MemoryTrace {
  everyMs: number;
  samples: number;
  idle: MemorySample;
  /** The highest value of each figure over the run (each at its own moment). */
  peak: MemorySample;
  /** heapUsed + external (external includes arrayBuffers: Buffers live there), the JavaScript side's memory. */
  peakJs: number;
  /** The highest heapUsed + external in the first and in the last quarter of the run's time. */
  firstQuarterPeakJs: number;
  lastQuarterPeakJs: number;
  /** Major GCs during the run, and the highest heapUsed + external just after one in the first and the last quarter (NaN: none there). */
  majorGcs: number;
  firstQuarterAfterGcJs: number;
  lastQuarterAfterGcJs: number;
}

const js = (sample: MemorySample) => sample.heapUsed + sample.external;

/** Starts sampling `process.memoryUsage()` every `everyMs`; the returned function stops and summarises. */
export function startMemorySampler(idle: MemorySample, everyMs = 100): () => MemoryTrace {
  const started = performance.now();
  const samples: TimedMemorySample[] = [];
  const sample = () => {
    const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
    samples.push({ at: performance.now() - started, heapUsed, external, arrayBuffers, rss });
  };
  const afterGc: TimedMemorySample[] = [];
  // Entries arrive shortly after the collection, before the heap has grown much again.
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      // A "gc" entry carries its kind in `detail` (Node ≥ 16), which these typings leave out.
      const { detail } = entry as PerformanceEntry & { detail?: { kind?: number } };
      if (detail?.kind !== constants.NODE_PERFORMANCE_GC_MAJOR) continue;
      const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
      afterGc.push({ at: performance.now() - started, heapUsed, external, arrayBuffers, rss });
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  sample();
  const timer = setInterval(sample, everyMs);
  return () => {
    clearInterval(timer);
    observer.disconnect();
    sample();
    const span = performance.now() - started;
    const peakOf = (list: TimedMemorySample[], pick: (sample: MemorySample) => number) => Math.max(...list.map(pick));
    const quarter = (from: number, to: number, list = samples) => list.filter((entry) => entry.at >= from * span && entry.at <= to * span);
    const peakAfterGc = (list: TimedMemorySample[]) => (list.length === 0 ? Number.NaN : peakOf(list, js));
    return {
      everyMs,
      samples: samples.length,
      idle,
      peak: {
        heapUsed: peakOf(samples, (entry) => entry.heapUsed),
        external: peakOf(samples, (entry) => entry.external),
        arrayBuffers: peakOf(samples, (entry) => entry.arrayBuffers),
        rss: peakOf(samples, (entry) => entry.rss),
      },
      peakJs: peakOf(samples, js),
      firstQuarterPeakJs: peakOf(quarter(0, 0.25), js),
      lastQuarterPeakJs: peakOf(quarter(0.75, 1), js),
      majorGcs: afterGc.length,
      firstQuarterAfterGcJs: peakAfterGc(quarter(0, 0.25, afterGc)),
      lastQuarterAfterGcJs: peakAfterGc(quarter(0.75, 1, afterGc)),
    };
  };
}
