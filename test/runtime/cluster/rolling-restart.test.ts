// A rolling restart of a 3-node deployment on a 3-server NATS cluster under steady load, as an operator
// does one (deploy/README.md): each node in turn gets SIGTERM, exits 0, is started again and takes its
// shards back, while published `sync` orders (200/s) and keyed `deliver` requests (50/s) keep coming.
// Every order must be applied exactly once, and every request must get a non-error reply within the
// retries a real client makes on a retryable answer ("moving between nodes", "busy", a timeout). The
// figures measured are printed, and quoted in deploy/README.md.

import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DurableIntake } from "../../../runtime/durable-intake.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import { natsConnectOptions } from "../../../runtime/nats-endpoint.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import { type NodeProcess, OwnershipWatch, spawnNode } from "../../helpers/cluster-processes.ts";
import { startTestNatsCluster } from "../../helpers/nats-cluster.ts";
import { startTestNats } from "../../helpers/nats-server.ts";

const KEYS = Array.from({ length: 100 }, (_, i) => `roll-${i}`);
const NODE_IDS = ["r1", "r2", "r3"];
const ORDERS_PER_S = 200;
const REQUESTS_PER_S = 50;
/** A client's patience per attempt: over the node's own 5 s of forwarding retries while a shard moves. */
const REQUEST_TIMEOUT_MS = 7_000;
/** Attempts per request: the first and two retries. */
const ATTEMPTS = 3;
const RETRYABLE = /moving between nodes|busy|try again/;

interface RequestOutcome {
  ok: boolean;
  attempts: number;
  ms: number;
  errors: string[];
}

interface Context {
  /** NATS_* (and CALIOPEN_REPLICAS) of the nodes. */
  env: Record<string, string>;
  stopNats: () => Promise<void>;
  client: NatsConnection;
  nodes: Map<string, NodeProcess>;
  watch: OwnershipWatch;
  expected: Map<string, number>;
}

const test = suite<Context>("rolling restart under load");

async function counts(client: NatsConnection): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await Promise.all(
    KEYS.map(async (key) => {
      try {
        const msg = await client.request(`caliopen.actor.counter.${key}`, encodeJson({ type: "get" }), { timeout: 2000 });
        const decoded = decodeJson(msg.data);
        out.set(key, decoded.ok ? Number((decoded.value as { count: number }).count) : Number.NaN);
      } catch {
        out.set(key, Number.NaN);
      }
    }),
  );
  return out;
}

/** The shards a node reports owning (debug subject), 0 when it does not answer. */
async function ownedShards(client: NatsConnection, id: string): Promise<number> {
  const replies = await client.requestMany("caliopen.debug.nodes", encodeJson({}), { strategy: "stall", stall: 150, maxWait: 2_000 });
  let owned = 0;
  for await (const msg of replies) {
    const decoded = decodeJson(msg.data);
    if (!decoded.ok) continue;
    const reply = decoded.value as { node?: unknown; cluster?: { ownedShards?: unknown } };
    if (reply.node === id && typeof reply.cluster?.ownedShards === "number") owned = reply.cluster.ownedShards;
  }
  return owned;
}

/** One `deliver` request as a client makes it: retried on a retryable answer, up to ATTEMPTS in all. */
async function deliver(client: NatsConnection, n: number): Promise<RequestOutcome> {
  const started = performance.now();
  const errors: string[] = [];
  const payload = encodeJson({ order: "deliver", message_id: `m-${n}`, remote_id: KEYS[n % KEYS.length], user_id: "u" });
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      const msg = await client.request("outboundIMAP", payload, { timeout: REQUEST_TIMEOUT_MS });
      const decoded = decodeJson(msg.data);
      const reply = decoded.ok ? (decoded.value as { error?: unknown; message?: unknown }) : { error: true, message: "undecodable reply" };
      if (reply.error !== true) return { ok: true, attempts: attempt, ms: performance.now() - started, errors };
      const message = String(reply.message);
      errors.push(message);
      if (!RETRYABLE.test(message)) break;
    } catch (err) {
      // A timeout, or no responders for an instant: a client tries again.
      errors.push((err as Error).message);
    }
    await sleep(200);
  }
  return { ok: false, attempts: errors.length, ms: performance.now() - started, errors };
}

