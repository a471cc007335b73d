// The runtime pieces wired together on a real nats-server, without a node around them.
import type { NatsConnection } from "@nats-io/transport-node";
import { ActorHost } from "../../runtime/actor-host.ts";
import { DeadLetters } from "../../runtime/dead-letters.ts";
import { silentLogger } from "../../runtime/logger.ts";
import { SnapshotStore } from "../../runtime/snapshot-store.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { startTestNats, type TestNats } from "./nats-server.ts";

export interface RuntimeFixture {
  nats: TestNats;
  nc: NatsConnection;
  subjects: Subjects;
  snapshots: SnapshotStore;
  deadLetters: DeadLetters;
  newHost(nodeId?: string): ActorHost;
  stop(): Promise<void>;
}

export async function startRuntimeFixture(namespace = ""): Promise<RuntimeFixture> {
  const nats = await startTestNats();
  const nc = await nats.connect();
  const subjects = new Subjects(namespace);
  const logger = silentLogger();
  const snapshots = await SnapshotStore.open(nc, subjects.resource("caliopen_actor_snapshots"));
  const deadLetters = await DeadLetters.open(nc, subjects, "test-node", logger);
  const hosts: ActorHost[] = [];
  return {
    nats,
    nc,
    subjects,
    snapshots,
    deadLetters,
    newHost(nodeId = "test-node") {
      const host = new ActorHost({ nc, subjects, nodeId, logger, snapshots, deadLetters });
      hosts.push(host);
      return host;
    },
    async stop() {
      for (const host of hosts) await host.stopAll();
      await nats.stop();
    },
  };
}
