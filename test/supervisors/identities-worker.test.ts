// The identities worker on real nodes: one poller per remote identity, driven by the contract's orders on
// identitiesWorker, emitting `sync` on schedule and the bridges' worker lifecycle orders; its schedule
// survives a node restart and a handoff with no tick skipped or doubled.

import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { PollerContext } from "../../actors/identities/poller.ts";
import type { Identity } from "../../actors/store/model.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import type { CaliopenConfig } from "../../supervisors/caliopen-config.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { DEFAULT_POLLER_CHECK_EVERY_MS } from "../../supervisors/poller-check.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

interface Seen {
  subject: string;
  payload: Record<string, unknown>;
  at: number;
}

interface Context {
  nats: TestNats;
  client: NatsConnection;
  config: CaliopenConfig;
  store: Store;
  nodes: RunningNode[];
  seen: Seen[];
}

const test = suite<Context>("identities worker");
const USER = "7d0c4a9e-0000-4000-8000-000000000001";

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.client = await ctx.nats.connect();
  // The identities' IMAP servers do not exist: their workers fail, and must not slow the pollers down here.
  // Pollers are checked against the store at every node start here (the claim of a check lasts 1 s).
  ctx.config = testCaliopenConfig({
    api: null,
    imap: { slowDownAfterFailures: 1_000, retry: { initialMs: 60_000, maxMs: 60_000, factor: 1, jitter: 0 } },
    pollerCheckEveryMs: 1_000,
  });
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: ctx.config.secrets });
  ctx.nodes = [];
  ctx.seen = [];
  for (const subject of ["IMAPfetcher", "twitter_dm", "imap_worker", "twitter_worker"]) {
    ctx.client.subscribe(subject, {
      callback: (_err, msg) => {
        const decoded = decodeJson(msg.data);
        if (decoded.ok) ctx.seen.push({ subject, payload: decoded.value as Record<string, unknown>, at: Date.now() });
      },
    });
  }
  await ctx.client.flush();
});
test.after(async (ctx) => {
  for (const node of ctx.nodes) await node.shutdown("test over");
  await ctx.nats.stop();
});

async function startNode(ctx: Context, id: string): Promise<RunningNode> {
  const node = await startTestNode(ctx.nats.endpoint, caliopenServices(ctx.config), { nodeId: id, shards: 8 });
  ctx.nodes.push(node);
  return node;
}

async function stopNode(ctx: Context, node: RunningNode): Promise<void> {
  await node.shutdown("test");
  ctx.nodes = ctx.nodes.filter((other) => other !== node);
}

function remote(
  ctx: Context,
  identifier: string,
  protocol: "imap" | "twitter",
  pollInterval: string,
  status: "active" | "inactive" = "active",
  pollSchedule?: string,
): Promise<Identity> {
  return ctx.store.identities.create({
    user_id: USER,
    type: "remote",
    protocol,
    identifier,
    status,
    infos: { inserver: "127.0.0.1:1", poll_interval: pollInterval, ...(pollSchedule !== undefined && { poll_schedule: pollSchedule }) },
    credentials: { username: identifier, password: "pw" },
  });
}

function order(ctx: Context, order: string, identity: Identity, extra: Record<string, unknown> = {}): void {
  ctx.client.publish("identitiesWorker", encodeJson({ order, identity_id: identity.identity_id, user_id: identity.user_id, ...extra }));
}

function seenFor(ctx: Context, identity: Identity, subject?: string, orderName?: string): Seen[] {
  return ctx.seen.filter(
    (s) =>
      s.payload.remote_id === identity.identity_id &&
      (subject === undefined || s.subject === subject) &&
      (orderName === undefined || s.payload.order === orderName),
  );
}

async function pollerState(node: RunningNode, identity: Identity): Promise<unknown> {
  return node.host.get("poller", identity.identity_id)?.summary().state;
}

/** Sync times must sit on one grid: consecutive gaps of one interval, none missing, none doubled. */
function assertOnGrid(times: number[], intervalMs: number, what: string): void {
  for (let i = 1; i < times.length; i++) {
    const gap = (times[i] as number) - (times[i - 1] as number);
    assert.ok(
      Math.abs(gap - intervalMs) < intervalMs * 0.25,
      `${what}: tick ${i} came ${gap} ms after the previous one (interval ${intervalMs} ms): ${times.map((t) => t - (times[0] as number)).join(", ")}`,
    );
  }
}

