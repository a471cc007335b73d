// The runtime's Prometheus metrics, all named here: one registry per node (never prom-client's global
// one, so that several nodes in one process keep their own figures). Labels are kinds, subjects, order
// names and states only, each from a bounded set the node knows (its families, the contract's
// subjects and orders): a name read from the bus that is not in that set is counted as "unknown",
// and an actor key (derived from users' data) is never a label.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/** The label value of an order name or subject that the node does not know. */
export const UNKNOWN = "unknown";

export const METRIC_NAMES = {
  actors: "caliopen_actors",
  activations: "caliopen_actor_activations_total",
  passivations: "caliopen_actor_passivations_total",
  restarts: "caliopen_actor_restarts_total",
  crashes: "caliopen_actor_crashes_total",
  ordersReceived: "caliopen_orders_received_total",
  ordersApplied: "caliopen_orders_applied_total",
  ordersRefused: "caliopen_orders_refused_total",
  ordersFailed: "caliopen_orders_failed_total",
  ordersBusy: "caliopen_orders_busy_total",
  ordersDeadLettered: "caliopen_orders_dead_lettered_total",
  orderSeconds: "caliopen_order_handling_seconds",
  liveNodes: "caliopen_cluster_live_nodes",
  ownedShards: "caliopen_cluster_owned_shards",
  shardHandoffs: "caliopen_shard_handoffs_total",
  shardTakeovers: "caliopen_shard_takeovers_total",
  fencings: "caliopen_node_fencings_total",
  natsDisconnects: "caliopen_nats_disconnects_total",
  natsReconnects: "caliopen_nats_reconnects_total",
  consumerPending: "caliopen_intake_consumer_pending",
  consumerAckPending: "caliopen_intake_consumer_ack_pending",
} as const;

/**
 * The counts of one order of one subject: plain numbers the entry point adds to (an order costs no
 * label hashing), read into the counters on a scrape.
 */
export interface OrderCounters {
  received: number;
  applied: number;
  refused: number;
  failed: number;
  busy: number;
  deadLettered: number;
}

type OrderOutcome = keyof OrderCounters;

/** Where an entry point records how long its handlers take. */
export type HandlingTimer = Histogram.Internal<"subject">;

/** Live actors of a kind in a state, as counted on a scrape. */
export interface ActorCount {
  kind: string;
  state: string;
  count: number;
}

/** What the cluster reports on a scrape. */
export interface ClusterFigures {
  liveNodes: number;
  ownedShards: number;
}

/** A durable consumer's backlog, as JetStream reports it. */
export interface ConsumerLag {
  subject: string;
  pending: number;
  ackPending: number;
}

// Order handling runs from well under a millisecond (a routed order) to the contract's 30 s deliver.
const HANDLING_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** How long a read of the intake consumers' backlog is reused. */
export const LAG_CACHE_MS = 5_000;
/** A scrape does not wait longer for JetStream (a NATS server lost): the backlog is then left out. */
const LAG_TIMEOUT_MS = 2_000;

export class RuntimeMetrics {
  readonly registry = new Registry();
  private readonly activations: Counter<"kind">;
  private readonly passivations: Counter<"kind">;
  private readonly restarts: Counter<"kind">;
  private readonly crashes: Counter<"kind">;
  private readonly orders: { subject: string; order: string; counts: OrderCounters }[] = [];
  private readonly handling: Histogram<"subject">;
  private readonly handoffs: Counter;
  private readonly takeovers: Counter;
  private readonly fencings: Counter;
  private readonly disconnects: Counter<"connection">;
  private readonly reconnects: Counter<"connection">;
  private actorSource: () => ActorCount[] = () => [];
  private clusterSource: () => ClusterFigures | null = () => null;
  private lagSource: () => Promise<ConsumerLag[]> = async () => [];
  private withProcess = false;

