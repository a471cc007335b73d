// Reading a KV bucket in one pass: live entries only, each key's last value; and a server that stops
// answering mid-scan (frozen with SIGSTOP) makes the scan fail instead of hanging its caller for ever.
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ScanStalled, scanLatest } from "../../runtime/kv-scan.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";

const test = suite<{ nats: TestNats; nc: NatsConnection }>("KV scan");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.nc = await ctx.nats.connect();
});
test.after(async (ctx) => {
  process.kill(ctx.nats.server.pid, "SIGCONT");
  await ctx.nats.stop();
});

test("each live key once, with its last value; deleted keys left out", async (ctx) => {
  const kv = await new Kvm(ctx.nc).create("scan_small");
  for (let i = 0; i < 50; i++) await kv.put(`a.${i}`, new TextEncoder().encode("first"));
  for (let i = 0; i < 50; i += 2) await kv.put(`a.${i}`, new TextEncoder().encode("second"));
  for (let i = 0; i < 50; i += 5) await kv.delete(`a.${i}`);
  await kv.put("b.other", new TextEncoder().encode("elsewhere"));
  const seen = new Map<string, string>();
  await scanLatest(jetstream(ctx.nc), "scan_small", "a.>", (entry) => {
    assert.not.ok(seen.has(entry.key), `${entry.key} once`);
    seen.set(entry.key, new TextDecoder().decode(entry.value));
  });
  assert.is(seen.size, 40);
  for (const [key, value] of seen) assert.is(value, Number(key.slice(2)) % 2 === 0 ? "second" : "first", key);
});

test("a server frozen mid-scan: the scan fails with ScanStalled", async (ctx) => {
  const kv = await new Kvm(ctx.nc).create("scan_big");
  // Big enough that the server cannot have pushed it all into the socket before it freezes.
  const value = new Uint8Array(16 * 1024).fill(7);
  await Promise.all(Array.from({ length: 4_000 }, (_, i) => kv.put(`k.${i}`, value)));
  let entries = 0;
  const started = Date.now();
  const scan = scanLatest(
    jetstream(ctx.nc),
    "scan_big",
    ">",
    () => {
      entries += 1;
      if (entries === 1) process.kill(ctx.nats.server.pid, "SIGSTOP");
    },
    300,
  );
  const outcome = await scan.then(
    () => null,
    (err: Error) => err,
  );
  process.kill(ctx.nats.server.pid, "SIGCONT");
  assert.ok(outcome instanceof ScanStalled, `failed with ScanStalled, not ${outcome === null ? "success" : outcome.message} (${entries} entries)`);
  assert.ok(entries < 4_000, `stopped part way (${entries} entries)`);
  assert.ok(Date.now() - started < 5_000, "within a few stall periods");
});

test.run();