test("add_identity starts a poller: add_worker, a first sync at once, then a sync every interval", async (ctx) => {
  const node = await startNode(ctx, "n1");
  const identity = await remote(ctx, "poll@example.com", "imap", "0.02"); // 1.2 s
  order(ctx, "add_identity", identity);
  await waitFor("three syncs", () => seenFor(ctx, identity, "IMAPfetcher").length >= 3, 8_000);
  assert.equal(
    seenFor(ctx, identity, "imap_worker").map((s) => s.payload),
    [{ order: "add_worker", remote_id: identity.identity_id, user_id: USER }],
  );
  const syncs = seenFor(ctx, identity, "IMAPfetcher");
  assert.equal(syncs[0]?.payload, { order: "sync", remote_id: identity.identity_id, user_id: USER }, "exactly the contract's payload");
  assertOnGrid(
    syncs.map((s) => s.at),
    1_200,
    "syncs",
  );

  const infos = (await ctx.store.identities.get(USER, identity.identity_id))?.infos;
  assert.ok(infos?.last_poll && infos.next_poll, `the identity shows its schedule: ${JSON.stringify(infos)}`);
  assert.ok(Date.parse(infos.next_poll as string) > Date.parse(infos.last_poll as string));
  const summary = node.host.get("poller", identity.identity_id)?.summary();
  assert.ok(summary?.deadlines["poll.due"], "the next run is visible as the poller's deadline");

  // add_identity again is idempotent: no second add_worker, no extra sync.
  const before = seenFor(ctx, identity, "IMAPfetcher").length;
  order(ctx, "add_identity", identity);
  await sleep(600);
  assert.is(seenFor(ctx, identity, "imap_worker").length, 1);
  assert.ok(seenFor(ctx, identity, "IMAPfetcher").length <= before + 1);
  order(ctx, "delete_identity", identity);
  await waitFor("poller gone", () => node.host.get("poller", identity.identity_id) === undefined);
});

test("update_interval stores the new interval and moves the schedule", async (ctx) => {
  const identity = await remote(ctx, "interval@example.com", "imap", "5");
  order(ctx, "add_identity", identity);
  await waitFor("first sync", () => seenFor(ctx, identity, "IMAPfetcher").length === 1);
  await sleep(1_000);
  assert.is(seenFor(ctx, identity, "IMAPfetcher").length, 1, "nothing more within 5 minutes");
  order(ctx, "update_interval", identity, { poll_intervall: "0.02", protocol: "imap" });
  await waitFor("syncs at the new interval", () => seenFor(ctx, identity, "IMAPfetcher").length >= 3, 6_000);
  assert.is((await ctx.store.identities.get(USER, identity.identity_id))?.infos.poll_interval, "0.02");
  order(ctx, "delete_identity", identity);
});

test("update_identity: disabled → remove_worker and no more syncs; enabled again → add_worker and syncs resume", async (ctx) => {
  const [node] = ctx.nodes as [RunningNode];
  const identity = await remote(ctx, "toggle@example.com", "imap", "0.02");
  order(ctx, "add_identity", identity);
  await waitFor("first sync", () => seenFor(ctx, identity, "IMAPfetcher").length >= 1);
  await ctx.store.identities.update(USER, identity.identity_id, () => ({ fields: { status: "inactive" } }));
  order(ctx, "update_identity", identity);
  await waitFor("dormant", async () => (await pollerState(node, identity)) === "dormant");
  const syncsWhenStopped = seenFor(ctx, identity, "IMAPfetcher").length;
  await sleep(2_000);
  assert.is(seenFor(ctx, identity, "IMAPfetcher").length, syncsWhenStopped, "no sync while inactive");
  assert.equal(
    seenFor(ctx, identity, "imap_worker").map((s) => s.payload.order),
    ["add_worker", "remove_worker"],
  );

  await ctx.store.identities.update(USER, identity.identity_id, () => ({ fields: { status: "active" } }));
  order(ctx, "update_identity", identity);
  await waitFor("syncs again", () => seenFor(ctx, identity, "IMAPfetcher").length > syncsWhenStopped, 4_000);
  assert.equal(
    seenFor(ctx, identity, "imap_worker").map((s) => s.payload.order),
    ["add_worker", "remove_worker", "add_worker"],
  );

  // A change of an active identity reloads its worker.
  order(ctx, "update_identity", identity);
  await waitFor("reload_worker", () => seenFor(ctx, identity, "imap_worker", "reload_worker").length === 1);
  order(ctx, "delete_identity", identity);
});

