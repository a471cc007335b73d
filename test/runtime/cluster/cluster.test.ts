// Several nodes on one NATS: each keyed actor runs on exactly one node — checked continuously, not only
// at the end — while nodes join, leave and lose their connection; orders sent meanwhile are applied once.

import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { INTAKE_ACK_WAIT_MS } from "../../../runtime/durable-intake.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { clusterTestServices } from "../../helpers/cluster-services.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode } from "../../helpers/test-node.ts";

const KEYS = Array.from({ length: 60 }, (_, i) => `r${i}`);

interface Context {
  nats: TestNats;
  client: NatsConnection;
  nodes: Map<string, RunningNode>;
  violations: string[];
  stopWatching: () => void;
}

const test = suite<Context>("cluster of nodes");

/** Samples every 10 ms which nodes run which key; records any key running on two nodes at once. */
function watchOwnership(ctx: Context): () => void {
  const timer = setInterval(() => {
    const owners = new Map<string, string[]>();
    for (const [id, node] of ctx.nodes) {
      for (const cell of node.host.list()) if (cell.status !== "stopped") owners.set(cell.key, [...(owners.get(cell.key) ?? []), id]);
    }
    for (const [key, nodes] of owners) if (nodes.length > 1) ctx.violations.push(`${key} on ${nodes.join(" and ")}`);
  }, 10);
  return () => clearInterval(timer);
}

function placement(ctx: Context): Map<string, string> {
  const where = new Map<string, string>();
  for (const [id, node] of ctx.nodes) for (const cell of node.host.list()) where.set(cell.key, id);
  return where;
}

async function counts(ctx: Context): Promise<Map<string, number>> {
  const result = new Map<string, number>();
  for (const key of KEYS) {
    const msg = await ctx.client.request(`caliopen.actor.counter.${key}`, encodeJson({ type: "get" }), { timeout: 2000 });
    const decoded = decodeJson(msg.data);
    result.set(key, decoded.ok ? Number((decoded.value as { count: number }).count) : NaN);
  }
  return result;
}

async function addNode(ctx: Context, id: string): Promise<RunningNode> {
  const node = await startTestNode(ctx.nats.endpoint, clusterTestServices(), { nodeId: id, shards: 16 });
  ctx.nodes.set(id, node);
  return node;
}

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.client = await ctx.nats.connect();
  ctx.nodes = new Map();
  ctx.violations = [];
  for (const id of ["node-a", "node-b", "node-c"]) await addNode(ctx, id);
  ctx.stopWatching = watchOwnership(ctx);
});

test.after(async (ctx) => {
  ctx.stopWatching();
  for (const node of ctx.nodes.values()) await node.shutdown("test over");
  await ctx.nats.stop();
});

test("add_worker orders start each actor on exactly one node, spread over the nodes", async (ctx) => {
  await waitFor("three live nodes", () => [...ctx.nodes.values()].every((node) => node.host !== undefined));
  for (const key of KEYS) ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: key, user_id: "u" }));
  await waitFor("all actors running", () => placement(ctx).size === KEYS.length, 10_000);
  const perNode = new Map<string, number>();
  for (const node of placement(ctx).values()) perNode.set(node, (perNode.get(node) ?? 0) + 1);
  assert.is(perNode.size, 3, `spread: ${JSON.stringify([...perNode])}`);
  for (const count of perNode.values()) assert.ok(count >= 5, `each node has a fair share: ${JSON.stringify([...perNode])}`);
  assert.equal(ctx.violations, []);
});

test("published orders reach each actor wherever it runs, once each", async (ctx) => {
  for (const key of KEYS) for (let i = 0; i < 2; i++) ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: key, user_id: "u" }));
  await waitFor("every actor synced twice", async () => [...(await counts(ctx)).values()].every((count) => count === 2), 10_000);
  assert.equal(ctx.violations, []);
});

test("a request reaches the actor on its node and the actor answers the requester", async (ctx) => {
  // `deliver` is a request (not a durable order, which the stream itself acknowledges): whichever node's
  // entry point takes it forwards it to the owner, and the answer is the actor's own (its count).
  const expected = await counts(ctx);
  for (const key of KEYS) {
    const reply = await ctx.client.request("outboundIMAP", encodeJson({ order: "deliver", message_id: `m-${key}`, remote_id: key, user_id: "u" }), {
      timeout: 3000,
    });
    const decoded = decodeJson(reply.data);
    assert.ok(decoded.ok);
    assert.equal(decoded.value, { count: expected.get(key), error: false, message: "count" }, key);
  }
});

test("a node leaving gracefully hands its actors over, keeping their state, with no overlap", async (ctx) => {
  const before = await counts(ctx);
  const leaving = ctx.nodes.get("node-b")!;
  const started = Date.now();
  // Orders keep arriving while it leaves.
  for (const key of KEYS) ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: key, user_id: "u" }));
  await leaving.shutdown("SIGTERM");
  ctx.nodes.delete("node-b");
  const handoffMs = Date.now() - started;
  await waitFor("all actors on the remaining nodes", () => placement(ctx).size === KEYS.length, 10_000);
  // An order the leaving node's last pulls were given after it closed them comes back once the intake's
  // ack wait is over.
  await waitFor(
    "orders sent during the leave applied once",
    async () => {
      const after = await counts(ctx);
      return KEYS.every((key) => after.get(key) === (before.get(key) ?? 0) + 1);
    },
    INTAKE_ACK_WAIT_MS + 5_000,
  );
  assert.ok(handoffMs < 10_000, `leave took ${handoffMs} ms`);
  assert.equal(ctx.violations, []);
});

test("a joining node takes a share of the actors, orders sent meanwhile are applied once", async (ctx) => {
  const before = await counts(ctx);
  const joiner = await addNode(ctx, "node-d");
  for (const key of KEYS) ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: key, user_id: "u" }));
  await waitFor("node-d runs some actors", () => joiner.host.count() >= 5, 10_000);
  await waitFor("all actors running once", () => placement(ctx).size === KEYS.length, 10_000);
  await waitFor(
    "orders sent during the rebalance applied once",
    async () => {
      const after = await counts(ctx);
      return KEYS.every((key) => after.get(key) === (before.get(key) ?? 0) + 1);
    },
    10_000,
  );
  assert.equal(ctx.violations, []);
});

test("a node that loses its NATS connection stops its actors before the others take them over", async (ctx) => {
  const cut = ctx.nodes.get("node-c")!;
  const itsKeys = cut.host.list().map((cell) => cell.key);
  assert.ok(itsKeys.length > 0);
  const before = await counts(ctx);
  await cut.nc.close(); // abrupt: no leave, no drain
  await waitFor("its actors stopped (fenced)", () => cut.host.list().every((cell) => cell.status === "stopped") || cut.host.count() === 0, 5_000);
  const others = [...ctx.nodes.entries()].filter(([id]) => id !== "node-c");
  await waitFor("its actors running elsewhere", () => itsKeys.every((key) => others.some(([, node]) => node.host.get("counter", key) !== undefined)), 10_000);
  await cut.shutdown("test").catch(() => undefined);
  ctx.nodes.delete("node-c");
  const after = await counts(ctx);
  for (const key of KEYS) assert.is(after.get(key), before.get(key), `${key} kept its state`);
  assert.equal(ctx.violations, []);
});

test.run();
