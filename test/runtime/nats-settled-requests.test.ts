import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import "../../runtime/nats-settled-requests.ts";
import "../../runtime/nats-write-coalescing.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";

// The patches to nats.js (runtime/nats-settled-requests.ts, runtime/nats-write-coalescing.ts): no error
// built for requests already answered, commands written at the end of the event loop's turn; everything
// a caller sees of a request or a publish stays as nats.js made it.
const test = suite<{ nats: TestNats; nc: NatsConnection }>("nats-settled-requests");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.nc = await ctx.nats.connect();
});
test.after(async (ctx) => {
  await ctx.nc.close();
  await ctx.nats.stop();
});

/** Requests waiting for their answer in the connection's shared inbox. */
function pendingRequests(nc: NatsConnection): number {
  return (nc as unknown as { protocol: { muxSubscriptions: { size(): number } } }).protocol.muxSubscriptions.size();
}

test("answered requests resolve with their reply and leave nothing pending", async ({ nc }) => {
  const sub = nc.subscribe("settled.echo", { callback: (_err, msg) => void msg.respond(msg.data) });
  const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => nc.request("settled.echo", `n${i}`, { timeout: 2_000 })));
  assert.equal(
    replies.map((msg) => msg.string()),
    Array.from({ length: 100 }, (_, i) => `n${i}`),
  );
  assert.is(pendingRequests(nc), 0);
  sub.unsubscribe();
});

test("a request nobody answers still times out, and one without responders still says so", async ({ nc }) => {
  const silent = nc.subscribe("settled.silent", { callback: () => undefined });
  await nc.flush();
  const timedOut = await nc.request("settled.silent", "x", { timeout: 100 }).then(
    () => null,
    (err: Error) => err,
  );
  assert.ok(timedOut instanceof Error);
  assert.match(timedOut.message, /timeout/i);
  const none = await nc.request("settled.nobody", "x", { timeout: 1_000 }).then(
    () => null,
    (err: Error) => err,
  );
  assert.ok(none instanceof Error);
  assert.match(`${none.message} ${String((none as { cause?: unknown }).cause)}`, /no responders/i);
  assert.is(pendingRequests(nc), 0);
  silent.unsubscribe();
});

test("a request still waiting when its connection closes is rejected", async ({ nats }) => {
  const nc = await nats.connect();
  nc.subscribe("settled.never", { callback: () => undefined });
  await nc.flush();
  const waiting = nc.request("settled.never", "x", { timeout: 10_000 }).then(
    () => null,
    (err: Error) => err,
  );
  await nc.close();
  assert.ok((await waiting) instanceof Error);
});

test("publishes from many promise continuations, small and past the write buffer, all arrive, in order", async ({ nats, nc }) => {
  const receiver = await nats.connect();
  const got: number[] = [];
  const total = 5_000;
  const all = new Promise<void>((resolve) => {
    receiver.subscribe("settled.order", {
      callback: (_err, msg) => {
        got.push(msg.data.length === 0 ? -1 : Number(new TextDecoder().decode(msg.data.subarray(0, 8))));
        if (got.length === total) resolve();
      },
    });
  });
  await receiver.flush();
  const big = new Uint8Array(40 * 1024).fill(32);
  for (let n = 0; n < total; n++) {
    await Promise.resolve();
    const label = new TextEncoder().encode(String(n).padStart(8, "0"));
    const payload = n % 500 === 0 ? Uint8Array.from([...label, ...big]) : label;
    nc.publish("settled.order", payload);
  }
  await all;
  assert.equal(
    got,
    Array.from({ length: total }, (_, n) => n),
  );
  await receiver.close();
});

test.run();
