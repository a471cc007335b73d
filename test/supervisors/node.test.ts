import { createServer } from "node:net";
import { PassThrough } from "node:stream";
import { Kvm } from "@nats-io/kv";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { routeToActor } from "../../runtime/cluster/actor-router.ts";
import { MEMBERSHIP_BUCKET } from "../../runtime/cluster/membership.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { createLogger } from "../../runtime/logger.ts";
import { StartupError } from "../../runtime/startup-error.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import type { ServiceSet } from "../../supervisors/services.ts";
import { counterFamily } from "../helpers/counter-family.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { FAST_DETECTION_MS, startTestNode } from "../helpers/test-node.ts";

const test = suite<{ nats: TestNats }>("supervisor node");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
});
test.after(async (ctx) => {
  await ctx.nats.stop();
});

const counters: ServiceSet = {
  families: [counterFamily("counter", "snapshot", true)],
  // Route IMAPfetcher sync to counter actors, to show an entry point activating and feeding an actor.
  bindings: (deps) => ({ IMAPfetcher: { sync: routeToActor(deps, { kind: "counter", keyField: "remote_id" }) } }),
};

test("a node that starts and runs quietly logs no warning (its first heartbeat is not taken for a stalled watch)", async ({ nats }) => {
  const lines: string[] = [];
  const destination = new PassThrough();
  destination.on("data", (chunk: Buffer) => lines.push(...chunk.toString().split("\n").filter(Boolean)));
  const node = await startTestNode(nats.endpoint, counters, { nodeId: "node-quiet" }, {}, createLogger({ level: "warn", destination }));
  // Past the window after which a watch that has not seen the node's own beats is taken for stalled.
  await sleep(FAST_DETECTION_MS * 3);
  await node.shutdown("test over");
  assert.equal(
    lines.map((line) => (decodeJson(Buffer.from(line)) as { value?: { msg?: string } }).value?.msg),
    [],
  );
});

test("a node that fails to start after joining the cluster leaves it: no heartbeat goes on for it", async ({ nats }) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
  const address = taken.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  try {
    // The metrics listener starts after the node joined: its port in use fails the start there.
    const failed = await startTestNode(nats.endpoint, counters, { nodeId: "node-failed-start", metrics: { host: "127.0.0.1", port } }).then(
      () => null,
      (err: Error) => err,
    );
    assert.ok(failed instanceof StartupError, String(failed));
  } finally {
    taken.close();
  }
  const client = await nats.connect();
  const kv = await new Kvm(client).open(MEMBERSHIP_BUCKET);
  const first = await kv.get("node-failed-start");
  await sleep(FAST_DETECTION_MS);
  const later = await kv.get("node-failed-start");
  assert.ok(later === null || later.operation !== "PUT", "its heartbeat entry is removed");
  assert.is(later?.revision ?? null, first?.revision ?? null, "and nothing writes it again");
});

test("a node answers caliopen.debug.nodes with who it is and what it runs", async ({ nats }) => {
  const node = await startTestNode(nats.endpoint, counters, { nodeId: "node-debug" });
  await node.supervisors.get("counter")!.start("a");
  const client = await nats.connect();
  const msg = await client.request("caliopen.debug.nodes", new Uint8Array(), { timeout: 2000 });
  const info = decodeJson(msg.data);
  assert.ok(info.ok);
  const body = info.value as Record<string, unknown> & { nats: Record<string, unknown> };
  assert.is(body.node, "node-debug");
  assert.is(body.pid, process.pid);
  assert.is(body.actors, 1);
  assert.is(body.version, "0.1.0");
  assert.match(String(body.nats.serverVersion), /^2\.\d+\.\d+/);
  assert.match(String(body.nats.server), /127\.0\.0\.1:\d+/);
  assert.ok(typeof body.startedAt === "string" && !Number.isNaN(Date.parse(body.startedAt)));
  await node.shutdown("test");
});

test("an order on a contract subject reaches the actor keyed by its payload field, activating it", async ({ nats }) => {
  const node = await startTestNode(nats.endpoint, counters, { nodeId: "node-route" });
  try {
    const client = await nats.connect();
    for (let i = 0; i < 3; i++) client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: "remote-7", user_id: "u" }));
    const cell = await waitFor("actor activated", () => node.host.get("counter", "remote-7"));
    await waitFor("three syncs counted", async () => {
      const answer = decodeJson((await client.request(cell.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
      return answer.ok && (answer.value as { count: number }).count === 3;
    });
  } finally {
    await node.shutdown("test");
  }
});

test("graceful shutdown stops taking orders, lets busy actors finish, and saves their snapshots", async ({ nats }) => {
  const node = await startTestNode(nats.endpoint, counters, { nodeId: "node-graceful", shutdownGraceMs: 5_000 });
  const client = await nats.connect();
  const worked = client.subscribe("test.worked", { max: 1 });
  const cell = await node.supervisors.get("counter")!.start("busy-one");
  cell.receive({ type: "work", payload: { ms: 400 } });
  assert.ok(cell.busy);
  const started = Date.now();
  await node.shutdown("SIGTERM");
  const took = Date.now() - started;
  assert.ok(took >= 300, `waited for the work (${took} ms)`);
  let finished = false;
  for await (const _ of worked) finished = true;
  assert.ok(finished, "the busy actor finished its work before the node stopped");
  const subscriptions = await nats.subscriptions();
  assert.not.ok(
    subscriptions.some((sub) => sub.connection.includes("node-graceful")),
    "no subscription left",
  );
});

test("the grace period bounds a shutdown even when work does not finish", async ({ nats }) => {
  const node = await startTestNode(nats.endpoint, counters, { nodeId: "node-impatient", shutdownGraceMs: 200 });
  const cell = await node.supervisors.get("counter")!.start("slow");
  cell.receive({ type: "work", payload: { ms: 2_500 } });
  const started = Date.now();
  await node.shutdown("SIGTERM");
  assert.ok(Date.now() - started < 2_000, "did not wait for the 2.5 s job");
});

test("after a node restart, actors come back from their snapshots with their pending deadlines", async ({ nats }) => {
  const first = await startTestNode(nats.endpoint, counters, { nodeId: "node-before" });
  const cell = await first.supervisors.get("counter")!.start("durable");
  cell.receive({ type: "inc", payload: { by: 4 } });
  const at = Date.now() + 3_000;
  cell.receive({ type: "schedule", payload: { at } });
  await first.shutdown("restart");
  assert.ok(Date.now() < at - 500, "the first node stopped well before the deadline");

  const client = await nats.connect();
  const fired: number[] = [];
  client.subscribe("test.fired", {
    callback: (_err, msg) => {
      const event = decodeJson(msg.data);
      if (event.ok) fired.push((event.value as { at: number }).at);
    },
  });
  const second = await startTestNode(nats.endpoint, counters, { nodeId: "node-after" });
  // The actor was registered: the new node resumes it without being asked.
  const restored = await waitFor("actor resumed", () => second.host.get("counter", "durable"));
  assert.ok(restored.summary().deadlines["tick.due"], "deadline restored");
  const answer = decodeJson((await client.request(restored.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.ok(answer.ok && (answer.value as { count: number }).count === 4);
  await waitFor("deadline fired", () => fired.length > 0, 5_000);
  assert.equal(fired, [at]);
  assert.ok(Date.now() >= at);
  await second.shutdown("test");
});

test.run();