/** Sends orders and requests at fixed rates (caught up on each tick, so a late timer does not lower them). */
class Load {
  ordersSent = 0;
  requestsSent = 0;
  readonly requests: Promise<RequestOutcome>[] = [];
  startedAt = 0;
  stoppedAt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly ctx: Context) {}

  start(): void {
    this.startedAt = performance.now();
    this.timer = setInterval(() => this.tick(), 10);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.stoppedAt = performance.now();
  }

  private tick(): void {
    const elapsed = performance.now() - this.startedAt;
    while (this.ordersSent < Math.floor((elapsed * ORDERS_PER_S) / 1000)) {
      const key = KEYS[this.ordersSent % KEYS.length]!;
      this.ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: key, user_id: "u" }));
      this.ctx.expected.set(key, (this.ctx.expected.get(key) ?? 0) + 1);
      this.ordersSent++;
    }
    while (this.requestsSent < Math.floor((elapsed * REQUESTS_PER_S) / 1000)) {
      this.requests.push(deliver(this.ctx.client, this.requestsSent));
      this.requestsSent++;
    }
  }
}

/**
 * The `sync` orders stored in the intake and not yet applied (an order is acknowledged once its actor
 * has applied and saved it), sampled as the load runs: how far the deployment fell behind, and when.
 */
