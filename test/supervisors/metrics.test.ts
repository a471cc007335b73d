// A node's Prometheus metrics on its own listener (CALIOPEN_METRICS): the text parses, and the figures
// follow the work (orders received, applied, refused; actors started, crashed, restarted), while
// names read from the bus never become label values.
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { routeToActor } from "../../runtime/cluster/actor-router.ts";
import { encodeJson } from "../../runtime/json.ts";
import { METRIC_NAMES, UNKNOWN } from "../../runtime/metrics.ts";
import { OrderRefused } from "../../runtime/orders.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import type { ServiceSet } from "../../supervisors/services.ts";
import { counterFamily } from "../helpers/counter-family.ts";
import { rawRequest } from "../helpers/http-request.ts";
import { labelValues, type MetricsText, parseMetrics, sampleValue } from "../helpers/metrics-text.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode } from "../helpers/test-node.ts";

const test = suite<{ nats: TestNats; node: RunningNode; client: NatsConnection }>("metrics of a node");

const services: ServiceSet = {
  families: [counterFamily("counter", "snapshot", true)],
  bindings: (deps) => ({
    IMAPfetcher: {
      sync: routeToActor(deps, { kind: "counter", keyField: "remote_id" }),
      fullfetch: () => {
        throw new OrderRefused("fullfetch is refused here");
      },
    },
  }),
};

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.node = await startTestNode(ctx.nats.endpoint, services, { nodeId: "node-metrics", metrics: { host: "127.0.0.1", port: 0 } });
  ctx.client = await ctx.nats.connect();
});
test.after(async (ctx) => {
  await ctx.client.close();
  await ctx.node.shutdown("test over");
  await ctx.nats.stop();
});

async function scrape(node: RunningNode): Promise<MetricsText> {
  const answer = await rawRequest(node.metricsUrl ?? "");
  assert.is(answer.status, 200);
  assert.match(String(answer.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
  return parseMetrics(String(answer.body));
}

const sync = { subject: "IMAPfetcher", order: "sync" };

test("the listener serves the exposition format, with the runtime's metrics and the process's", async ({ node }) => {
  assert.match(node.metricsUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  const metrics = await scrape(node);
  assert.is(metrics.types.get(METRIC_NAMES.ordersReceived), "counter");
  assert.is(metrics.types.get(METRIC_NAMES.orderSeconds), "histogram");
  assert.is(metrics.types.get(METRIC_NAMES.actors), "gauge");
  assert.is(metrics.types.get(METRIC_NAMES.consumerPending), "gauge");
  assert.is(metrics.types.get("process_cpu_user_seconds_total"), "counter");
  assert.is(metrics.types.get("nodejs_eventloop_lag_seconds"), "gauge");
  assert.is(sampleValue(metrics, METRIC_NAMES.liveNodes), 1);
  assert.is(sampleValue(metrics, METRIC_NAMES.ownedShards), 8);
  // Every order of the contract is there from the start, at 0.
  assert.ok(metrics.samples.some((s) => s.name === METRIC_NAMES.ordersReceived && s.labels.subject === "outboundSMTP" && s.labels.order === "deliver"));
  // Only /metrics, only GET.
  assert.is((await rawRequest(node.metricsUrl?.replace("/metrics", "/debug") ?? "")).status, 404);
  assert.is((await rawRequest(node.metricsUrl ?? "", { method: "POST" })).status, 405);
});

test("orders received and applied are counted, and the actor they start shows in the gauge", async ({ node, client }) => {
  const before = await scrape(node);
  for (let i = 0; i < 3; i++) client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: "metered", user_id: "u" }));
  await waitFor(
    "three syncs applied",
    async () => sampleValue(await scrape(node), METRIC_NAMES.ordersApplied, sync) >= sampleValue(before, METRIC_NAMES.ordersApplied, sync) + 3,
  );
  const after = await scrape(node);
  assert.is(sampleValue(after, METRIC_NAMES.ordersReceived, sync), sampleValue(before, METRIC_NAMES.ordersReceived, sync) + 3);
  assert.ok(sampleValue(after, `${METRIC_NAMES.orderSeconds}_count`, { subject: "IMAPfetcher" }) >= 3);
  assert.is(sampleValue(after, METRIC_NAMES.actors, { kind: "counter", state: "running" }), 1);
  assert.is(sampleValue(after, METRIC_NAMES.activations, { kind: "counter" }), 1);
  // The intake consumer's backlog is read on a scrape: nothing left waiting.
  assert.is(sampleValue(after, METRIC_NAMES.consumerPending, { subject: "IMAPfetcher" }), 0);
});

