// A node whose main thread is busy is not a dead node: its heartbeats come from a thread of their own,
// so a stall longer than the fencing delay neither fences it nor moves its actors. A main thread stuck
// past its limit, or a whole process frozen, does lose its actors, and fences before it runs them again.
// One node runs in this process (its main thread is the test's, blocked on purpose), the other in its own.

import { Writable } from "node:stream";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { membershipTiming } from "../../../runtime/cluster/membership.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import { createLogger } from "../../../runtime/logger.ts";
import { METRIC_NAMES } from "../../../runtime/metrics.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { type NodeProcess, OwnershipWatch, sightings, spawnNode } from "../../helpers/cluster-processes.ts";
import { clusterTestServices } from "../../helpers/cluster-services.ts";
import { parseMetrics, sampleValue } from "../../helpers/metrics-text.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode } from "../../helpers/test-node.ts";

const KEYS = Array.from({ length: 40 }, (_, i) => `busy-${i}`);
const DETECTION_MS = 1_000;
const TIMING = { ...membershipTiming(DETECTION_MS), mainStallLimitMs: 2_500 };

interface Context {
  nats: TestNats;
  client: NatsConnection;
  busy: RunningNode;
  busyLog: string[];
  steady: NodeProcess;
  expected: Map<string, number>;
}

const test = suite<Context>("a busy node");

/** Blocks this thread (and so the in-process node's main thread) without spinning. */
function blockMainThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

async function fencings(node: RunningNode): Promise<number> {
  return sampleValue(parseMetrics((await node.metrics.scrape()).text), METRIC_NAMES.fencings);
}

function syncAll(ctx: Context): void {
  for (const key of KEYS) {
    ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: key, user_id: "u" }));
    ctx.expected.set(key, (ctx.expected.get(key) ?? 0) + 1);
  }
}

async function allApplied(ctx: Context): Promise<void> {
  const counts = async () =>
    Promise.all(
      KEYS.map(async (key) => {
        const reply = await ctx.client.request(`caliopen.actor.counter.${key}`, encodeJson({ type: "get" }), { timeout: 2_000 }).catch(() => null);
        const decoded = reply === null ? null : decodeJson(reply.data);
        return decoded?.ok === true ? Number((decoded.value as { count: number }).count) : NaN;
      }),
    );
  await waitFor("every order applied", async () => (await counts()).every((count, i) => count === ctx.expected.get(KEYS[i]!)), 15_000, 200);
  assert.equal(
    await counts(),
    KEYS.map((key) => ctx.expected.get(key)),
    "no order lost or applied twice",
  );
}

async function runningOnce(ctx: Context): Promise<Map<string, string>> {
  let where = new Map<string, string>();
  await waitFor(
    "every actor running on exactly one node",
    async () => {
      const seen = await sightings(ctx.client);
      where = new Map(seen.map((s) => [s.key, s.node]));
      return seen.length === KEYS.length && where.size === KEYS.length;
    },
    15_000,
    100,
  );
  return where;
}

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.client = await ctx.nats.connect();
  ctx.busyLog = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      ctx.busyLog.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ level: "info", format: "json", destination: sink });
  ctx.busy = await startTestNode(ctx.nats.endpoint, clusterTestServices(), { nodeId: "busy", shards: 32 }, { membership: TIMING }, log);
  ctx.steady = await spawnNode(ctx.nats.env, "steady", { CALIOPEN_FAILURE_DETECTION_MS: String(DETECTION_MS), LOG_LEVEL: "info" });
  ctx.expected = new Map();
  for (const key of KEYS) ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: key, user_id: "u" }));
  const where = await runningOnce(ctx);
  assert.ok([...where.values()].includes("busy") && [...where.values()].includes("steady"), "actors on both nodes");
  syncAll(ctx);
  await allApplied(ctx);
});

test.after(async (ctx) => {
  ctx.steady.child.kill("SIGKILL");
  await ctx.busy.shutdown("test over");
  await ctx.nats.stop();
});

test("a main thread busy for three times the fencing delay keeps its actors, and nobody takes them", async (ctx) => {
  const cells = ctx.busy.host.list();
  assert.ok(cells.length > 0);
  const takeoversBefore = ctx.steady.output().split("shards taken over").length;
  blockMainThread(TIMING.fenceAfterMs * 3);
  // Long enough for the other node to have taken the busy one for dead, were its heartbeats late.
  await sleep(DETECTION_MS * 2);
  assert.is(await fencings(ctx.busy), 0, "the busy node did not fence itself");
  assert.is(ctx.steady.output().split("shards taken over").length, takeoversBefore, "the other node took nothing over");
  const replaced = cells.filter((cell) => ctx.busy.host.get(cell.kind, cell.key) !== cell || cell.status === "stopped").map((cell) => cell.key);
  assert.equal(replaced, [], "every actor is the same running one");
  syncAll(ctx);
  await allApplied(ctx);
});

test("a main thread stuck past its limit: the others take its actors over, and it fences before running them again", async (ctx) => {
  const watch = new OwnershipWatch(ctx.client);
  watch.start(50);
  blockMainThread(TIMING.mainStallLimitMs + DETECTION_MS * 2);
  await waitFor("the stuck node fenced itself", async () => (await fencings(ctx.busy)) >= 1, 5_000);
  assert.ok(
    ctx.busyLog.some((line) => line.includes("main thread stuck")),
    "the heartbeat thread said why it stopped",
  );
  await waitFor("the other node took shards over", () => ctx.steady.output().includes("shards taken over"), 5_000);
  await runningOnce(ctx);
  syncAll(ctx);
  await allApplied(ctx);
  watch.stop();
  assert.equal(watch.violations, []);
});

test("a frozen process (SIGSTOP) loses its actors to the others, and fences on SIGCONT before running them again", async (ctx) => {
  const frozenKeys = (await sightings(ctx.client)).filter((s) => s.node === "steady").map((s) => s.key);
  assert.ok(frozenKeys.length > 0);
  const watch = new OwnershipWatch(ctx.client);
  watch.start(50);
  ctx.steady.child.kill("SIGSTOP");
  await waitFor("its actors running on the other node", () => frozenKeys.every((key) => ctx.busy.host.get("counter", key) !== undefined), 10_000, 50);
  ctx.steady.child.kill("SIGCONT");
  await waitFor("the frozen node fenced itself", () => ctx.steady.output().includes("fencing this node off"), 5_000);
  await runningOnce(ctx);
  syncAll(ctx);
  await allApplied(ctx);
  watch.stop();
  assert.equal(watch.violations, []);
});

test.run();
