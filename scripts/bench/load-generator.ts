// The other side of the wire, in its own process: a publisher of orders or a request client. The same
// generator drives the raw baseline and the actor runtime, so the two figures differ only by the consumer.
import type { NatsConnection } from "@nats-io/transport-node";
import { connectBench } from "./bench-connection.ts";
import { DELIVER_ORDER, encodedOrders, SYNC_ORDER } from "./bench-payloads.ts";
import { childMain } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import { InboxClient } from "./inbox-client.ts";
import type { ConcurrentRound, LatencySummary, LoadTask, PublishResult, PublishTask, RequestLoadResult, RequestLoadTask } from "./results.ts";
import { epochNow, percentile, rate } from "./stats.ts";

/** The consumer's progress (orders processed this round), as it reports it. */
function followProgress(nc: NatsConnection, subject: string): { processed(): number; next(): Promise<void> } {
  let processed = 0;
  let waiting: (() => void) | null = null;
  nc.subscribe(subject, {
    callback: (err, msg) => {
      if (err !== null) return;
      processed = Math.max(processed, Number(msg.string()));
      waiting?.();
      waiting = null;
    },
  });
  return { processed: () => processed, next: () => new Promise<void>((resolve) => (waiting = resolve)) };
}

async function publish(nc: NatsConnection, task: PublishTask): Promise<PublishResult> {
  const payloads = encodedOrders(SYNC_ORDER, task.keys);
  const progress = task.pacing === undefined ? null : followProgress(nc, task.pacing.progressSubject);
  if (progress !== null) await nc.flush();
  const flushEvery = task.pacing === undefined ? task.flushEvery : Math.min(task.flushEvery, Math.max(1, Math.floor(task.pacing.window / 2)));
  const startedAt = epochNow();
  const cpu = process.cpuUsage();
  for (let i = 0; i < task.count; i++) {
    if (progress !== null && task.pacing !== undefined && i - progress.processed() >= task.pacing.window) {
      await nc.flush();
      while (i - progress.processed() >= task.pacing.window) await progress.next();
    }
    nc.publish(SYNC_ORDER.subject, payloads[i % payloads.length] as Uint8Array);
    // Periodic flushes bound what the client buffers and make the server take the orders as we go.
    if ((i + 1) % flushEvery === 0) await nc.flush();
  }
  await nc.flush();
  const used = process.cpuUsage(cpu);
  return { count: task.count, startedAt, finishedAt: epochNow(), cpuMs: (used.user + used.system) / 1000 };
}

const decoder = new TextDecoder();

function isGoodReply(data: Uint8Array): boolean {
  try {
    const reply = JSON.parse(decoder.decode(data)) as { error?: unknown };
    return reply.error === false;
  } catch {
    return false;
  }
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

async function requestLoad(nc: NatsConnection, task: RequestLoadTask): Promise<RequestLoadResult> {
  const client = new InboxClient(nc, task.timeoutMs);
  registerCleanup(() => client.close());
  const payloads = encodedOrders(DELIVER_ORDER, task.keys);
  let issued = 0;
  let badReplies = 0;
  const one = async (latencies: number[] | null) => {
    const payload = payloads[issued++ % payloads.length] as Uint8Array;
    const sentAt = performance.now();
    const reply = await client.request(DELIVER_ORDER.subject, payload);
    latencies?.push(performance.now() - sentAt);
    if (!isGoodReply(reply)) badReplies += 1;
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
  client.close();
  return { sequential: summarise(sequentialLatencies), concurrent, badReplies, requests: issued };
}

childMain<LoadTask>(async (task) => {
  const nc = await connectBench(task.endpoint, `bench load (${task.kind})`);
  registerCleanup(() => nc.close());
  const result = task.kind === "publish" ? await publish(nc, task) : await requestLoad(nc, task);
  await nc.close();
  return result;
});