test("delete_identity: remove_worker, the poller is gone and no sync follows", async (ctx) => {
  const [node] = ctx.nodes as [RunningNode];
  const identity = await remote(ctx, "bye@example.com", "imap", "0.02");
  order(ctx, "add_identity", identity);
  await waitFor("first sync", () => seenFor(ctx, identity, "IMAPfetcher").length >= 1);
  await ctx.store.identities.markDeleted(USER, identity.identity_id);
  order(ctx, "delete_identity", identity);
  await waitFor("poller removed", () => node.host.get("poller", identity.identity_id) === undefined);
  const syncs = seenFor(ctx, identity, "IMAPfetcher").length;
  assert.equal(
    seenFor(ctx, identity, "imap_worker", "remove_worker").map((s) => s.payload),
    [{ order: "remove_worker", remote_id: identity.identity_id, user_id: USER }],
  );
  await sleep(2_000);
  assert.is(seenFor(ctx, identity, "IMAPfetcher").length, syncs);
});

test("a twitter identity is synced on twitter_dm and its worker announced on twitter_worker", async (ctx) => {
  const identity = await remote(ctx, "@someone", "twitter", "0.02");
  order(ctx, "add_identity", identity);
  await waitFor("two DM syncs", () => seenFor(ctx, identity, "twitter_dm").length >= 2, 5_000);
  assert.equal(
    seenFor(ctx, identity, "twitter_worker").map((s) => s.payload),
    [{ order: "add_worker", remote_id: identity.identity_id, user_id: USER }],
  );
  assert.is(seenFor(ctx, identity, "IMAPfetcher").length, 0);
  order(ctx, "delete_identity", identity);
  await waitFor("remove_worker", () => seenFor(ctx, identity, "twitter_worker", "remove_worker").length === 1);
});

test("a local or inactive identity gets a sleeping poller: no worker, no sync", async (ctx) => {
  const [node] = ctx.nodes as [RunningNode];
  const identity = await remote(ctx, "sleepy@example.com", "imap", "0.02", "inactive");
  order(ctx, "add_identity", identity);
  await waitFor("dormant", async () => (await pollerState(node, identity)) === "dormant");
  const reason = (node.host.get("poller", identity.identity_id)?.inspect().context as { reason: string } | undefined)?.reason;
  assert.match(reason ?? "", /inactive/);
  await sleep(1_500);
  assert.equal(seenFor(ctx, identity), []);
  order(ctx, "delete_identity", identity);
});

test("a restarted node keeps the schedule: no tick skipped, none doubled", async (ctx) => {
  const identity = await remote(ctx, "restart@example.com", "imap", "0.05"); // 3 s
  order(ctx, "add_identity", identity);
  await waitFor("two syncs", () => seenFor(ctx, identity, "IMAPfetcher").length >= 2, 8_000);
  // Restart between two ticks.
  await sleep(300);
  await stopNode(ctx, ctx.nodes[0] as RunningNode);
  const restarted = await startNode(ctx, "n1-again");
  await waitFor("two more syncs", () => seenFor(ctx, identity, "IMAPfetcher").length >= 4, 12_000);
  assertOnGrid(
    seenFor(ctx, identity, "IMAPfetcher").map((s) => s.at),
    3_000,
    "syncs across the restart",
  );
  assert.is(seenFor(ctx, identity, "imap_worker").length, 1, "the worker is not announced again");
  assert.ok(restarted.host.get("poller", identity.identity_id), "the poller runs on the new node");
  order(ctx, "delete_identity", identity);
});

test("a handoff to another node keeps the schedule: no tick skipped, none doubled", async (ctx) => {
  const first = ctx.nodes[0] as RunningNode;
  const second = await startNode(ctx, "n2");
  const identities = await Promise.all(["h1", "h2", "h3", "h4"].map((name) => remote(ctx, `${name}@example.com`, "imap", "0.05")));
  for (const identity of identities) order(ctx, "add_identity", identity);
  await waitFor("two syncs each", () => identities.every((identity) => seenFor(ctx, identity, "IMAPfetcher").length >= 2), 10_000);
  await sleep(300);
  // The node that runs most of them leaves; its pollers move to the other.
  const onFirst = identities.filter((identity) => first.host.get("poller", identity.identity_id) !== undefined).length;
  const leaving = onFirst >= 2 ? first : second;
  const staying = leaving === first ? second : first;
  await stopNode(ctx, leaving);
  await waitFor("two more syncs each", () => identities.every((identity) => seenFor(ctx, identity, "IMAPfetcher").length >= 4), 12_000);
  for (const identity of identities) {
    assertOnGrid(
      seenFor(ctx, identity, "IMAPfetcher").map((s) => s.at),
      3_000,
      `${identity.identifier} across the handoff`,
    );
    assert.ok(staying.host.get("poller", identity.identity_id), `${identity.identifier} runs on the remaining node`);
    order(ctx, "delete_identity", identity);
  }
});

