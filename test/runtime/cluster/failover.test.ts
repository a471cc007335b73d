// Node processes on one NATS, as in production: kill -9 a node, start one, stop one. After each, every
// actor runs on exactly one node (checked continuously through the debug subject), none is missing,
// state carried over, and orders sent meanwhile are applied once.

import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import { type NodeProcess, OwnershipWatch, spawnNode } from "../../helpers/cluster-processes.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";

const KEYS = Array.from({ length: 300 }, (_, i) => `remote-${i}`);

interface Context {
  nats: TestNats;
  client: NatsConnection;
  nodes: Map<string, NodeProcess>;
  watch: OwnershipWatch;
  expected: Map<string, number>;
}

const test = suite<Context>("failover across node processes");

async function counts(client: NatsConnection, keys: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  await Promise.all(
    keys.map(async (key) => {
      try {
        const msg = await client.request(`caliopen.actor.counter.${key}`, encodeJson({ type: "get" }), { timeout: 2000 });
        const decoded = decodeJson(msg.data);
        out.set(key, decoded.ok ? Number((decoded.value as { count: number }).count) : NaN);
      } catch {
        out.set(key, NaN);
      }
    }),
  );
  return out;
}

function syncAll(ctx: Context): void {
  for (const key of KEYS) {
    ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: key, user_id: "u" }));
    ctx.expected.set(key, (ctx.expected.get(key) ?? 0) + 1);
  }
}

async function allApplied(ctx: Context, timeoutMs: number): Promise<void> {
  await waitFor(
    "every order applied once",
    async () => {
      const now = await counts(ctx.client, KEYS);
      return KEYS.every((key) => now.get(key) === ctx.expected.get(key));
    },
    timeoutMs,
    200,
  );
  const now = await counts(ctx.client, KEYS);
  const wrong = KEYS.filter((key) => now.get(key) !== ctx.expected.get(key));
  assert.equal(wrong, [], "no order lost or applied twice");
}

async function allRunningOn(ctx: Context, nodes: string[], timeoutMs: number): Promise<number> {
  const started = Date.now();
  await waitFor(
    `all ${KEYS.length} actors on ${nodes.join(", ")}`,
    async () => {
      const latest = await ctx.watch.sample();
      return latest.size === KEYS.length && [...latest.values()].every((node) => nodes.includes(node));
    },
    timeoutMs,
    50,
  );
  return Date.now() - started;
}

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.client = await ctx.nats.connect();
  ctx.nodes = new Map();
  ctx.expected = new Map();
  for (const id of ["p1", "p2", "p3"]) ctx.nodes.set(id, await spawnNode(ctx.nats.env, id));
  ctx.watch = new OwnershipWatch(ctx.client);
});

test.after(async (ctx) => {
  ctx.watch.stop();
  for (const node of ctx.nodes.values()) node.child.kill("SIGKILL");
  await ctx.nats.stop();
});

test("300 workers added through the contract run once each across three node processes", async (ctx) => {
  ctx.watch.start();
  for (const key of KEYS) ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: key, user_id: "u" }));
  await allRunningOn(ctx, ["p1", "p2", "p3"], 20_000);
  syncAll(ctx);
  await allApplied(ctx, 20_000);
  assert.equal(ctx.watch.violations, []);
});

test("kill -9 of a node: its actors run on the survivors within 5 s, with their state, orders not lost", async (ctx) => {
  const victim = ctx.nodes.get("p2")!;
  const killedAt = Date.now();
  victim.child.kill("SIGKILL");
  // Orders sent at once: some reach the dying node, which never handles them; they must come back.
  syncAll(ctx);
  await victim.exited;
  ctx.nodes.delete("p2");
  await allRunningOn(ctx, ["p1", "p3"], 15_000);
  const measured = Date.now() - killedAt;
  process.stdout.write(`    failover after kill -9: ${measured} ms\n`);
  assert.ok(measured < 5_000, `failover took ${measured} ms (budget 5 s)`);
  await allApplied(ctx, 20_000);
  assert.equal(ctx.watch.violations, []);
});

test("a node joining takes its share; orders sent during the rebalance are applied once", async (ctx) => {
  const joiner = await spawnNode(ctx.nats.env, "p4");
  ctx.nodes.set("p4", joiner);
  syncAll(ctx);
  await waitFor("p4 runs a share", async () => [...(await ctx.watch.sample()).values()].filter((node) => node === "p4").length >= 30, 15_000, 100);
  await allRunningOn(ctx, ["p1", "p3", "p4"], 15_000);
  await allApplied(ctx, 20_000);
  assert.equal(ctx.watch.violations, []);
});

test("SIGTERM: the node hands its actors over before exiting, and exits 0", async (ctx) => {
  const leaving = ctx.nodes.get("p1")!;
  syncAll(ctx);
  leaving.child.kill("SIGTERM");
  assert.is(await leaving.exited, 0);
  ctx.nodes.delete("p1");
  await allRunningOn(ctx, ["p3", "p4"], 10_000);
  await allApplied(ctx, 20_000);
  assert.equal(ctx.watch.violations, []);
});

test.run();