  constructor() {
    const registers = [this.registry];
    const counter = <T extends string>(name: string, help: string, labelNames: readonly T[]) => new Counter<T>({ name, help, labelNames, registers });
    // Every order of every subject shows from the start, at 0; read from the entry points' counts.
    const orders = this.orders;
    const orderCounter = (outcome: OrderOutcome, name: string, help: string) =>
      new Counter({
        name,
        help,
        labelNames: ["subject", "order"],
        registers,
        collect() {
          this.reset();
          for (const { subject, order, counts } of orders) this.inc({ subject, order }, counts[outcome]);
        },
      });
    this.activations = counter(METRIC_NAMES.activations, "Actors activated on this node (started, or restored from their snapshot)", ["kind"]);
    this.passivations = counter(METRIC_NAMES.passivations, "Idle actors passivated (only their snapshot kept)", ["kind"]);
    this.restarts = counter(METRIC_NAMES.restarts, "Crashed actors restarted by their supervisor", ["kind"]);
    this.crashes = counter(METRIC_NAMES.crashes, "Actors crashed", ["kind"]);
    orderCounter("received", METRIC_NAMES.ordersReceived, "Orders taken from the bus");
    orderCounter("applied", METRIC_NAMES.ordersApplied, "Orders handled without error");
    orderCounter("refused", METRIC_NAMES.ordersRefused, "Orders refused (undecodable, unknown, invalid, or refused by their handler)");
    orderCounter("failed", METRIC_NAMES.ordersFailed, "Orders whose handler failed for good");
    orderCounter("busy", METRIC_NAMES.ordersBusy, "Orders turned away because every handler was busy");
    orderCounter("deadLettered", METRIC_NAMES.ordersDeadLettered, "Published orders kept as dead letters");
    this.handling = new Histogram({
      name: METRIC_NAMES.orderSeconds,
      help: "Time an order's handler took, refused and failed orders included",
      labelNames: ["subject"],
      buckets: HANDLING_BUCKETS,
      registers,
    });
    this.handoffs = counter(METRIC_NAMES.shardHandoffs, "Shards this node handed to another node", []);
    this.takeovers = counter(METRIC_NAMES.shardTakeovers, "Shards this node took over from a node gone or dead", []);
    this.fencings = counter(METRIC_NAMES.fencings, "Times this node fenced itself off (its own heartbeat not renewed in time, or interrupted)", []);
    this.disconnects = counter(METRIC_NAMES.natsDisconnects, "NATS connections of this node lost", ["connection"]);
    this.reconnects = counter(METRIC_NAMES.natsReconnects, "NATS connections of this node restored", ["connection"]);
    // Read through arrows: inside collect(), `this` is the gauge.
    const actors = () => this.actorSource();
    const cluster = () => this.clusterSource();
    const lagRead = () => this.lagSource();
    new Gauge({
      name: METRIC_NAMES.actors,
      help: "Live actors on this node by kind and state (running, passivated, crashed)",
      labelNames: ["kind", "state"],
      registers,
      collect() {
        this.reset();
        for (const { kind, state, count } of actors()) this.set({ kind, state }, count);
      },
    });
    new Gauge({
      name: METRIC_NAMES.liveNodes,
      help: "Nodes this node sees alive, itself included",
      registers,
      collect() {
        const figures = cluster();
        if (figures !== null) this.set(figures.liveNodes);
      },
    });
    new Gauge({
      name: METRIC_NAMES.ownedShards,
      help: "Shards this node runs",
      registers,
      collect() {
        const figures = cluster();
        if (figures !== null) this.set(figures.ownedShards);
      },
    });
    // Both backlog gauges are filled from one read of the consumers, kept a few seconds: a storm of
    // scrapes (or several Prometheus servers) asks JetStream once per LAG_CACHE_MS at most.
    let lag: { at: number; read: Promise<ConsumerLag[]> } | null = null;
    const lagOnce = () => {
      const now = Date.now();
      if (lag === null || now - lag.at >= LAG_CACHE_MS) lag = { at: now, read: withinMs(LAG_TIMEOUT_MS, lagRead()) };
      return lag.read;
    };
    new Gauge({
      name: METRIC_NAMES.consumerPending,
      help: "Published orders waiting in the intake stream for a node to take them, by subject",
      labelNames: ["subject"],
      registers,
      async collect() {
        this.reset();
        for (const entry of await lagOnce()) this.set({ subject: entry.subject }, entry.pending);
      },
    });
    new Gauge({
      name: METRIC_NAMES.consumerAckPending,
      help: "Published orders taken by a node and not yet acknowledged, by subject",
      labelNames: ["subject"],
      registers,
      async collect() {
        this.reset();
        for (const entry of await lagOnce()) this.set({ subject: entry.subject }, entry.ackPending);
      },
    });
  }

