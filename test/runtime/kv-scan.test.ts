// Reading a KV bucket in one pass: live entries only, each key's last value, every key once even while
// keys are replaced under the scan; and a server that stops answering mid-scan (frozen with SIGSTOP)
// makes the scan fail instead of hanging its caller for ever.
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

test("a bucket written to all the while: each scan ends once it has read what was there when it began", async (ctx) => {
  // As the identities bucket is while pollers record their polls: one value per key, updated constantly.
  // The server's pending count of a last-per-subject consumer is wrong when keys are replaced under it:
  // a scan that trusted it missed a key (it reached zero too early) or never ended (it stayed at one
  // while later writes came in), each within a few hundred of these scans.
  const kv = await new Kvm(ctx.nc).create("scan_busy", { history: 1 });
  const keys = 5;
  await Promise.all(Array.from({ length: keys }, (_, i) => kv.put(`k.${i}`, new TextEncoder().encode("0"))));
  let writing = true;
  let written = 0;
  const writer = (async () => {
    while (writing) {
      written += 1;
      // Mostly updates, now and then a new key (an identity added).
      await kv.put(written % 50 === 0 ? `n.${written}` : `k.${(written * 7919) % keys}`, new TextEncoder().encode(String(written)));
    }
  })();
  try {
    for (let scan = 0; scan < 1_500; scan++) {
      const seen = new Set<string>();
      const ended = await Promise.race([
        scanLatest(jetstream(ctx.nc), "scan_busy", ">", (entry) => void seen.add(entry.key)).then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 3_000)),
      ]);
      assert.ok(ended, `scan ${scan} ended (${written} writes so far)`);
      assert.is([...seen].filter((key) => key.startsWith("k.")).length, keys, `scan ${scan} read every key`);
    }
  } finally {
    writing = false;
    await writer;
  }
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
