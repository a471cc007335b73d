// Resting actors (runtime/resting-index.ts) on real nodes: a passivated actor is recorded as resting
// until its earliest deadline; the node that takes its shard next arms a timer instead of restoring it;
// the deadline or a message wakes it with its state intact, each applied once; and a woken actor's next
// state is saved only once it is recorded awake, so that no crash leaves a record promising a later wake
// than the stored state needs.

import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { ActorInput } from "../../../runtime/actor-family.ts";
import { ActorRegistry } from "../../../runtime/cluster/actor-registry.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import type { RestingIndex } from "../../../runtime/resting-index.ts";
import { SnapshotStore } from "../../../runtime/snapshot-store.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { clusterTestServices } from "../../helpers/cluster-services.ts";
import { counterFamily } from "../../helpers/counter-family.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startRuntimeFixture } from "../../helpers/runtime-fixture.ts";
import { startTestNode } from "../../helpers/test-node.ts";

interface Context {
  nats: TestNats;
  client: NatsConnection;
  nodes: RunningNode[];
  fired: { at: number }[];
}

const test = suite<Context>("resting actors");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.client = await ctx.nats.connect();
  ctx.nodes = [];
  ctx.fired = [];
  ctx.client.subscribe("test.fired", {
    callback: (_err, msg) => {
      const decoded = decodeJson(msg.data);
      if (decoded.ok) ctx.fired.push(decoded.value as { at: number });
    },
  });
  await ctx.client.flush();
});

test.after(async (ctx) => {
  for (const node of ctx.nodes) await node.shutdown("test over");
  await ctx.nats.stop();
});

async function startNode(ctx: Context, nodeId: string): Promise<RunningNode> {
  const node = await startTestNode(ctx.nats.endpoint, clusterTestServices(), { nodeId, shards: 4, passivateAfterMs: 200 });
  ctx.nodes.push(node);
  return node;
}

async function stopNode(ctx: Context, node: RunningNode): Promise<void> {
  await node.shutdown("test");
  ctx.nodes = ctx.nodes.filter((other) => other !== node);
}

async function registryEntry(ctx: Context, key: string): Promise<Record<string, unknown> | null> {
  const kv = await new Kvm(ctx.client).open("caliopen_actor_registry");
  for await (const kvKey of await kv.keys(`*.counter.${key}`)) {
    const entry = await kv.get(kvKey);
    if (entry === null || entry.operation !== "PUT") return null;
    const decoded = decodeJson(entry.value);
    return decoded.ok ? (decoded.value as Record<string, unknown>) : null;
  }
  return null;
}

async function snapshotOf(ctx: Context, key: string) {
  const snapshots = await SnapshotStore.open(ctx.client, "caliopen_actor_snapshots");
  return snapshots.load("counter", key);
}

async function count(ctx: Context, key: string): Promise<number> {
  const reply = await ctx.client.request(`caliopen.actor.counter.${key}`, encodeJson({ type: "get" }), { timeout: 3_000 });
  const decoded = decodeJson(reply.data);
  return decoded.ok ? Number((decoded.value as { count: number }).count) : Number.NaN;
}

test("the next owner of a resting actor arms its deadline without restoring it; the deadline wakes it and fires once", async (ctx) => {
  const first = await startNode(ctx, "rest-a");
  ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: "sleeper", user_id: "u" }));
  await waitFor("the actor running", () => first.host.get("counter", "sleeper") !== undefined);
  const at = Date.now() + 5_000;
  ctx.client.publish("caliopen.actor.counter.sleeper", encodeJson({ type: "schedule", payload: { at } }));
  ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: "sleeper", user_id: "u" }));
  await waitFor("recorded as resting until its deadline", async () => (await registryEntry(ctx, "sleeper"))?.wakeAt === at, 5_000);
  await stopNode(ctx, first);
  const stored = await snapshotOf(ctx, "sleeper");

  const second = await startNode(ctx, "rest-b");
  const cell = second.host.get("counter", "sleeper");
  assert.ok(cell?.resting, "placed without being restored");
  assert.is((await snapshotOf(ctx, "sleeper"))?.revision, stored?.revision, "no restore (and no fencing write) before it wakes");
  assert.is(cell?.summary().deadlines["rest.wake"], new Date(at).toISOString(), "the wake time is shown");

  await waitFor("the deadline fired", () => ctx.fired.some((fired) => fired.at === at), 10_000);
  await sleep(500);
  assert.is(ctx.fired.filter((fired) => fired.at === at).length, 1, "fired once");
  assert.not.ok(cell?.resting, "woken");
  assert.is(await count(ctx, "sleeper"), 1, "its state came back with it");
  await waitFor("recorded awake, then resting again with no deadline", async () => (await registryEntry(ctx, "sleeper"))?.wakeAt === null, 5_000);
  await stopNode(ctx, second);
});