  /** Adds the process's own figures (CPU, memory, event loop, GC) to this node's scrapes, under their standard process_ / nodejs_ names. */
  includeProcessMetrics(): void {
    this.withProcess = true;
  }

  /** The counts of each known order of a subject, and those of UNKNOWN, for any other name. */
  orderCounters(subject: string, orders: readonly string[]): { known: ReadonlyMap<string, OrderCounters>; unknown: OrderCounters } {
    const counts = (order: string) => {
      const entry = { received: 0, applied: 0, refused: 0, failed: 0, busy: 0, deadLettered: 0 };
      this.orders.push({ subject, order, counts: entry });
      return entry;
    };
    return { known: new Map(orders.map((order) => [order, counts(order)])), unknown: counts(UNKNOWN) };
  }

  handlingTimer(subject: string): HandlingTimer {
    return this.handling.labels({ subject });
  }

  actorActivated(kind: string): void {
    this.activations.inc({ kind });
  }

  actorsPassivated(kind: string, count = 1): void {
    this.passivations.inc({ kind }, count);
  }

  actorRestarted(kind: string): void {
    this.restarts.inc({ kind });
  }

  actorCrashed(kind: string): void {
    this.crashes.inc({ kind });
  }

  shardHandedOff(): void {
    this.handoffs.inc();
  }

  shardTakenOver(): void {
    this.takeovers.inc();
  }

  nodeFenced(): void {
    this.fencings.inc();
  }

  natsDisconnected(connection: string): void {
    this.disconnects.inc({ connection });
  }

  natsReconnected(connection: string): void {
    this.reconnects.inc({ connection });
  }

  /** Where the actors gauge reads its figures on a scrape. */
  countActorsWith(source: () => ActorCount[]): void {
    this.actorSource = source;
  }

  countClusterWith(source: () => ClusterFigures | null): void {
    this.clusterSource = source;
  }

  readLagWith(source: () => Promise<ConsumerLag[]>): void {
    this.lagSource = source;
  }

  /** The exposition text, and its content type. */
  async scrape(): Promise<{ contentType: string; text: string }> {
    const own = await this.registry.metrics();
    const text = this.withProcess ? `${await processRegistry().metrics()}\n${own}` : own;
    return { contentType: this.registry.contentType, text };
  }
}

// The process's figures belong to the process, not to a node: collected once (prom-client's collectors
// install observers that are never removed), whatever the number of nodes in this process.
let processFigures: Registry | null = null;

function processRegistry(): Registry {
  if (processFigures === null) {
    processFigures = new Registry();
    collectDefaultMetrics({ register: processFigures });
  }
  return processFigures;
}

/** What `read` gives within `ms`, or nothing (an error is nothing too). */
async function withinMs<T>(ms: number, read: Promise<T[]>): Promise<T[]> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T[]>((resolve) => (timer = setTimeout(() => resolve([]), ms)));
  try {
    return await Promise.race([read.catch(() => []), late]);
  } finally {
    clearTimeout(timer);
  }
}
