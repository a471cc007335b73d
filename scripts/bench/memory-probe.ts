// Memory after a forced full GC, so deltas count live objects and not garbage waiting to be collected.
import type { MemorySample } from "./memory-sampler.ts";

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Needs `node --expose-gc`. Several GCs with event-loop turns between them let finalizers and weak callbacks run. */
export async function settledMemory(): Promise<MemorySample> {
  const collect = globalThis.gc;
  if (collect === undefined) throw new Error("memory figures need node --expose-gc");
  for (let i = 0; i < 4; i++) {
    collect();
    await turn();
  }
  const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
  return { heapUsed, external, arrayBuffers, rss };
}