test("an idle actor passivated is counted, and shown as passivated", async ({ node }) => {
  assert.is(node.host.passivateIdle(0), 1);
  const metrics = await scrape(node);
  assert.is(sampleValue(metrics, METRIC_NAMES.passivations, { kind: "counter" }), 1);
  assert.is(sampleValue(metrics, METRIC_NAMES.actors, { kind: "counter", state: "passivated" }), 1);
  assert.is(sampleValue(metrics, METRIC_NAMES.actors, { kind: "counter", state: "running" }), 0);
});

test("a refused order is counted as refused and dead-lettered", async ({ node, client }) => {
  const fullfetch = { subject: "IMAPfetcher", order: "fullfetch" };
  client.publish("IMAPfetcher", encodeJson({ order: "fullfetch", remote_id: "r", user_id: "u" }));
  await waitFor("refused", async () => sampleValue(await scrape(node), METRIC_NAMES.ordersRefused, fullfetch) === 1);
  const metrics = await scrape(node);
  assert.is(sampleValue(metrics, METRIC_NAMES.ordersReceived, fullfetch), 1);
  assert.is(sampleValue(metrics, METRIC_NAMES.ordersDeadLettered, fullfetch), 1);
  assert.is(sampleValue(metrics, METRIC_NAMES.ordersApplied, fullfetch), 0);
});

test("a crashed actor is counted, and so is its restart", async ({ node }) => {
  const cell = await node.supervisors.get("counter")?.start("crashing");
  cell?.receive({ type: "crash", payload: {} });
  await waitFor("restarted", async () => sampleValue(await scrape(node), METRIC_NAMES.restarts, { kind: "counter" }) === 1);
  assert.is(sampleValue(await scrape(node), METRIC_NAMES.crashes, { kind: "counter" }), 1);
});

test("hostile order names and payloads add no label value: they are counted as unknown", async ({ node, client }) => {
  const before = await scrape(node);
  const unknownOrder = { subject: "IMAPfetcher", order: UNKNOWN };
  const hostile = ['evil"} 1\ncaliopen_owned 1', "x".repeat(500), "../../etc/passwd", "__proto__", "constructor"];
  for (const order of hostile) client.publish("IMAPfetcher", encodeJson({ order, remote_id: "r", user_id: "u" }));
  client.publish("IMAPfetcher", new TextEncoder().encode("{not json"));
  client.publish("IMAPfetcher", encodeJson({ remote_id: "no order field", user_id: "u" }));
  // An order of the subject with a payload that is not one: refused under its own (known) name.
  client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: 42 }));
  const expected = sampleValue(before, METRIC_NAMES.ordersRefused, unknownOrder) + hostile.length + 2;
  await waitFor("all refused", async () => sampleValue(await scrape(node), METRIC_NAMES.ordersRefused, unknownOrder) === expected);
  const metrics = await scrape(node);
  assert.is(sampleValue(metrics, METRIC_NAMES.ordersRefused, sync), sampleValue(before, METRIC_NAMES.ordersRefused, sync) + 1);
  for (const name of [METRIC_NAMES.ordersReceived, METRIC_NAMES.ordersRefused, METRIC_NAMES.ordersDeadLettered]) {
    assert.equal([...labelValues(metrics, name, "order")].sort(), [...labelValues(before, name, "order")].sort());
    assert.equal([...labelValues(metrics, name, "subject")].sort(), [...labelValues(before, name, "subject")].sort());
  }
  assert.not.ok(metrics.samples.some((s) => s.name === "caliopen_owned"));
  // Actor keys never show: the metered and crashing actors are counted, not named.
  assert.not.ok(metrics.samples.some((s) => Object.values(s.labels).some((value) => value === "metered" || value === "crashing")));
});

test("a node that joins takes shards: the first counts its handoffs, both see two live nodes", async ({ nats, node }) => {
  const other = await startTestNode(nats.endpoint, services, { nodeId: "node-metrics-2" });
  try {
    await waitFor("shards spread over both", async () => sampleValue(await scrape(node), METRIC_NAMES.ownedShards) < 8, 10_000);
    await waitFor(
      "every shard run by one of them",
      async () =>
        sampleValue(await scrape(node), METRIC_NAMES.ownedShards) + sampleValue(parseMetrics((await other.metrics.scrape()).text), METRIC_NAMES.ownedShards) ===
        8,
      10_000,
    );
    const first = await scrape(node);
    assert.is(sampleValue(first, METRIC_NAMES.liveNodes), 2);
    assert.is(sampleValue(first, METRIC_NAMES.shardHandoffs), 8 - sampleValue(first, METRIC_NAMES.ownedShards));
    assert.is(sampleValue(parseMetrics((await other.metrics.scrape()).text), METRIC_NAMES.liveNodes), 2);
  } finally {
    await other.shutdown("test over");
  }
});

test.run();