test("a message wakes a resting actor with no deadline: its state is kept and the order applied once", async (ctx) => {
  const first = await startNode(ctx, "rest-c");
  ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: "idler", user_id: "u" }));
  await waitFor("the actor running", () => first.host.get("counter", "idler") !== undefined);
  for (let i = 0; i < 3; i++) ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: "idler", user_id: "u" }));
  await waitFor("three syncs applied", async () => first.host.get("counter", "idler") !== undefined && (await count(ctx, "idler")) === 3);
  await waitFor("recorded as resting", async () => (await registryEntry(ctx, "idler"))?.wakeAt === null, 5_000);
  await stopNode(ctx, first);

  const second = await startNode(ctx, "rest-d");
  assert.ok(second.host.get("counter", "idler")?.resting);
  // IMAPfetcher is a durable subject: a request's answer is the stream's acknowledgement, not the
  // order's outcome, so the order is watched for on the actor.
  ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: "idler", user_id: "u" }));
  await waitFor("the order applied", async () => (await count(ctx, "idler")) === 4);
  assert.not.ok(second.host.get("counter", "idler")?.resting);
  await sleep(500);
  assert.is(await count(ctx, "idler"), 4, "applied once, on the state it rested with");
  await stopNode(ctx, second);
});

test("a resting actor stopped before it woke takes no message: the sender is told to try its next owner", async (ctx) => {
  const first = await startNode(ctx, "rest-e");
  ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: "moved", user_id: "u" }));
  await waitFor("the actor running", () => first.host.get("counter", "moved") !== undefined);
  await waitFor("recorded as resting", async () => (await registryEntry(ctx, "moved"))?.wakeAt === null, 5_000);
  await stopNode(ctx, first);
  const second = await startNode(ctx, "rest-f");
  const cell = second.host.get("counter", "moved");
  assert.ok(cell?.resting);
  await cell.stop();
  const outcomes: string[] = [];
  cell.receive({ type: "get", payload: {}, id: "late-1" }, (outcome) => outcomes.push(outcome));
  assert.equal(outcomes, ["retry"], "settled at once, not kept for a restore that will not come");
  await stopNode(ctx, second);
});

test("an actor woken from rest saves its next state only once it is recorded awake", async () => {
  const fx = await startRuntimeFixture();
  try {
    const host = fx.newHost();
    host.register(counterFamily("counter"));
    const rests: { key: string; wakeAt: number | null }[] = [];
    let releaseWake = () => {};
    const wakeRecorded = new Promise<void>((resolve) => {
      releaseWake = resolve;
    });
    const wakes: string[] = [];
    const index: RestingIndex = {
      rest: async (input: ActorInput, wakeAt) => void rests.push({ key: input.key, wakeAt }),
      wake: (input: ActorInput) => {
        wakes.push(input.key);
        return wakeRecorded;
      },
    };
    host.recordRestsIn(index);
    const cell = await host.activate("counter", "k");
    cell.receive({ type: "inc", payload: { by: 2 } });
    await waitFor("the state saved", async () => (await fx.snapshots.load("counter", "k"))?.record.snapshot !== undefined);
    await waitFor("saved with count 2", async () => countIn(await fx.snapshots.load("counter", "k")) === 2);
    assert.is(host.passivateIdle(0), 1);
    await waitFor("recorded as resting", () => rests.length === 1);
    assert.equal(rests, [{ key: "k", wakeAt: null }]);

    cell.receive({ type: "inc", payload: { by: 5 } });
    assert.equal(wakes, ["k"], "recorded awake as it revives");
    await sleep(400);
    assert.is(countIn(await fx.snapshots.load("counter", "k")), 2, "the new state waits for the record");
    releaseWake();
    await waitFor("then saved", async () => countIn(await fx.snapshots.load("counter", "k")) === 7);
  } finally {
    await fx.stop();
  }
});

test("a rest or a wake recorded after the actor's removal does not bring its registry entry back", async (ctx) => {
  const kv = await new Kvm(ctx.client).create("registry_removal_test", { history: 1 });
  const registry = new ActorRegistry(kv, ctx.client, "registry_removal_test");
  const actor = { kind: "counter", key: "gone", input: { remote_id: "gone" } };
  await registry.add(3, actor);
  const resting = registry.rest(3, actor, 123);
  const removed = registry.remove(3, "counter", "gone");
  const woken = registry.wake(3, "counter", "gone");
  const restedAgain = registry.rest(3, actor, 456);
  await Promise.all([resting, removed, woken, restedAgain]);
  assert.equal(await registry.list(3), [], "still removed");
  await registry.add(3, actor);
  await registry.rest(3, actor, 789);
  assert.equal(await registry.list(3), [{ ...actor, wakeAt: 789 }]);
  await registry.wake(3, "counter", "gone");
  assert.equal(await registry.list(3), [actor], "awake: no wake time");
});

function countIn(loaded: Awaited<ReturnType<SnapshotStore["load"]>>): number | undefined {
  return (loaded?.record.snapshot as { context?: { count?: number } } | undefined)?.context?.count;
}

test.run();
