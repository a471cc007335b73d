// ServiceDiscovery on its own: the subjects it answers, the shape and bounds of its replies, the names
// and ids it accepts, and a stats callback that throws (that request goes unanswered, the next is not).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { decodeJson } from "../../runtime/json.ts";
import { silentLogger } from "../../runtime/logger.ts";
import { MAX_SERVICE_TEXT_LENGTH, ServiceDiscovery, type ServiceEndpointStats } from "../../runtime/service-discovery.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";

const test = suite<{ nats: TestNats }>("service discovery");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
});
test.after(async (ctx) => {
  await ctx.nats.stop();
});

test("answers the nine subjects of one instance, with whole nanoseconds and texts cut to a bound", async ({ nats }) => {
  const nc = await nats.connect();
  let stats: ServiceEndpointStats = { requests: 3, errors: 1, lastError: "y".repeat(1_000), processingMs: 1.5 };
  const discovery = new ServiceDiscovery(
    nc,
    { name: "demo", version: "1.2.3", description: "a demo", id: "demo-1", metadata: { note: "z".repeat(1_000) } },
    [{ name: "work", subject: "demo.work", queueGroup: "q", stats: () => stats }],
    silentLogger(),
  );
  assert.equal(discovery.subjects(), [
    "$SRV.PING",
    "$SRV.PING.demo",
    "$SRV.PING.demo.demo-1",
    "$SRV.INFO",
    "$SRV.INFO.demo",
    "$SRV.INFO.demo.demo-1",
    "$SRV.STATS",
    "$SRV.STATS.demo",
    "$SRV.STATS.demo.demo-1",
  ]);
  discovery.start();
  try {
    for (const subject of discovery.subjects()) {
      const reply = decodeJson((await nc.request(subject, new Uint8Array(), { timeout: 2_000 })).data);
      assert.ok(reply.ok);
      const body = reply.value as { type: string; id: string; metadata: { note: string } };
      assert.is(body.type, `io.nats.micro.v1.${subject.split(".")[1]?.toLowerCase()}_response`);
      assert.is(body.id, "demo-1");
      assert.is(body.metadata.note.length, MAX_SERVICE_TEXT_LENGTH);
    }
    const read = async () => {
      const reply = decodeJson((await nc.request("$SRV.STATS.demo", new Uint8Array(), { timeout: 2_000 })).data);
      assert.ok(reply.ok);
      return (reply.value as { endpoints: Record<string, unknown>[] }).endpoints[0];
    };
    const endpoint = await read();
    assert.equal(
      { ...endpoint, last_error: String(endpoint?.last_error).length },
      {
        name: "work",
        subject: "demo.work",
        queue_group: "q",
        num_requests: 3,
        num_errors: 1,
        last_error: MAX_SERVICE_TEXT_LENGTH,
        processing_time: 1_500_000,
        average_processing_time: 500_000,
      },
    );
    stats = { requests: 0, errors: 0, lastError: null, processingMs: Number.NaN };
    assert.equal([(await read())?.last_error, (await read())?.processing_time, (await read())?.average_processing_time], ["", 0, 0]);
  } finally {
    discovery.stop();
  }
});

test("a stats callback that throws leaves that request unanswered, and the service answering", async ({ nats }) => {
  const nc = await nats.connect();
  let fail = true;
  const discovery = new ServiceDiscovery(
    nc,
    { name: "flaky", version: "0.0.1", description: "" },
    [
      {
        name: "e",
        subject: "e",
        queueGroup: "q",
        stats: () => {
          if (fail) throw new Error("broken");
          return { requests: 0, errors: 0, lastError: null, processingMs: 0 };
        },
      },
    ],
    silentLogger(),
  );
  discovery.start();
  try {
    await nc.request("$SRV.STATS.flaky", new Uint8Array(), { timeout: 300 }).then(
      () => assert.unreachable("answered"),
      (err: Error) => assert.match(err.message, /timeout/i),
    );
    fail = false;
    assert.ok((await nc.request("$SRV.STATS.flaky", new Uint8Array(), { timeout: 2_000 })).data.length > 0);
    // A generated id: one subject token, unique per instance.
    assert.match(discovery.id, /^[A-Za-z0-9]+$/);
  } finally {
    discovery.stop();
  }
});

test("a name or id that is not one plain subject token is refused", async ({ nats }) => {
  const nc = await nats.connect();
  for (const description of [
    { name: "a.b", version: "1.0.0", description: "" },
    { name: "ok", version: "1.0.0", description: "", id: "x.>" },
  ]) {
    assert.throws(() => new ServiceDiscovery(nc, description, [], silentLogger()), /must be letters, digits/);
  }
});

test.run();
