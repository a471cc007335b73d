import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ActorHost } from "../../runtime/actor-host.ts";
import { DeadLetters } from "../../runtime/dead-letters.ts";
import { DebugResponder, MAX_PAGE } from "../../runtime/debug-responder.ts";
import { startEmbeddedNats } from "../../runtime/embedded-nats-server.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { silentLogger } from "../../runtime/logger.ts";
import { natsConnectOptions } from "../../runtime/nats-endpoint.ts";
import { SnapshotStore } from "../../runtime/snapshot-store.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { counterFamily } from "../helpers/counter-family.ts";
import { type RuntimeFixture, startRuntimeFixture } from "../helpers/runtime-fixture.ts";

const test = suite<{ fx: RuntimeFixture }>("debug responder");

test.before(async (ctx) => {
  ctx.fx = await startRuntimeFixture();
  for (const node of ["n1", "n2"]) {
    const host = ctx.fx.newHost(node);
    host.register(counterFamily("alpha"));
    host.register(counterFamily("beta"));
    await host.activate("alpha", `${node}-a`);
    await host.activate("beta", `${node}-b`);
    new DebugResponder(ctx.fx.nc, ctx.fx.subjects, host, node, () => ({ node }), silentLogger()).start();
  }
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

async function all(fx: RuntimeFixture, subject: string, query: unknown = {}): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const msg of await fx.nc.requestMany(subject, encodeJson(query), { strategy: "stall", stall: 200, maxWait: 2000 })) {
    const decoded = decodeJson(msg.data);
    if (decoded.ok) out.push(decoded.value as Record<string, unknown>);
  }
  return out.sort((a, b) => String(a.node).localeCompare(String(b.node)));
}

test("every node answers caliopen.debug.nodes", async ({ fx }) => {
  assert.equal(await all(fx, "caliopen.debug.nodes"), [{ node: "n1" }, { node: "n2" }]);
});

test("caliopen.debug.actors: one reply per node, filtered by kind, or by node", async ({ fx }) => {
  const everything = await all(fx, "caliopen.debug.actors");
  assert.equal(
    everything.map((r) => r.total),
    [2, 2],
  );
  const betas = await all(fx, "caliopen.debug.actors", { kind: "beta" });
  assert.equal(
    betas.map((r) => (r.actors as { key: string }[]).map((a) => a.key)),
    [["n1-b"], ["n2-b"]],
  );
  const onlyN2 = await all(fx, "caliopen.debug.actors", { node: "n2" });
  assert.equal(
    onlyN2.map((r) => r.node),
    ["n2"],
  );
  const paged = await all(fx, "caliopen.debug.actors", { node: "n1", limit: 1, offset: 1 });
  assert.equal(
    paged.map((r) => [r.total, (r.actors as unknown[]).length, r.offset]),
    [[2, 1, 1]],
  );
});

test("caliopen.debug.actor.<kind>.<key>: the owner answers with the snapshot, others say not found", async ({ fx }) => {
  const replies = await all(fx, "caliopen.debug.actor.alpha.n2-a");
  assert.equal(
    replies.map((r) => [r.node, r.found]),
    [
      ["n1", false],
      ["n2", true],
    ],
  );
  const actor = replies[1]!.actor as { context: { password: string; key: string } };
  assert.is(actor.context.key, "n2-a");
  assert.is(actor.context.password, "[redacted]");
  const bad = await all(fx, "caliopen.debug.actor.alpha");
  assert.equal(
    bad.map((r) => r.error),
    [true, true],
    "a subject without a key gets an error from every node",
  );
  assert.match(String(bad[0]!.message), /expected caliopen\.debug\.actor\.<kind>\.<key>/);
});

test("caliopen.debug.actors: a limit above the page size is served as one page, and the reply says so", async ({ fx }) => {
  const [reply] = await all(fx, "caliopen.debug.actors", { node: "n1", limit: 100_000 });
  assert.equal([reply?.limit, reply?.total, reply?.next_offset, (reply?.actors as unknown[] | undefined)?.length], [MAX_PAGE, 2, null, 2]);
  const [first] = await all(fx, "caliopen.debug.actors", { node: "n1", limit: 1 });
  assert.is(first?.next_offset, 1, "where the next page starts");
});

test("caliopen.debug.actors: unbounded or mistyped queries get an error naming the field or the limit", async ({ fx }) => {
  const cases: [unknown, RegExp][] = [
    [{ limit: "all" }, /"limit" must be a number >= 0/],
    [{ offset: -1 }, /"offset" must be a number >= 0/],
    [{ kind: "k".repeat(10_000) }, /"kind" must be a string of at most 128 characters/],
    [{ node: 42 }, /"node" must be a string/],
    [{ kind: "x".repeat(70_000) }, /over the limit of 65536 bytes/],
  ];
  for (const [query, expected] of cases) {
    const replies = await all(fx, "caliopen.debug.actors", query);
    assert.equal(
      replies.map((r) => r.error),
      [true, true],
      JSON.stringify(query).slice(0, 40),
    );
    assert.match(String(replies[0]?.message), expected);
  }
  const deep = await all(fx, "caliopen.debug.actors", JSON.parse(`{"kind":${"[".repeat(40)}${"]".repeat(40)}}`));
  assert.match(String(deep[0]?.message), /nested deeper than the limit of 32 levels/);
});

test("caliopen.debug.actor.<kind>.<key>: an over-long key gets an error, not a lookup", async ({ fx }) => {
  const replies = await all(fx, `caliopen.debug.actor.alpha.${"k".repeat(3_000)}`);
  assert.equal(
    replies.map((r) => r.error),
    [true, true],
  );
  assert.match(String(replies[0]?.message), /a key of at most 128 characters/);
});

test("no debug reply exceeds the connection's max_payload: a page of actors is cut short and says where to go on", async () => {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-test-debug-"));
  const server = await startEmbeddedNats({ dataDir: dir, port: 0, extraConfig: "max_payload: 16384\n" });
  const nc = await connect(await natsConnectOptions(server.endpoint));
  try {
    const subjects = new Subjects("");
    const host = new ActorHost({
      nc,
      subjects,
      nodeId: "small",
      logger: silentLogger(),
      snapshots: await SnapshotStore.open(nc, "caliopen_actor_snapshots"),
      deadLetters: await DeadLetters.open(nc, subjects, "small", silentLogger()),
    });
    host.register(counterFamily("wide", "none"));
    for (let i = 0; i < 200; i++) await host.activate("wide", `key-${i}-${"x".repeat(60)}`);
    new DebugResponder(nc, subjects, host, "small", () => ({ node: "small" }), silentLogger()).start();
    const reply = decodeJson((await nc.request("caliopen.debug.actors", encodeJson({ limit: 1_000 }), { timeout: 2_000 })).data);
    assert.ok(reply.ok);
    const page = reply.value as { total: number; actors: unknown[]; next_offset: number; truncated: string };
    assert.is(page.total, 200);
    assert.ok(page.actors.length > 0 && page.actors.length < 200, `${page.actors.length} actors in a page`);
    assert.is(page.next_offset, page.actors.length);
    assert.match(page.truncated, /cut at \d+ actors to fit this connection's max_payload/);
    const next = decodeJson((await nc.request("caliopen.debug.actors", encodeJson({ limit: 1_000, offset: page.next_offset }), { timeout: 2_000 })).data);
    assert.ok(next.ok && (next.value as { actors: unknown[] }).actors.length > 0);
    await host.stopAll();
  } finally {
    await nc.close();
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
