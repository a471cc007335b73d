// The runtime pieces an actor host needs (snapshot store, dead letters), assembled for the bench
// scenarios that work below the node: activation through ActorHost.activate and per-layer costs.
import type { NatsConnection } from "@nats-io/transport-node";
import type { ActorFamily } from "../../runtime/actor-family.ts";
import { ActorHost } from "../../runtime/actor-host.ts";
import { DeadLetters } from "../../runtime/dead-letters.ts";
import { silentLogger } from "../../runtime/logger.ts";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { SnapshotStore } from "../../runtime/snapshot-store.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { connectBench } from "./bench-connection.ts";
import { registerCleanup } from "./cleanup.ts";

const NODE_ID = "bench-node";
const SNAPSHOT_BUCKET = "caliopen_actor_snapshots";

export interface BenchRuntime {
  nc: NatsConnection;
  host: ActorHost;
  /** The JetStream stream behind the snapshot bucket. */
  snapshotStream: string;
  close(): Promise<void>;
}

export async function openBenchRuntime(endpoint: NatsEndpoint, family: ActorFamily): Promise<BenchRuntime> {
  const nc = await connectBench(endpoint, "bench runtime");
  const unregister = registerCleanup(() => nc.close());
  const subjects = new Subjects("");
  const logger = silentLogger();
  const snapshots = await SnapshotStore.open(nc, subjects.resource(SNAPSHOT_BUCKET));
  const deadLetters = await DeadLetters.open(nc, subjects, NODE_ID, logger);
  const host = new ActorHost({ nc, subjects, nodeId: NODE_ID, logger, snapshots, deadLetters });
  host.register(family);
  return {
    nc,
    host,
    snapshotStream: `KV_${subjects.resource(SNAPSHOT_BUCKET)}`,
    async close() {
      await host.stopAll();
      unregister();
      await nc.close();
    },
  };
}
