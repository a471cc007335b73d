// Cluster tasks on a real nats-server: of nodes claiming a task at once, one gets it; nobody gets it
// again within its period; once the period ran out (or the claim was released), one node gets it again.
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ClusterTasks } from "../../../runtime/cluster/cluster-tasks.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";

interface Context {
  nats: TestNats;
  nc: NatsConnection;
}

const test = suite<Context>("cluster tasks");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.nc = await ctx.nats.connect();
});

test.after(async (ctx) => {
  await ctx.nc.close();
  await ctx.nats.stop();
});

async function nodes(ctx: Context, bucket: string): Promise<ClusterTasks[]> {
  const kv = await new Kvm(ctx.nc).create(bucket, { history: 1 });
  return ["a", "b", "c"].map((node) => new ClusterTasks(kv, node));
}

test("three nodes claiming at once: one does the task, then nobody until its period ran out", async (ctx) => {
  const [a, b, c] = await nodes(ctx, "tasks_race");
  const now = Date.now();
  const claims = await Promise.all([a, b, c].map((tasks) => tasks?.claim("check", 60_000, now)));
  assert.is(claims.filter(Boolean).length, 1, `one claim: ${claims}`);
  assert.is(await a?.claim("check", 60_000, now + 30_000), false, "within the period");
  const later = await Promise.all([a, b, c].map((tasks) => tasks?.claim("check", 60_000, now + 61_000)));
  assert.is(later.filter(Boolean).length, 1, `one claim once the period ran out: ${later}`);
});

test("a released claim is taken by the next node that asks", async (ctx) => {
  const [a, b] = await nodes(ctx, "tasks_release");
  assert.ok(await a?.claim("check", 60_000));
  assert.not.ok(await b?.claim("check", 60_000));
  await a?.release("check");
  assert.ok(await b?.claim("check", 60_000));
});

test("a claim dated in the future (a clock ahead) does not block the task for ever", async (ctx) => {
  const [a, b] = await nodes(ctx, "tasks_clock");
  const now = Date.now();
  assert.ok(await a?.claim("check", 60_000, now + 3_600_000));
  assert.ok(await b?.claim("check", 60_000, now), "a claim from the future is taken as stale");
});

test.run();
