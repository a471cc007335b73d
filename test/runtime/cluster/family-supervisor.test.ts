import { suite } from "uvu";
import * as assert from "uvu/assert";
import { FamilySupervisor } from "../../../runtime/cluster/family-supervisor.ts";
import { SingleNodePlacement } from "../../../runtime/cluster/placement.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import { silentLogger } from "../../../runtime/logger.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import { counterFamily } from "../../helpers/counter-family.ts";
import { type RuntimeFixture, startRuntimeFixture } from "../../helpers/runtime-fixture.ts";

const test = suite<{ fx: RuntimeFixture }>("family supervisor");

test.before(async (ctx) => {
  ctx.fx = await startRuntimeFixture();
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

const fastBackoff = { initialMs: 50, maxMs: 400, factor: 2, jitter: 0 };

function supervisor(fx: RuntimeFixture, kind: string): FamilySupervisor {
  return new FamilySupervisor(fx.newHost(), counterFamily(kind), new SingleNodePlacement("test-node"), silentLogger(), fastBackoff);
}

async function count(fx: RuntimeFixture, subject: string): Promise<number> {
  const decoded = decodeJson((await fx.nc.request(subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  return decoded.ok ? Number((decoded.value as { count: number }).count) : NaN;
}

test("start is idempotent: a second start returns the live actor", async ({ fx }) => {
  const sup = supervisor(fx, "s1");
  const first = await sup.start("k");
  const second = await sup.start("k");
  assert.is(first, second);
});

test("a crashed actor is restarted after a backoff that grows with each consecutive crash", async ({ fx }) => {
  const sup = supervisor(fx, "s2");
  const cell = await sup.start("k");
  cell.receive({ type: "inc", payload: { by: 3 } });
  const gaps: number[] = [];
  for (let crash = 1; crash <= 4; crash++) {
    const crashedAt = Date.now();
    cell.receive({ type: "crash", payload: {} });
    assert.is(cell.status, "crashed");
    await waitFor(`restart ${crash}`, () => cell.status === "running" && cell.restarts === crash, 3000, 5);
    gaps.push(Date.now() - crashedAt);
  }
  // 50, 100, 200, 400 ms: each wait at least the policy's delay, and growing.
  assert.ok(gaps[0]! >= 45 && gaps[1]! >= 95 && gaps[2]! >= 195 && gaps[3]! >= 395, `gaps ${gaps.join(", ")}`);
  assert.is(await count(fx, cell.subject), 3, "state kept across restarts");
  assert.match(cell.summary().lastError?.message ?? "", /boom/);
});

test("orders sent while an actor waits for its restart are delivered after it", async ({ fx }) => {
  const sup = supervisor(fx, "s3");
  const cell = await sup.start("k");
  cell.receive({ type: "crash", payload: {} });
  fx.nc.publish(cell.subject, encodeJson({ type: "inc", payload: { by: 5 } }));
  const answered = await count(fx, cell.subject);
  assert.is(answered, 5);
  assert.is(cell.restarts, 1);
});

test("reload restarts the actor with its snapshot kept; remove stops it and forgets it", async ({ fx }) => {
  const sup = supervisor(fx, "s4");
  const cell = await sup.start("k");
  cell.receive({ type: "inc", payload: { by: 9 } });
  await waitFor("saved", async () => (await fx.snapshots.load("s4", "k")) !== null);
  const reloaded = await sup.reload("k");
  assert.is.not(reloaded, cell);
  assert.is(cell.status, "stopped");
  assert.is(await count(fx, reloaded.subject), 9 + 1000, "the count kept, plus the reload's notice");
  assert.is(await sup.remove("k"), true);
  assert.is(await fx.snapshots.load("s4", "k"), null);
  const fresh = await sup.start("k");
  assert.is(await count(fx, fresh.subject), 0);
  assert.is(await sup.remove("absent"), false);
});

test("an actor whose machine reaches a final state is removed: stopped, snapshot and directory entry dropped", async ({ fx }) => {
  const removed: string[] = [];
  const directory = { add: async () => undefined, remove: async (_kind: string, key: string) => void removed.push(key) };
  const sup = new FamilySupervisor(fx.newHost(), counterFamily("s6"), new SingleNodePlacement("test-node"), silentLogger(), fastBackoff, directory);
  const cell = await sup.start("k");
  cell.receive({ type: "inc", payload: { by: 2 } });
  await waitFor("saved", async () => (await fx.snapshots.load("s6", "k")) !== null);
  cell.receive({ type: "finish", payload: {} });
  await waitFor("stopped", () => cell.status === "stopped");
  await waitFor("snapshot dropped", async () => (await fx.snapshots.load("s6", "k")) === null);
  assert.equal(removed, ["k"]);
});

test("a reloaded actor is notified if its state takes the notice, and nothing is dead-lettered if not", async ({ fx }) => {
  const sup = supervisor(fx, "s7");
  const cell = await sup.start("k");
  await waitFor("saved", async () => (await fx.snapshots.load("s7", "k")) !== null);
  const reloaded = await sup.reload("k");
  assert.is(await count(fx, reloaded.subject), 1000, "idle takes the notice");
  reloaded.receive({ type: "work", payload: { ms: 300 } });
  await waitFor("saved while working", async () => JSON.stringify((await fx.snapshots.load("s7", "k"))?.record.snapshot).includes("working"));
  const before = (await fx.deadLetters.list(100)).length;
  const again = await sup.reload("k");
  await waitFor("back to idle", () => again.summary().state === "idle", 3_000);
  assert.is(await count(fx, again.subject), 1001, "working did not take it (then finished its work)");
  assert.is((await fx.deadLetters.list(100)).length, before, "no dead letter for an ignored notice");
  void cell;
});

test("after close, pending restarts are cancelled and new starts refused", async ({ fx }) => {
  const sup = new FamilySupervisor(fx.newHost(), counterFamily("s5"), new SingleNodePlacement("n"), silentLogger(), { ...fastBackoff, initialMs: 200 });
  const cell = await sup.start("k");
  cell.receive({ type: "crash", payload: {} });
  sup.close();
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.is(cell.status, "crashed");
  try {
    await sup.start("other");
    assert.unreachable("start after close must fail");
  } catch (err) {
    assert.match((err as Error).message, /shutting down/);
  }
});

test.run();
