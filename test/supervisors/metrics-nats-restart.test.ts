// A node's metrics across a nats-server restart: each of its connections (orders, control, heartbeat) is counted lost and restored,
// and the node's fencing (its heartbeat not renewed meanwhile) is counted too.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type EmbeddedNats, startEmbeddedNats } from "../../runtime/embedded-nats-server.ts";
import { METRIC_NAMES } from "../../runtime/metrics.ts";
import { freePort } from "../../scripts/local-servers/free-port.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { counterFamily } from "../helpers/counter-family.ts";
import { type MetricsText, parseMetrics, sampleValue } from "../helpers/metrics-text.ts";
import { startTestNode } from "../helpers/test-node.ts";

const test = suite<{ dir: string; port: number; server: EmbeddedNats; node: RunningNode }>("metrics across a nats-server restart");

test.before(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), "caliopen-test-metrics-restart-"));
  ctx.port = await freePort();
  ctx.server = await startEmbeddedNats({ dataDir: ctx.dir, port: ctx.port });
  ctx.node = await startTestNode(ctx.server.endpoint, { families: [counterFamily()], bindings: () => ({}) }, { nodeId: "metrics-restart" });
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.server.stop();
  await rm(ctx.dir, { recursive: true, force: true });
});

const scrape = async (node: RunningNode): Promise<MetricsText> => parseMetrics((await node.metrics.scrape()).text);

test("disconnects, reconnects and the fencing are counted", async (ctx) => {
  const before = await scrape(ctx.node);
  for (const connection of ["orders", "control", "heartbeat"]) assert.is(sampleValue(before, METRIC_NAMES.natsDisconnects, { connection }), 0);
  assert.is(sampleValue(before, METRIC_NAMES.fencings), 0);

  await ctx.server.stop();
  await waitFor("every connection counted lost", async () => {
    const now = await scrape(ctx.node);
    return ["orders", "control", "heartbeat"].every((connection) => sampleValue(now, METRIC_NAMES.natsDisconnects, { connection }) >= 1);
  });
  // Longer than the node's fencing delay (60 % of its failure detection).
  await sleep(1_000);
  ctx.server = await startEmbeddedNats({ dataDir: ctx.dir, port: ctx.port });
  await waitFor(
    "every connection counted restored",
    async () => {
      const now = await scrape(ctx.node);
      return ["orders", "control", "heartbeat"].every((connection) => sampleValue(now, METRIC_NAMES.natsReconnects, { connection }) >= 1);
    },
    10_000,
  );
  assert.ok(sampleValue(await scrape(ctx.node), METRIC_NAMES.fencings) >= 1);
});

test.run();
