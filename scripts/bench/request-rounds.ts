// The request load both request clients run (load-generator.ts over an inbox, moleculer-load.ts through a
// Moleculer broker): a warm-up, `sequential` requests one at a time, then `rounds` rounds of `concurrent`
// requests with `inFlight` in flight. Only how one request is sent differs between them.
import type { ConcurrentRound, LatencySummary, RequestLoadResult, RequestLoadTask } from "./results.ts";
import { percentile, rate } from "./stats.ts";

/** How a client sends request number `index` and waits for its reply, and how it tells a good reply. */
export interface RequestSender<R> {
  send(index: number): Promise<R>;
  /** Whether a reply is a success (`{"error":false,…}`); checked after its latency is taken. */
  isGood(reply: R): boolean;
}

function summarise(latencies: number[]): LatencySummary {
  const total = latencies.reduce((sum, value) => sum + value, 0);
  return {
    count: latencies.length,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies.length === 0 ? Number.NaN : Math.max(...latencies),
    mean: latencies.length === 0 ? Number.NaN : total / latencies.length,
  };
}

export async function requestRounds<R>(task: RequestLoadTask, sender: RequestSender<R>): Promise<RequestLoadResult> {
  let issued = 0;
  let badReplies = 0;
  const one = async (latencies: number[] | null) => {
    const index = issued++;
    const sentAt = performance.now();
    const reply = await sender.send(index);
    latencies?.push(performance.now() - sentAt);
    if (!sender.isGood(reply)) badReplies += 1;
  };
  // `inFlight` workers, each sending its next request when its previous one is answered.
  const concurrently = async (count: number, latencies: number[] | null) => {
    const stopAt = issued + count;
    const worker = async () => {
      while (issued < stopAt) await one(latencies);
    };
    await Promise.all(Array.from({ length: task.inFlight }, worker));
  };

  await concurrently(task.warmup, null);
  const sequentialLatencies: number[] = [];
  for (let i = 0; i < task.sequential; i++) await one(sequentialLatencies);

  const concurrent: ConcurrentRound[] = [];
  for (let round = 0; round < task.rounds; round++) {
    const latencies: number[] = [];
    const started = performance.now();
    const cpu = process.cpuUsage();
    await concurrently(task.concurrent, latencies);
    const elapsedMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    concurrent.push({
      count: latencies.length,
      inFlight: task.inFlight,
      elapsedMs,
      perSecond: rate(latencies.length, elapsedMs),
      latency: summarise(latencies),
      clientCpuMicrosPerRequest: (used.user + used.system) / latencies.length,
    });
  }
  return { sequential: summarise(sequentialLatencies), concurrent, badReplies, requests: issued };
}
