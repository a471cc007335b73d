// Scenario 1, consumer side: published `sync` orders taken by a raw queue subscriber (decode + count), by
// the runtime's durable path written in bare nats.js, by a node whose entry point only counts them
// (intake stream, validation and plumbing, no actor), or by a node that routes them to one actor per
// remote_id (the intake stream, then handed to the actor's node).
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeJson, isJsonObject } from "../../runtime/json.ts";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { connectBench } from "./bench-connection.ts";
import { startBenchNode } from "./bench-node.ts";
import { encodedOrders, SYNC_ORDER } from "./bench-payloads.ts";
import { childMain, runChild, runChildSync } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import { startCpuMeter } from "./cpu-meter.ts";
import { startIoMeter } from "./io-meter.ts";
import { type LivenessWatch, type WatchedNode, watchLiveness } from "./liveness-watch.ts";
import { ProgressProbe } from "./progress-probe.ts";
import type { OrdersResult, OrdersRound, OrdersTask, PublishResult, PublishTask } from "./results.ts";
import { epochNow, rate } from "./stats.ts";

const PROCESS_TIMEOUT_MS = 120_000;

interface Consumer {
  /** Counts orders applied (by the actor, or by the counting handler / raw subscriber). */
  probe: ProgressProbe;
  /** Resolves when every keyed order is acknowledged, i.e. applied and its state saved. */
  settled(timeoutMs: number): Promise<void>;
  /** Sum of the counters in stored snapshots, when the actors persist. */
  storedSyncs(): Promise<number | null>;
  kvLastSeq(): Promise<number | null>;
  warnings(): Record<string, number>;
  /** The node whose liveness can be watched (node variants). */
  node: WatchedNode | null;
  close(): Promise<void>;
}

// The baseline: what any nats.js service does at minimum with an order.
async function rawConsumer(endpoint: NatsEndpoint): Promise<Consumer> {
  const nc = await connectBench(endpoint, "bench raw consumer");
  registerCleanup(() => nc.close());
  const probe = new ProgressProbe();
  nc.subscribe(SYNC_ORDER.subject, {
    queue: SYNC_ORDER.queue,
    callback: (err, msg) => {
      if (err !== null) return;
      const decoded = decodeJson(msg.data);
      if (decoded.ok && isJsonObject(decoded.value) && decoded.value.order === SYNC_ORDER.order) probe.tick();
    },
  });
  await nc.flush();
  return {
    probe,
    settled: async () => undefined,
    storedSyncs: async () => null,
    kvLastSeq: async () => null,
    warnings: () => ({}),
    node: null,
    close: () => nc.close(),
  };
}

const RAW_INTAKE = "bench_raw_intake";

// The durable baseline: the runtime's path for a published order written with bare nats.js and its
// defaults, without entry point, actors or KV — the subject captured by a work-queue stream as it is
// published, and one durable consumer that decodes, counts and acks each order: JetStream crossed once.
async function rawDurableConsumer(endpoint: NatsEndpoint): Promise<Consumer> {
  const nc = await connectBench(endpoint, "bench raw durable consumer");
  registerCleanup(() => nc.close());
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: RAW_INTAKE, subjects: [SYNC_ORDER.subject], retention: RetentionPolicy.Workqueue });
  await jsm.consumers.add(RAW_INTAKE, { durable_name: "intake", filter_subject: SYNC_ORDER.subject, ack_policy: AckPolicy.Explicit, max_ack_pending: 10_000 });
  const probe = new ProgressProbe();
  const messages = await (await jetstream(nc).consumers.get(RAW_INTAKE, "intake")).consume({
    max_messages: 256,
    callback: (msg) => {
      const decoded = decodeJson(msg.data);
      if (decoded.ok && isJsonObject(decoded.value) && decoded.value.order === SYNC_ORDER.order) probe.tick();
      msg.ack();
    },
  });
  await nc.flush();
  const pending = async () => (await jsm.streams.info(RAW_INTAKE)).state.messages;
  return {
    probe,
    settled: (timeoutMs) => untilEmpty(pending, timeoutMs),
    storedSyncs: async () => null,
    kvLastSeq: async () => null,
    warnings: (): Record<string, number> => ({}),
    node: null,
    close: async () => {
      await messages.close().catch(() => undefined);
      await nc.close();
    },
  };
}

