// Nodes on a three-server NATS cluster with replicated (R3) buckets and streams survive the loss of
// one NATS server: they reconnect, keep one owner per actor, and keep applying orders. The cluster is
// secured as in production: mutual TLS on client and route ports, the node role's nkey and permissions.
// Orders sent across the loss go as the API sends them, to JetStream, awaiting its ack (retried with a
// message id, which the stream de-duplicates): a bare core publish while the intake stream elects a new
// leader may be lost, as core NATS delivers at most once.

import { Writable } from "node:stream";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import { createLogger } from "../../../runtime/logger.ts";
import { natsConnectOptions } from "../../../runtime/nats-endpoint.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { clusterTestServices } from "../../helpers/cluster-services.ts";
import { startTestNatsCluster, type TestNatsCluster } from "../../helpers/nats-cluster.ts";
import { startTestNode } from "../../helpers/test-node.ts";

const KEYS = Array.from({ length: 40 }, (_, i) => `k${i}`);

interface Context {
  cluster: TestNatsCluster;
  client: NatsConnection;
  nodes: RunningNode[];
  expected: Map<string, number>;
  /** What the nodes logged at warn level and above, raw lines. */
  warnings: string[];
}

const test = suite<Context>("nodes on a NATS cluster");

async function applied(ctx: Context): Promise<boolean> {
  for (const key of KEYS) {
    try {
      const msg = await ctx.client.request(`caliopen.actor.counter.${key}`, encodeJson({ type: "get" }), { timeout: 1000 });
      const decoded = decodeJson(msg.data);
      if (!decoded.ok || (decoded.value as { count: number }).count !== ctx.expected.get(key)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function syncAll(ctx: Context): void {
  for (const key of KEYS) {
    ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: key, user_id: "u" }));
    ctx.expected.set(key, (ctx.expected.get(key) ?? 0) + 1);
  }
}

/** Every key's sync, stored by JetStream (acknowledged), tried again until it is. */
async function syncAllStored(ctx: Context, round: string): Promise<void> {
  const js = jetstream(ctx.client);
  for (const key of KEYS) {
    const data = encodeJson({ order: "sync", remote_id: key, user_id: "u" });
    await waitFor(
      `${key}'s sync stored`,
      () =>
        js.publish("IMAPfetcher", data, { msgID: `${round}-${key}`, timeout: 2_000 }).then(
          () => true,
          () => false,
        ),
      30_000,
      250,
    );
    ctx.expected.set(key, (ctx.expected.get(key) ?? 0) + 1);
  }
}

function owners(ctx: Context): Map<string, number> {
  const count = new Map<string, number>();
  for (const node of ctx.nodes) for (const cell of node.host.list()) if (cell.status !== "stopped") count.set(cell.key, (count.get(cell.key) ?? 0) + 1);
  return count;
}

test.before(async (ctx) => {
  ctx.cluster = await startTestNatsCluster();
  ctx.client = await connect({ ...(await natsConnectOptions(ctx.cluster.endpoint)), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  ctx.expected = new Map();
  ctx.nodes = [];
  ctx.warnings = [];
  const destination = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      ctx.warnings.push(
        ...chunk
          .toString()
          .split("\n")
          .filter((line) => line !== ""),
      );
      done();
    },
  });
  for (const id of ["cn-1", "cn-2"]) {
    const log = createLogger({ level: "warn", name: id, destination });
    ctx.nodes.push(await startTestNode(ctx.cluster.endpoint, clusterTestServices(), { nodeId: id, replicas: 3, shards: 16 }, {}, log));
  }
});

test.after(async (ctx) => {
  for (const node of ctx.nodes) await node.shutdown("test over").catch(() => undefined);
  await ctx.client.close().catch(() => undefined);
  await ctx.cluster.stop();
});

test("workers run once each on nodes connected to a three-server cluster (R3)", async (ctx) => {
  for (const key of KEYS) ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: key, user_id: "u" }));
  await waitFor("all actors running", () => owners(ctx).size === KEYS.length, 20_000);
  syncAll(ctx);
  await waitFor("orders applied", () => applied(ctx), 20_000, 200);
  assert.ok([...owners(ctx).values()].every((n) => n === 1));
  // Consumers electing their leaders on a fresh cluster fail a pull or two: routine, not a warning. (The
  // test family's own `test.synced` announcements are refused by the node role's permissions here.)
  const warnings = ctx.warnings.filter((line) => !line.includes('"test.synced\\"'));
  assert.equal(warnings, [], "a clean start on a fresh three-server cluster warns about nothing");
});

test("losing one NATS server of three: nodes reconnect, actors keep one owner, orders keep being applied", async (ctx) => {
  const violations: string[] = [];
  const timer = setInterval(() => {
    for (const [key, n] of owners(ctx)) if (n > 1) violations.push(key);
  }, 10);
  await ctx.cluster.servers[0]!.stop();
  await syncAllStored(ctx, "after-loss");
  await waitFor("orders sent after the loss applied", () => applied(ctx), 40_000, 250);
  await waitFor("every actor running again", () => owners(ctx).size === KEYS.length, 20_000);
  clearInterval(timer);
  assert.equal(violations, []);
});

test.run();
