// Keyed orders handed to the node that runs their actor, on a real node: the owner answers once the
// actor's state after the order is saved; an order handed over again (its answer lost, the intake
// redelivering it) is applied once; the node's inbox for them holds a bounded number at once; and the
// orders an earlier version left queued in its stream are applied before that stream is deleted.
import { jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { ActorHost } from "../../../runtime/actor-host.ts";
import type { KeyedOrder } from "../../../runtime/cluster/keyed-order.ts";
import { KeyedOrders, MAX_APPLYING_FROM_INBOX } from "../../../runtime/cluster/keyed-orders.ts";
import { legacyOrderStreamName } from "../../../runtime/cluster/legacy-order-stream.ts";
import { shardOf } from "../../../runtime/cluster/rendezvous.ts";
import type { ShardAssignments } from "../../../runtime/cluster/shard-assignments.ts";
import type { ApplyOutcome, ShardRunner } from "../../../runtime/cluster/shard-runner.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import type { Requester } from "../../../runtime/requester.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { clusterTestServices } from "../../helpers/cluster-services.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode } from "../../helpers/test-node.ts";

interface Context {
  nats: TestNats;
  client: NatsConnection;
  node: RunningNode;
}

const test = suite<Context>("keyed orders");
const NODE = "apply-node";
const SHARDS = 8;
const LEGACY_KEYS = ["old-1", "old-2"];

async function request(ctx: Context, subject: string, body: unknown): Promise<Record<string, unknown>> {
  const decoded = decodeJson((await ctx.client.request(subject, encodeJson(body), { timeout: 5_000 })).data);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value as Record<string, unknown>;
}

async function count(ctx: Context, key: string): Promise<number> {
  const reply = await request(ctx, `caliopen.actor.counter.${key}`, { type: "get" });
  return Number(reply.count);
}

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.client = await ctx.nats.connect();
  // What a node of the earlier version left behind: its work-queue stream of keyed orders, two starts
  // and three syncs still in it, and one that is garbage.
  const jsm = await jetstreamManager(ctx.client);
  const stream = legacyOrderStreamName(new Subjects(""));
  await jsm.streams.add({ name: stream, subjects: ["caliopen.orders.>"], retention: RetentionPolicy.Workqueue });
  const js = jetstream(ctx.client);
  const queued: KeyedOrder[] = [
    ...LEGACY_KEYS.map((key): KeyedOrder => ({ id: `start-${key}`, op: "start", kind: "counter", key, input: {} })),
    { id: "sync-1", op: "tell", kind: "counter", key: "old-1", message: { type: "sync", payload: {} } },
    { id: "sync-2", op: "tell", kind: "counter", key: "old-1", message: { type: "sync", payload: {} } },
    { id: "sync-3", op: "tell", kind: "counter", key: "old-2", message: { type: "sync", payload: {} } },
  ];
  for (const order of queued) await js.publish(`caliopen.orders.${shardOf(order.kind, order.key, SHARDS)}.${order.kind}.${order.key}`, encodeJson(order));
  await js.publish("caliopen.orders.0.counter.junk", encodeJson({ op: "explode" }));
  ctx.node = await startTestNode(ctx.nats.endpoint, clusterTestServices(), { nodeId: NODE, shards: SHARDS });
});

test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.nats.stop();
});

test("the keyed orders an earlier version left in its stream are applied, in order, and the stream deleted", async (ctx) => {
  const jsm = await jetstreamManager(ctx.client);
  const stream = legacyOrderStreamName(new Subjects(""));
  await waitFor("the stream deleted", async () => (await jsm.streams.info(stream).catch(() => null)) === null, 10_000);
  assert.equal(await Promise.all(LEGACY_KEYS.map((key) => count(ctx, key))), [2, 1]);
  const letters = await ctx.node.deadLetters.list(50);
  assert.ok(
    letters.some((letter) => /malformed keyed order/.test(letter.reason)),
    "the garbage became a dead letter",
  );
});

