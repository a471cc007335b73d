// RuntimeMetrics on its own: each node's registry is its own, and the intake backlog is read from
// JetStream at most once per LAG_CACHE_MS whatever the scrapes, and never holds a scrape up for long.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type ConsumerLag, METRIC_NAMES, RuntimeMetrics } from "../../runtime/metrics.ts";
import { parseMetrics, sampleValue } from "../helpers/metrics-text.ts";

const test = suite("runtime metrics");

const scrape = async (metrics: RuntimeMetrics) => parseMetrics((await metrics.scrape()).text);

test("two nodes in one process keep their own figures", async () => {
  const [a, b] = [new RuntimeMetrics(), new RuntimeMetrics()];
  a.actorActivated("counter");
  const sync = a.orderCounters("IMAPfetcher", ["sync"]).known.get("sync");
  if (sync !== undefined) sync.received += 2;
  b.orderCounters("IMAPfetcher", ["sync"]);
  assert.is(sampleValue(await scrape(a), METRIC_NAMES.activations, { kind: "counter" }), 1);
  assert.is(sampleValue(await scrape(b), METRIC_NAMES.activations, { kind: "counter" }), 0);
  assert.is(sampleValue(await scrape(a), METRIC_NAMES.ordersReceived, { subject: "IMAPfetcher", order: "sync" }), 2);
  assert.is(sampleValue(await scrape(b), METRIC_NAMES.ordersReceived, { subject: "IMAPfetcher", order: "sync" }), 0);
});

test("a storm of scrapes reads the backlog once", async () => {
  const metrics = new RuntimeMetrics();
  let reads = 0;
  metrics.readLagWith(async () => {
    reads += 1;
    return [{ subject: "IMAPfetcher", pending: 7, ackPending: 2 }];
  });
  const scraped = await Promise.all(Array.from({ length: 20 }, () => scrape(metrics)));
  await scrape(metrics);
  assert.is(reads, 1);
  for (const text of scraped) {
    assert.is(sampleValue(text, METRIC_NAMES.consumerPending, { subject: "IMAPfetcher" }), 7);
    assert.is(sampleValue(text, METRIC_NAMES.consumerAckPending, { subject: "IMAPfetcher" }), 2);
  }
});

test("a backlog read that fails or hangs leaves the backlog out, and the scrape answers", async () => {
  const failing = new RuntimeMetrics();
  failing.readLagWith(() => Promise.reject(new Error("no JetStream")));
  assert.not.ok((await scrape(failing)).samples.some((s) => s.name === METRIC_NAMES.consumerPending));

  const hanging = new RuntimeMetrics();
  hanging.readLagWith(() => new Promise<ConsumerLag[]>(() => undefined));
  const started = Date.now();
  const text = await scrape(hanging);
  assert.ok(Date.now() - started < 3_000);
  assert.not.ok(text.samples.some((s) => s.name === METRIC_NAMES.consumerPending));
});

test.run();