test("a poll schedule (cron) sets the ticks, across a handoff and a restart: none skipped, none doubled", async (ctx) => {
  // Every 3 s on the wall clock; the 15-minute interval would give one sync at most.
  const identity = await remote(ctx, "cron@example.com", "imap", "15", "active", "*/3 * * * * *");
  const syncTimes = () => seenFor(ctx, identity, "IMAPfetcher").map((s) => s.at);
  const onSchedule = (what: string) => {
    const times = syncTimes();
    for (const at of times) assert.ok(at % 3_000 < 1_000, `${what}: a sync at ${new Date(at).toISOString()}, not just after a multiple of 3 s`);
    assertOnGrid(times, 3_000, what);
  };
  while (ctx.nodes.length < 2) await startNode(ctx, `cron-${ctx.nodes.length}`);
  order(ctx, "add_identity", identity);
  await waitFor("two scheduled syncs", () => syncTimes().length >= 2, 10_000);
  onSchedule("syncs");
  const owner = ctx.nodes.find((node) => node.host.get("poller", identity.identity_id) !== undefined) as RunningNode;
  const context = owner.host.get("poller", identity.identity_id)?.inspect().context as PollerContext | undefined;
  assert.is(context?.poll_schedule, "*/3 * * * * *", "the poller shows its schedule");
  // Handoff: the node running it leaves between two ticks.
  await sleep(300);
  await stopNode(ctx, owner);
  await waitFor("two more syncs after the handoff", () => syncTimes().length >= 4, 12_000);
  onSchedule("syncs across the handoff");
  // Restart: the only node left stops, a new one starts.
  for (const node of [...ctx.nodes]) await stopNode(ctx, node);
  const stoppedAt = syncTimes().length;
  await startNode(ctx, "cron-restarted");
  await waitFor("three more syncs after the restart", () => syncTimes().length >= stoppedAt + 3, 15_000);
  // Ticks missed while no node ran are made up once (the first sync after, at once), not in a burst; then
  // the schedule again.
  const after = syncTimes().slice(stoppedAt);
  for (const at of after.slice(1)) assert.ok(at % 3_000 < 1_000, `after the restart: a sync at ${new Date(at).toISOString()}, off the schedule`);
  assertOnGrid(after.slice(1), 3_000, "syncs after the restart");
  const first = after[0] as number;
  assert.ok(after.filter((at) => at - first < 2_000).length <= 2, `no burst of missed ticks: ${after.map((at) => at - first).join(", ")} ms`);
  assert.is(seenFor(ctx, identity, "imap_worker", "add_worker").length, 1, "the worker is announced once");
  order(ctx, "delete_identity", identity);
});

test("a starting node gives a poller to identities whose orders it never saw", async (ctx) => {
  for (const node of [...ctx.nodes]) await stopNode(ctx, node);
  await sleep(1_000);
  const identity = await remote(ctx, "rebuilt@example.com", "imap", "0.02");
  const node = await startNode(ctx, "n3");
  await waitFor("syncs without any order", () => seenFor(ctx, identity, "IMAPfetcher").length >= 2, 6_000);
  assert.ok(node.host.get("poller", identity.identity_id));
  assert.is(seenFor(ctx, identity, "imap_worker", "add_worker").length, 1);
});

test("a node starting the cluster alone checks the pollers unless one was checked in the last minutes", async (ctx) => {
  for (const node of [...ctx.nodes]) await stopNode(ctx, node);
  const config = { ...ctx.config, pollerCheckEveryMs: DEFAULT_POLLER_CHECK_EVERY_MS };
  const tasks = await new Kvm(ctx.client).open("caliopen_cluster_tasks");
  const claim = (at: number) => tasks.put("poller-check", encodeJson({ node: "earlier", at }));
  const lone = async (id: string) => {
    const node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: id, shards: 8 });
    ctx.nodes.push(node);
    return node;
  };

  // Checked a minute ago (nodes starting together): this one does not check again.
  await claim(Date.now() - 60_000);
  const skipped = await remote(ctx, "recent-check@example.com", "imap", "0.02");
  const first = await lone("n-lone-1");
  await sleep(1_500);
  assert.is(first.host.get("poller", skipped.identity_id), undefined, "no check within the cluster start window");
  await stopNode(ctx, first);

  // Checked an hour ago, well within the 6 h period: a cluster start checks anyway.
  await claim(Date.now() - 60 * 60_000);
  const second = await lone("n-lone-2");
  await waitFor("the identity's poller given at the cluster's start", () => second.host.get("poller", skipped.identity_id) !== undefined, 6_000);
  order(ctx, "delete_identity", skipped);
});

test.run();