test("an order handed over again (its answer lost, or redelivered by the intake) is applied once", async (ctx) => {
  ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: "twice", user_id: "u" }));
  await waitFor("the actor running", () => ctx.node.host.get("counter", "twice") !== undefined, 5_000);
  const order = { id: "intake-77", op: "tell", kind: "counter", key: "twice", message: { type: "sync", payload: {} } };
  const apply = KeyedOrders.applySubject(new Subjects(""), NODE);
  const answers = await Promise.all([request(ctx, apply, order), request(ctx, apply, order)]);
  assert.equal(answers, [{ outcome: "done" }, { outcome: "done" }]);
  assert.equal(await request(ctx, apply, order), { outcome: "done" });
  assert.is(await count(ctx, "twice"), 1);
  // The id is kept with the saved state: the actor started again from it still knows it.
  const before = ctx.node.host.get("counter", "twice");
  ctx.client.publish("imap_worker", encodeJson({ order: "reload_worker", remote_id: "twice", user_id: "u" }));
  await waitFor("reloaded", () => {
    const cell = ctx.node.host.get("counter", "twice");
    return cell !== undefined && cell !== before && cell.status === "running";
  });
  assert.equal(await request(ctx, apply, order), { outcome: "done" });
  // 1,000 for the reload's notice (the counter family counts it so), and the sync still once.
  assert.is(await count(ctx, "twice"), 1_001);
});

test("an order for an actor never added is done with: kept as a dead letter", async (ctx) => {
  const apply = KeyedOrders.applySubject(new Subjects(""), NODE);
  const never = await request(ctx, apply, { id: "x-1", op: "tell", kind: "counter", key: "never-added", message: { type: "sync", payload: {} } });
  assert.equal(never, { outcome: "done" });
  await waitFor("its dead letter", async () =>
    (await ctx.node.deadLetters.list(50)).some((letter) => /no counter actor for "never-added"/.test(letter.reason)),
  );
});

test("the inbox holds at most MAX_APPLYING_FROM_INBOX orders at once: beyond, the sender is told to come back", async () => {
  // A runner whose actors do not finish saving until released: every order handed to it stays in flight.
  const held: ((outcome: ApplyOutcome) => void)[] = [];
  let released = false;
  const runner = {
    apply: () => (released ? Promise.resolve<ApplyOutcome>("done") : new Promise<ApplyOutcome>((resolve) => held.push(resolve))),
  } as Pick<ShardRunner, "apply">;
  const keyed = new KeyedOrders({} as ShardAssignments, {} as ActorHost, () => runner as ShardRunner, {} as Requester, new Subjects(""), NODE, SHARDS);
  const order = (i: number) => encodeJson({ id: `flood-${i}`, op: "tell", kind: "counter", key: "k", message: { type: "sync", payload: {} } });
  const answers = Array.from({ length: MAX_APPLYING_FROM_INBOX }, (_, i) => keyed.answerApply(order(i)));
  assert.equal(await keyed.answerApply(order(-1)), { outcome: "retry" });
  released = true;
  for (const resolve of held) resolve("done");
  assert.ok((await Promise.all(answers)).every((answer) => JSON.stringify(answer) === '{"outcome":"done"}'));
  assert.equal(await keyed.answerApply(order(-2)), { outcome: "done" });
});

test("an order its actor never settles is handed over again after one attempt, and done once the actor settles it", async () => {
  const calls: string[] = [];
  // The first hand-over is never settled (a lost callback); the second is, as the actor that remembered the id would.
  const runner = {
    apply: (order: KeyedOrder) => {
      calls.push(order.id);
      return calls.length === 1 ? new Promise<ApplyOutcome>(() => undefined) : Promise.resolve<ApplyOutcome>("done");
    },
  } as Pick<ShardRunner, "apply">;
  const assignments = { get: (shard: number) => ({ shard, node: NODE, epoch: 1, revision: 1 }) } as Pick<ShardAssignments, "get">;
  const keyed = new KeyedOrders(assignments as ShardAssignments, {} as ActorHost, () => runner as ShardRunner, {} as Requester, new Subjects(""), NODE, SHARDS);
  const started = Date.now();
  await keyed.apply("tell", "counter", "stuck", { id: "intake-9", message: { type: "sync", payload: {} } });
  assert.equal(calls, ["intake-9", "intake-9"]);
  assert.ok(Date.now() - started >= 4_900, "not before the attempt was over");
});

test.run();