/** Polls a stream's pending message count until it is zero. */
async function untilEmpty(pending: () => Promise<number>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await pending()) > 0) {
    if (Date.now() > deadline) throw new Error(`orders still unacknowledged after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function nodeConsumer(endpoint: NatsEndpoint, variant: "entry" | "actor-none" | "actor-snapshot"): Promise<Consumer> {
  const probe = new ProgressProbe();
  const persistence = variant === "actor-snapshot" ? "snapshot" : "none";
  const bench = await startBenchNode(endpoint, {
    persistence,
    onSync: () => probe.tick(),
    ...(variant === "entry" && { syncHandler: () => void probe.tick() }),
  });
  return {
    probe,
    settled: (timeoutMs) => untilEmpty(bench.ordersPending, timeoutMs),
    storedSyncs: async () => (persistence === "snapshot" ? bench.storedSyncs() : null),
    kvLastSeq: async () => (persistence === "snapshot" ? bench.kvLastSeq() : null),
    warnings: bench.warnings,
    node: { id: bench.node.id, failureDetectionMs: bench.failureDetectionMs, warnings: bench.warnings },
    close: bench.stop,
  };
}

/** Publishes from this process on a second connection: for warm-ups, not for timed rounds. */
async function publishInline(nc: NatsConnection, count: number, keys: number, flushEvery: number): Promise<void> {
  const payloads = encodedOrders(SYNC_ORDER, keys);
  for (let i = 0; i < count; i++) {
    nc.publish(SYNC_ORDER.subject, payloads[i % keys] as Uint8Array);
    if ((i + 1) % flushEvery === 0) await nc.flush();
  }
  await nc.flush();
}

// Under caliopen.>, which the node role may use: the TLS scenarios run this on servers that enforce it.
const PROGRESS_SUBJECT = "caliopen.bench.progress";

/** CPU of this process and of the nats-server, and this process's I/O, from the call to the returned function's. */
function startMeters(serverPid: number) {
  const cpu = startCpuMeter(serverPid);
  const consumerIo = startIoMeter("self");
  return () => ({ ...cpu(), consumerIo: consumerIo() });
}

/** Tells a pacing publisher how many orders of the round were processed, every few ms. */
function reportProgress(nc: NatsConnection, probe: ProgressProbe): () => void {
  const base = probe.count;
  const timer = setInterval(() => nc.publish(PROGRESS_SUBJECT, String(probe.count - base)), 5);
  return () => clearInterval(timer);
}

childMain<OrdersTask>(async (task) => {
  const consumer =
    task.variant === "raw"
      ? await rawConsumer(task.endpoint)
      : task.variant === "raw-durable"
        ? await rawDurableConsumer(task.endpoint)
        : await nodeConsumer(task.endpoint, task.variant);
  const side = await connectBench(task.endpoint, "bench warm-up publisher and progress reports");
  registerCleanup(() => side.close());
  const burst: PublishTask = { kind: "publish", endpoint: task.endpoint, count: task.count, keys: task.keys, flushEvery: task.flushEvery };
  const paced: PublishTask = { ...burst, pacing: { window: task.window, progressSubject: PROGRESS_SUBJECT } };
  const timeoutMs = Math.max(120_000, task.count);
  // Another process watches the node's heartbeats from before the warm-up to the end of the last round.
  const liveness: LivenessWatch | null =
    task.observeLiveness === true && consumer.node !== null ? await watchLiveness(side, task.endpoint, consumer.node) : null;

  // JIT warm-up; the actor of every key starts on its first order (activation is scenario 3's figure).
  await liveness?.phase("warm-up");
  await publishInline(side, task.warmup, task.keys, task.flushEvery);
  await consumer.probe.until(task.warmup, timeoutMs);
  await consumer.settled(timeoutMs);
  let published = task.warmup;
  let lostBefore = published - ((await consumer.storedSyncs()) ?? published);

  const timedRound = async (kind: "backlog" | "paced"): Promise<OrdersRound> => {
    const seqBefore = await consumer.kvLastSeq();
    // Counted from here: an order applied twice (redelivered after a failed save) counts twice.
    const target = consumer.probe.count + task.count;
    let startedAt: number;
    let meter: ReturnType<typeof startMeters>;
    let publisher: PublishResult;
    if (kind === "backlog") {
      // The publisher runs while this event loop is blocked: every order is queued when the clock starts.
      publisher = runChildSync<PublishResult>("load-generator.ts", burst, PROCESS_TIMEOUT_MS);
      startedAt = epochNow();
      meter = startMeters(task.serverPid);
      await consumer.probe.until(target, timeoutMs);
    } else {
      const stopReports = reportProgress(side, consumer.probe);
      meter = startMeters(task.serverPid);
      const running = runChild<PublishResult>("load-generator.ts", paced, { timeoutMs: PROCESS_TIMEOUT_MS });
      await consumer.probe.until(target, timeoutMs);
      stopReports();
      publisher = await running;
      startedAt = publisher.startedAt;
    }
    const processedAt = epochNow();
    // Paced rounds also count the publisher's start-up here: their CPU and I/O figures are indicative.
    const cpu = meter();
    published += task.count;
    await consumer.settled(timeoutMs);
    const settledAt = epochNow();
    const seqAfter = await consumer.kvLastSeq();
    const stored = await consumer.storedSyncs();
    const lostAfter = stored === null ? null : published - stored;
    const lost = lostAfter === null ? null : lostAfter - lostBefore;
    lostBefore = lostAfter ?? 0;
    const elapsedMs = processedAt - startedAt;
    return {
      elapsedMs,
      perSecond: rate(task.count, elapsedMs),
      settledMs: task.variant === "raw" ? null : settledAt - startedAt,
      kvWrites: seqBefore === null || seqAfter === null ? null : seqAfter - seqBefore,
      lostUpdates: lost,
      consumerCpuMs: cpu.selfMs,
      serverCpuMs: cpu.otherMs,
      publisherCpuMs: publisher.cpuMs,
      consumerIo: cpu.consumerIo,
    };
  };

  const backlog: OrdersRound[] = [];
  const pacedRounds: OrdersRound[] = [];
  await liveness?.phase("backlog");
  for (let round = 0; round < task.rounds; round++) backlog.push(await timedRound("backlog"));
  await liveness?.phase("paced");
  for (let round = 0; round < task.rounds; round++) pacedRounds.push(await timedRound("paced"));
  const livenessSeen = liveness === null ? null : await liveness.stop();
  const warnings = consumer.warnings();
  await side.close();
  await consumer.close();
  const result: OrdersResult = { variant: task.variant, count: task.count, keys: task.keys, backlog, paced: pacedRounds, warnings, liveness: livenessSeen };
  return result;
});
