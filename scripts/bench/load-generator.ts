// The other side of the wire, in its own process: a publisher of orders or a request client. The same
// generator drives the raw baseline and the actor runtime, so the two figures differ only by the consumer.
import type { NatsConnection } from "@nats-io/transport-node";
import { connectBench } from "./bench-connection.ts";
import { DELIVER_ORDER, encodedOrders, SYNC_ORDER } from "./bench-payloads.ts";
import { childMain } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import { InboxClient } from "./inbox-client.ts";
import { requestRounds } from "./request-rounds.ts";
import type { LoadTask, PublishResult, PublishTask, RequestLoadResult, RequestLoadTask } from "./results.ts";
import { epochNow } from "./stats.ts";

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

async function requestLoad(nc: NatsConnection, task: RequestLoadTask): Promise<RequestLoadResult> {
  const client = new InboxClient(nc, task.timeoutMs);
  registerCleanup(() => client.close());
  const payloads = encodedOrders(DELIVER_ORDER, task.keys);
  const result = await requestRounds(task, {
    send: (index) => client.request(DELIVER_ORDER.subject, payloads[index % payloads.length] as Uint8Array),
    isGood: isGoodReply,
  });
  client.close();
  return result;
}

childMain<LoadTask>(async (task) => {
  const nc = await connectBench(task.endpoint, `bench load (${task.kind})`);
  registerCleanup(() => nc.close());
  const result = task.kind === "publish" ? await publish(nc, task) : await requestLoad(nc, task);
  await nc.close();
  return result;
});
