import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { NoResponders, Requester, RequestTimeout } from "../../runtime/requester.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";

const test = suite<{ nats: TestNats; nc: NatsConnection }>("requester");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.nc = await ctx.nats.connect();
});
test.after(async (ctx) => {
  await ctx.nats.stop();
});

test("many concurrent requests share one inbox and each gets its own reply", async ({ nats, nc }) => {
  nc.subscribe("echo", {
    callback: (_err, msg) => {
      setTimeout(() => msg.respond(msg.data), Math.random() * 20);
    },
  });
  const requester = new Requester(nc);
  const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => requester.request("echo", new TextEncoder().encode(`n${i}`), 2000)));
  assert.equal(
    replies.map((msg) => msg.string()),
    Array.from({ length: 200 }, (_, i) => `n${i}`),
  );
  const inboxes = (await nats.subscriptions()).filter((sub) => sub.subject.startsWith("_INBOX."));
  assert.is(inboxes.length, 1, "one inbox subscription for all of them");
  requester.close();
});

test("a reply expected but not awaited yet, when the requester closes: no unhandled rejection; awaiting it later says it was abandoned", async ({ nc }) => {
  const unhandled: unknown[] = [];
  const record = (reason: unknown) => unhandled.push(reason);
  process.on("unhandledRejection", record);
  try {
    const requester = new Requester(nc);
    const waiting = requester.expect("inbound/u1 (import_batch.email)", 5_000);
    requester.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(unhandled, []);
    try {
      await waiting.reply;
      assert.unreachable();
    } catch (err) {
      assert.match((err as Error).message, /request on inbound\/u1 \(import_batch\.email\) abandoned: connection closing/);
    }
  } finally {
    process.off("unhandledRejection", record);
  }
});

test("nobody listening is reported at once as NoResponders", async ({ nc }) => {
  const requester = new Requester(nc);
  const started = Date.now();
  try {
    await requester.request("nobody.home", new Uint8Array(), 5000);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, NoResponders);
    assert.match((err as Error).message, /no service is listening on nobody\.home/);
  }
  assert.ok(Date.now() - started < 2000);
  requester.close();
});

test("a silent responder times out with a clear error", async ({ nc }) => {
  nc.subscribe("silent", { callback: () => undefined });
  const requester = new Requester(nc);
  try {
    await requester.request("silent", new Uint8Array(), 100);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RequestTimeout);
    assert.match((err as Error).message, /no reply on silent within 100 ms/);
  }
  requester.close();
});

test("close fails the requests still waiting", async ({ nc }) => {
  nc.subscribe("slow", { callback: () => undefined });
  const requester = new Requester(nc);
  const waiting = requester.request("slow", new Uint8Array(), 5000);
  requester.close();
  try {
    await waiting;
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /abandoned/);
  }
});

test.run();
