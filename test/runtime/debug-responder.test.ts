import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DebugResponder } from "../../runtime/debug-responder.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { silentLogger } from "../../runtime/logger.ts";
import { startRuntimeFixture, type RuntimeFixture } from "../helpers/runtime-fixture.ts";
import { counterFamily } from "../helpers/counter-family.ts";

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
  assert.equal(everything.map((r) => r.total), [2, 2]);
  const betas = await all(fx, "caliopen.debug.actors", { kind: "beta" });
  assert.equal(betas.map((r) => (r.actors as { key: string }[]).map((a) => a.key)), [["n1-b"], ["n2-b"]]);
  const onlyN2 = await all(fx, "caliopen.debug.actors", { node: "n2" });
  assert.equal(onlyN2.map((r) => r.node), ["n2"]);
  const paged = await all(fx, "caliopen.debug.actors", { node: "n1", limit: 1, offset: 1 });
  assert.equal(paged.map((r) => [r.total, (r.actors as unknown[]).length, r.offset]), [[2, 1, 1]]);
});

test("caliopen.debug.actor.<kind>.<key>: the owner answers with the snapshot, others say not found", async ({ fx }) => {
  const replies = await all(fx, "caliopen.debug.actor.alpha.n2-a");
  assert.equal(replies.map((r) => [r.node, r.found]), [["n1", false], ["n2", true]]);
  const actor = replies[1]!.actor as { context: { password: string; key: string } };
  assert.is(actor.context.key, "n2-a");
  assert.is(actor.context.password, "[redacted]");
  const bad = await all(fx, "caliopen.debug.actor.alpha");
  assert.equal(bad.map((r) => r.error), [true, true], "a subject without a key gets an error from every node");
  assert.match(String(bad[0]!.message), /expected caliopen\.debug\.actor\.<kind>\.<key>/);
});

test.run();
