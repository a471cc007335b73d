// The heartbeat thread on its own, against a real nats-server: it beats while the main thread shows
// signs of life and may serve; it stops when the main thread is stuck or may not serve, and the beat
// that ends such a pause counts as a gap; a thread that dies is started again; leave() says so in the
// heartbeat; after stop() nothing more is written.
import type { Worker } from "node:worker_threads";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { HeartbeatSetup } from "../../../runtime/cluster/heartbeat-protocol.ts";
import { monotonicMs } from "../../../runtime/cluster/heartbeat-protocol.ts";
import { HeartbeatThread, startWorker } from "../../../runtime/cluster/heartbeat-thread.ts";
import { decodeJson } from "../../../runtime/json.ts";
import { silentLogger } from "../../../runtime/logger.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";

const BUCKET = "heartbeat_thread_test";
const HEARTBEAT_MS = 50;
const FENCE_AFTER_MS = 300;
const STALL_LIMIT_MS = 600;

const test = suite<{ nats: TestNats; nc: NatsConnection }>("heartbeat thread");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.nc = await ctx.nats.connect();
  await new Kvm(ctx.nc).create(BUCKET, { history: 1 });
});
test.after(async (ctx) => ctx.nats.stop());

function thread(ctx: { nats: TestNats }, nodeId: string, workers: Worker[] = []): HeartbeatThread {
  return new HeartbeatThread(
    {
      endpoint: ctx.nats.endpoint,
      connectionName: `test ${nodeId} heartbeat`,
      bucket: BUCKET,
      nodeId,
      info: { test: true },
      heartbeatMs: HEARTBEAT_MS,
      fenceAfterMs: FENCE_AFTER_MS,
      mainStallLimitMs: STALL_LIMIT_MS,
    },
    silentLogger(),
    undefined,
    (setup: HeartbeatSetup) => {
      const worker = startWorker(setup);
      workers.push(worker);
      return worker;
    },
  );
}

const fresh = (beats: HeartbeatThread) => monotonicMs() - beats.beatConfirmedAt() < FENCE_AFTER_MS;

/** Keeps telling the thread the main thread is alive (as the membership check does every 100 ms). */
function alive(beats: HeartbeatThread, canServe: () => boolean = () => true): () => void {
  const timer = setInterval(() => beats.mainAlive(canServe()), 50);
  return () => clearInterval(timer);
}

test("beats while alive; a main thread silent past its limit stops the beats, and the beat after counts as a gap", async (ctx) => {
  const beats = thread(ctx, "hb-stall");
  await beats.start(true);
  let stopAlive = alive(beats);
  await sleep(300);
  assert.ok(fresh(beats), "beating");
  assert.is(beats.gaps(), 0);
  stopAlive();
  await sleep(STALL_LIMIT_MS + FENCE_AFTER_MS + 200);
  assert.not.ok(fresh(beats), "no beat confirmed while the main thread is silent");
  stopAlive = alive(beats);
  await waitFor("beating again", () => fresh(beats), 2_000, 20);
  assert.is(beats.gaps(), 1, "the pause is a gap");
  stopAlive();
  await beats.stop();
});

test("no beat while the node may not serve (its actors' connection is down)", async (ctx) => {
  const beats = thread(ctx, "hb-serve");
  await beats.start(true);
  let serving = true;
  const stopAlive = alive(beats, () => serving);
  await sleep(200);
  assert.ok(fresh(beats));
  serving = false;
  await sleep(FENCE_AFTER_MS + 200);
  assert.not.ok(fresh(beats));
  serving = true;
  await waitFor("beating again", () => fresh(beats), 2_000, 20);
  stopAlive();
  await beats.stop();
});

test("a heartbeat thread that dies is started again and beats on", async (ctx) => {
  const workers: Worker[] = [];
  const beats = thread(ctx, "hb-crash", workers);
  await beats.start(true);
  const stopAlive = alive(beats);
  await sleep(200);
  assert.ok(fresh(beats));
  await workers[0]?.terminate();
  await sleep(FENCE_AFTER_MS + 100);
  assert.not.ok(fresh(beats), "no beat while no thread runs");
  await waitFor("a new thread beating", () => workers.length === 2 && fresh(beats), 5_000, 20);
  stopAlive();
  await beats.stop();
});

test("leave() writes a heartbeat that says so; after stop() nothing more is written", async (ctx) => {
  const kv = await new Kvm(ctx.nc).open(BUCKET);
  const beats = thread(ctx, "hb-leave");
  await beats.start(true);
  const stopAlive = alive(beats);
  await beats.leave();
  const entry = await kv.get("hb-leave");
  const decoded = entry === null ? null : decodeJson(entry.value);
  assert.ok(decoded?.ok && (decoded.value as { leaving: boolean }).leaving === true, "the last heartbeat says leaving");
  await beats.stop();
  const revision = (await kv.get("hb-leave"))?.revision;
  await sleep(HEARTBEAT_MS * 6);
  assert.is((await kv.get("hb-leave"))?.revision, revision, "no heartbeat after stop()");
  stopAlive();
});

test.run();
