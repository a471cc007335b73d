// The actor side of scenarios 1 and 2: a real supervisor node (supervisors/node.ts, as `npm start`
// runs it) on the bench's nats-server, running the bench family and binding the contract's
// IMAPfetcher `sync` and outboundIMAP `deliver` orders to it through routeToActor. The node decides
// how orders reach its entry points (today: published ones through its durable intake stream).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { routeToActor } from "../../runtime/cluster/actor-router.ts";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import type { OrderHandler } from "../../runtime/orders.ts";
import { SnapshotStore } from "../../runtime/snapshot-store.ts";
import { keyFromToken } from "../../runtime/subjects.ts";
import { type RunningNode, startNode } from "../../supervisors/node.ts";
import { defaultNodeId, type NodeConfig, nodeConfigFromEnv } from "../../supervisors/node-config.ts";
import { BENCH_KIND, benchFamily } from "./bench-family.ts";
import { DELIVER_ORDER, KEY_FIELD, SYNC_ORDER } from "./bench-payloads.ts";
import { registerCleanup } from "./cleanup.ts";
import { tallyingLogger } from "./log-tally.ts";

export interface BenchNodeOptions {
  persistence: "none" | "snapshot";
  onSync: () => void;
  /** Replace the route of `sync` orders by this handler (the entry-point-only variant). */
  syncHandler?: OrderHandler;
  /** Answers `deliver` instead of routing it to an actor (the requests scenario's entry-point row). */
  deliverHandler?: OrderHandler;
}

export interface BenchNode {
  node: RunningNode;
  /** The window after which other nodes take it for dead (CALIOPEN_FAILURE_DETECTION_MS as the node runs it). */
  failureDetectionMs: number;
  /** Orders stored in the intake stream but not yet acknowledged (applied and saved). */
  ordersPending(): Promise<number>;
  /** Sum of the `syncs` counters in the stored snapshots of the bench actors. */
  storedSyncs(): Promise<number>;
  /** Last sequence of the snapshot bucket's stream: counts KV writes. */
  kvLastSeq(): Promise<number>;
  /** What the runtime warned about, by message. */
  warnings(): Record<string, number>;
  stop(): Promise<void>;
}

// The stream and bucket names supervisors/ and runtime/ give them with an empty namespace.
const INTAKE_STREAM = "caliopen_intake";
const SNAPSHOT_BUCKET = "caliopen_actor_snapshots";

export async function startBenchNode(endpoint: NatsEndpoint, options: BenchNodeOptions): Promise<BenchNode> {
  const dataDir = await mkdtemp(join(tmpdir(), "caliopen-bench-node-"));
  const tally = tallyingLogger();
  // Started by their first order, as routeToActor's `activate: true` used to do.
  const family = benchFamily({ persistence: options.persistence, onSync: options.onSync, startsOnFirstMessage: true });
  const config: NodeConfig = { ...nodeConfigFromEnv({}), nats: endpoint, dataDir, nodeId: `bench-${defaultNodeId()}`, shutdownGraceMs: 5_000 };
  const node = await startNode(
    config,
    {
      families: [family],
      bindings: (context) => {
        const route = routeToActor(context, { kind: BENCH_KIND, keyField: KEY_FIELD });
        return {
          [SYNC_ORDER.subject]: { [SYNC_ORDER.order]: options.syncHandler ?? route },
          [DELIVER_ORDER.subject]: { [DELIVER_ORDER.order]: options.deliverHandler ?? route },
        };
      },
    },
    tally.logger,
  );
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      unregister();
      await node.shutdown("bench finished");
      await rm(dataDir, { recursive: true, force: true });
    })());
  const unregister = registerCleanup(stop);
  const jsm: JetStreamManager = await jetstreamManager(node.nc);
  const snapshots = await SnapshotStore.open(node.nc, SNAPSHOT_BUCKET);
  return {
    node,
    failureDetectionMs: config.failureDetectionMs,
    ordersPending: async () => {
      const intake = await jsm.streams.info(INTAKE_STREAM).catch(() => null);
      return intake?.state.messages ?? 0;
    },
    storedSyncs: async () => {
      let total = 0;
      for (const kvKey of await snapshots.keys(BENCH_KIND)) total += await syncsIn(snapshots, kvKey);
      return total;
    },
    kvLastSeq: async () => (await jsm.streams.info(`KV_${SNAPSHOT_BUCKET}`)).state.last_seq,
    warnings: tally.counts,
    stop,
  };
}

async function syncsIn(snapshots: SnapshotStore, kvKey: string): Promise<number> {
  const loaded = await snapshots.load(BENCH_KIND, keyFromToken(kvKey.slice(BENCH_KIND.length + 1)));
  const snapshot = loaded?.record.snapshot as { context?: { syncs?: unknown } } | undefined;
  return typeof snapshot?.context?.syncs === "number" ? snapshot.context.syncs : 0;
}