class Backlog {
  max = 0;
  maxAt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly client: NatsConnection,
    private readonly since: number,
  ) {}

  start(): void {
    const stream = DurableIntake.streamName(new Subjects(""));
    this.timer = setInterval(() => {
      void jetstreamManager(this.client)
        .then((jsm) => jsm.consumers.info(stream, "IMAPworkers_IMAPfetcher"))
        .then((info) => {
          const backlog = info.num_pending + info.num_ack_pending;
          if (backlog > this.max) {
            this.max = backlog;
            this.maxAt = performance.now() - this.since;
          }
        })
        .catch(() => undefined);
    }, 250);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;

test.before(async (ctx) => {
  // The production shape: three servers, R3, mutual TLS, the node role. ROLLING_RESTART_NATS=single:
  // one server, to tell the nodes' part from the NATS cluster's.
  if (process.env.ROLLING_RESTART_NATS !== "single") {
    const cluster = await startTestNatsCluster();
    ctx.env = { ...cluster.env, CALIOPEN_REPLICAS: "3" };
    ctx.client = await connect({ ...(await natsConnectOptions(cluster.endpoint)), maxReconnectAttempts: -1 });
    ctx.stopNats = async () => {
      await ctx.client.close();
      await cluster.stop();
    };
  } else {
    const nats = await startTestNats();
    ctx.env = nats.env;
    ctx.client = await nats.connect();
    ctx.stopNats = () => nats.stop();
  }
  ctx.nodes = new Map();
  ctx.expected = new Map();
  await Promise.all(NODE_IDS.map(async (id) => ctx.nodes.set(id, await spawnNode(ctx.env, id))));
  ctx.watch = new OwnershipWatch(ctx.client);
});

test.after(async (ctx) => {
  ctx.watch.stop();
  for (const node of ctx.nodes.values()) node.child.kill("SIGKILL");
  await ctx.stopNats();
});

test("a rolling restart of 3 nodes under load loses no order and fails no request a retry absorbs", async (ctx) => {
  for (const key of KEYS) ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: key, user_id: "u" }));
  await waitFor(
    `all ${KEYS.length} actors running`,
    async () => {
      const latest = await ctx.watch.sample();
      return latest.size === KEYS.length;
    },
    20_000,
    100,
  );
  ctx.watch.start(250);

  const load = new Load(ctx);
  load.start();
  const backlog = new Backlog(ctx.client, load.startedAt);
  backlog.start();
  await sleep(3_000);
  const restarts: { id: string; at: number; stopMs: number; readyMs: number; ownsMs: number }[] = [];
  for (const id of NODE_IDS) {
    const old = ctx.nodes.get(id)!;
    const t0 = performance.now();
    old.child.kill("SIGTERM");
    const code = await old.exited;
    assert.is(code, 0, `${id} exits 0 on SIGTERM:\n${old.output()}`);
    const stopMs = performance.now() - t0;
    // Started again under the same id, as systemd or a container runtime restarts it.
    const fresh = await spawnNode(ctx.env, id);
    ctx.nodes.set(id, fresh);
    const readyMs = performance.now() - t0;
    await waitFor(`${id} owns shards again`, async () => (await ownedShards(ctx.client, id)) > 0, 15_000, 100);
    restarts.push({ id, at: t0 - load.startedAt, stopMs, readyMs, ownsMs: performance.now() - t0 });
    await sleep(1_000);
  }
  await sleep(2_000);
  load.stop();
  backlog.stop();
  const loadSeconds = (load.stoppedAt - load.startedAt) / 1000;

  const outcomes = await Promise.all(load.requests);
  const drainStarted = performance.now();
  await waitFor(
    "every order applied",
    async () => {
      const now = await counts(ctx.client);
      return KEYS.every((key) => now.get(key) === ctx.expected.get(key));
    },
    20_000,
    250,
  ).catch(() => undefined);
  const drainMs = performance.now() - drainStarted;
  const now = await counts(ctx.client);
  const wrong = KEYS.filter((key) => now.get(key) !== ctx.expected.get(key)).map((key) => `${key}: ${now.get(key)} applied, ${ctx.expected.get(key)} sent`);

  const latencies = outcomes.filter((o) => o.ok).map((o) => o.ms);
  latencies.sort((a, b) => a - b);
  const byAttempts = new Map<number, number>();
  for (const o of outcomes) if (o.ok) byAttempts.set(o.attempts, (byAttempts.get(o.attempts) ?? 0) + 1);
  const failed = outcomes.filter((o) => !o.ok);
  const retryReasons = new Map<string, number>();
  // Answers that made a client try again, keys left out so that alike ones are counted together.
  for (const reason of outcomes.flatMap((o) => o.errors.map((e) => e.replace(/roll-\d+/g, "KEY").slice(0, 120)))) {
    retryReasons.set(reason, (retryReasons.get(reason) ?? 0) + 1);
  }

  const fmt = (ms: number) => `${Math.round(ms)} ms`;
  process.stdout.write(
    [
      `    load: ${load.ordersSent} orders in ${loadSeconds.toFixed(1)} s (${(load.ordersSent / loadSeconds).toFixed(0)}/s), all applied ${fmt(drainMs)} after the load stopped; largest backlog ${backlog.max} orders, at ${(backlog.maxAt / 1000).toFixed(1)} s`,
      `    requests: ${outcomes.length} (${(outcomes.length / loadSeconds).toFixed(0)}/s), p50 ${fmt(percentile(latencies, 50))}, p99 ${fmt(percentile(latencies, 99))}, max ${fmt(latencies.at(-1) ?? Number.NaN)}`,
      `    attempts needed: ${[...byAttempts]
        .sort(([a], [b]) => a - b)
        .map(([a, n]) => `${a}: ${n}`)
        .join(", ")}; failed: ${failed.length}`,
      ...[...retryReasons].map(([reason, n]) => `    retried on (${n}×): ${reason}`),
      ...restarts.map(
        (r) =>
          `    restart ${r.id} at ${(r.at / 1000).toFixed(1)} s: stopped (exit 0) ${fmt(r.stopMs)}, ready ${fmt(r.readyMs)}, owns shards ${fmt(r.ownsMs)} after SIGTERM`,
      ),
      "",
    ].join("\n"),
  );

  assert.equal(wrong, [], "every order applied exactly once");
  assert.equal(
    failed.map((o) => o.errors.join(" | ")),
    [],
    "every request answered within its retries",
  );
  assert.equal(ctx.watch.violations, [], "no actor ran on two nodes at once");
});

test.run();
