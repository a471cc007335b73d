// Internal events stay internal, on a real node running the Caliopen services: an IMAP worker in the
// middle of a sync, and its identity's poller between two ticks, are sent forged internal events —
// `sync.done` with a made-up cursor (which would skip unread mail), `retry.due`, `poll.due` — on every
// path from the bus to an actor: the actor's own subject, the node's inboxes for requests and for keyed
// orders.
// Nothing changes; the same actors still take their real orders.
import { createServer, type Server, type Socket } from "node:net";
import { createInbox, type NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import type { Identity } from "../../actors/store/model.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig, testDestinations } from "../helpers/test-node.ts";

interface Context {
  nats: TestNats;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  /** An IMAP server that greets and then never answers: a sync stays `connecting`. */
  imap: Server;
  sockets: Set<Socket>;
  identity: Identity;
  syncs: Record<string, unknown>[];
}

const test = suite<Context>("internal events");
const NODE = "forge-node";
const SHARDS = 8;

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.sockets = new Set();
  ctx.imap = createServer((socket) => {
    ctx.sockets.add(socket);
    socket.on("error", () => undefined);
    socket.on("close", () => ctx.sockets.delete(socket));
    socket.write("* OK IMAP4rev1 ready\r\n");
  });
  await new Promise<void>((resolve) => ctx.imap.listen(0, "127.0.0.1", resolve));
  const port = (ctx.imap.address() as { port: number }).port;
  // The slow server is admitted: the worker must reach it and stay in the middle of a sync.
  const config = testCaliopenConfig({ api: null, imap: { push: false }, destinations: testDestinations([`127.0.0.1:${port}`]) });
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: NODE, shards: SHARDS });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  const user = (await createUser(ctx.store, { name: "alice", email: "alice@platform.test" })).user;
  ctx.identity = await ctx.store.identities.create({
    user_id: user.user_id,
    type: "remote",
    protocol: "imap",
    identifier: "alice@slow.test",
    infos: { inserver: `127.0.0.1:${port}`, outserver: "127.0.0.1:1", poll_interval: "15" },
    credentials: { username: "alice", password: "pw" },
  });
  ctx.syncs = [];
  ctx.client.subscribe("IMAPfetcher", {
    callback: (_err, msg) => {
      const decoded = decodeJson(msg.data);
      if (decoded.ok) ctx.syncs.push(decoded.value as Record<string, unknown>);
    },
  });
  await ctx.client.flush();
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  for (const socket of ctx.sockets) socket.destroy();
  await new Promise<void>((resolve) => ctx.imap.close(() => resolve()));
  await ctx.nats.stop();
});

const key = (ctx: Context) => ctx.identity.identity_id;
const worker = (ctx: Context) => ctx.node.host.get("imap", key(ctx));
const poller = (ctx: Context) => ctx.node.host.get("poller", key(ctx));
const syncState = (ctx: Context) => (worker(ctx)?.summary().state as { working?: { sync?: unknown } } | undefined)?.working?.sync;

async function request(ctx: Context, subject: string, body: unknown): Promise<Record<string, unknown>> {
  const decoded = decodeJson((await ctx.client.request(subject, encodeJson(body), { timeout: 3_000 })).data);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value as Record<string, unknown>;
}

/** Dead letters about `marker` (each forged message carries one). */
async function lettersFor(ctx: Context, marker: string, count: number): Promise<string[]> {
  const letters = await waitFor(
    `${count} dead letter(s) for ${marker}`,
    async () => {
      const found = (await ctx.node.deadLetters.list(500)).filter((letter) => JSON.stringify(letter.payload).includes(marker));
      return found.length >= count ? found : null;
    },
    8_000,
    50,
  );
  return letters.map((letter) => letter.reason);
}

/**
 * Sends `type` with `payload` to the actor kind/key by every path from the bus: its subject (published,
 * and as a request), the node's inbox (with and without a reply inbox), and its inbox for keyed orders.
 * Returns the error replies; waits until the published ones were dead-lettered.
 */
async function forge(ctx: Context, kind: string, type: string, payload: Record<string, unknown>): Promise<string[]> {
  const marker = `forged-${type}-${Math.random().toString(36).slice(2)}`;
  const message = { type, payload: { ...payload, marker } };
  const errors: string[] = [];
  const actorSubject = `caliopen.actor.${kind}.${key(ctx)}`;

  ctx.client.publish(actorSubject, encodeJson(message));
  const direct = await request(ctx, actorSubject, message);
  assert.is(direct.error, true, `${type} as a request on ${actorSubject}`);
  errors.push(String(direct.message));

  const inbox = `caliopen.node.${NODE}.forward`;
  const published = await request(ctx, inbox, { kind, key: key(ctx), message });
  assert.equal(published, { accepted: true }, "the envelope is well-formed: the actor itself refuses it");
  const replyTo = createInbox();
  const replies = ctx.client.subscribe(replyTo, { max: 1 });
  await ctx.client.flush();
  await request(ctx, inbox, { kind, key: key(ctx), message, replyTo });
  for await (const msg of replies) {
    const forwarded = decodeJson(msg.data);
    assert.ok(forwarded.ok && (forwarded.value as { error?: unknown }).error === true, `${type} through the node inbox with a reply subject`);
    errors.push(String((forwarded.value as { message?: unknown }).message));
  }

  // Handed over as a keyed order (as a node hands a published order to its owner): done, by dead-lettering it.
  const applied = await request(ctx, `caliopen.node.${NODE}.apply`, { id: `forged-${marker}`, op: "tell", kind, key: key(ctx), message });
  assert.equal(applied, { outcome: "done" });

  // Published on the actor's subject, through the inbox without a reply, and as a keyed order.
  const reasons = await lettersFor(ctx, marker, 3);
  for (const reason of reasons) assert.match(reason, new RegExp(`do not take "${type.replace(".", "\\.")}" from the bus`));
  return errors;
}

test("an IMAP worker in the middle of a sync and its poller between ticks", async (ctx) => {
  ctx.client.publish("identitiesWorker", encodeJson({ order: "add_identity", identity_id: key(ctx), user_id: ctx.identity.user_id }));
  await waitFor("the poller's first sync", () => ctx.syncs.some((sync) => sync.remote_id === key(ctx)), 8_000);
  await waitFor("the worker syncing (stuck connecting)", () => JSON.stringify(syncState(ctx)) === JSON.stringify({ syncing: "connecting" }), 8_000);
  await waitFor("the poller waiting for its next tick", () => poller(ctx)?.summary().state === "polling", 8_000);
});

test("a forged sync.done with a made-up cursor changes nothing, by any path", async (ctx) => {
  const before = worker(ctx)?.inspect().context as { folders: unknown; history: unknown[]; last_sync: unknown };
  const forgedCursor = { uidvalidity: "1", lastseenuid: 999_999, failed_uids: [] };
  const errors = await forge(ctx, "imap", "sync.done", { outcome: { cursor: forgedCursor, total: 0, done: 0, failed: 0 } });
  for (const error of errors)
    assert.match(error, /imap actors do not take "sync\.done" from the bus \(they take: sync, fullfetch, store_flags, move_to_trash, deliver\)/);
  const after = worker(ctx)?.inspect().context as typeof before;
  assert.equal(after.folders, before.folders, "no cursor moved");
  assert.equal([after.history, after.last_sync], [before.history, before.last_sync]);
  assert.equal(syncState(ctx), { syncing: "connecting" }, "still syncing: the forged end of the run was not taken");
});

test("forged deadlines (retry.due, poll.due) change nothing, by any path", async (ctx) => {
  const imapBefore = worker(ctx)?.inspect().context;
  const pollerBefore = poller(ctx)?.inspect().context as { polls: number; deadlines: Record<string, number> };
  const syncsBefore = ctx.syncs.filter((sync) => sync.remote_id === key(ctx)).length;
  for (const error of await forge(ctx, "imap", "retry.due", { at: Date.now() })) assert.match(error, /do not take "retry\.due"/);
  for (const error of await forge(ctx, "poller", "poll.due", { at: Date.now() })) assert.match(error, /poller actors do not take "poll\.due" from the bus/);
  for (const error of await forge(ctx, "poller", "retry.due", { at: Date.now() })) assert.match(error, /do not take "retry\.due"/);
  assert.equal(worker(ctx)?.inspect().context, imapBefore);
  const pollerAfter = poller(ctx)?.inspect().context as typeof pollerBefore;
  assert.equal([pollerAfter.polls, pollerAfter.deadlines], [pollerBefore.polls, pollerBefore.deadlines], "no tick taken, the next one where it was");
  assert.is(poller(ctx)?.summary().state, "polling");
  assert.is(ctx.syncs.filter((sync) => sync.remote_id === key(ctx)).length, syncsBefore, "no sync emitted");
});

test("real orders still reach the same actors, by the contract and on the actor's subject", async (ctx) => {
  const order = { remote_id: key(ctx), user_id: ctx.identity.user_id };
  ctx.client.publish("IMAPfetcher", encodeJson({ order: "fullfetch", ...order }));
  await waitFor(
    "fullfetch coalesced into the running sync",
    () => (worker(ctx)?.inspect().context as { requested: unknown } | undefined)?.requested === "fullfetch",
  );
  // An order sent straight to the actor's subject is checked against its contract schema.
  const invalid = await request(ctx, `caliopen.actor.imap.${key(ctx)}`, { type: "sync", payload: { order: "sync", remote_id: "*", user_id: order.user_id } });
  assert.equal(invalid.error, true);
  assert.match(String(invalid.message), /invalid sync for a imap actor: field "remote_id" must be 1-64 characters of A-Z a-z 0-9 _ -/);
  ctx.client.publish(
    "identitiesWorker",
    encodeJson({ order: "update_interval", identity_id: key(ctx), user_id: order.user_id, poll_intervall: "30", protocol: "imap" }),
  );
  await waitFor("the new interval applied", () => (poller(ctx)?.inspect().context as { poll_interval: unknown } | undefined)?.poll_interval === "30", 8_000);
  assert.equal(syncState(ctx), { syncing: "connecting" });
});

test("forged keyed orders naming a key or an input too large are refused with a reason, the node keeping its connection", async (ctx) => {
  const events: string[] = [];
  void (async () => {
    for await (const status of ctx.node.nc.status()) events.push(status.type);
  })();
  const apply = `caliopen.node.${NODE}.apply`;
  const longKey = await request(ctx, apply, { id: "long-key-1", op: "tell", kind: "imap", key: "k".repeat(4_000), message: { type: "sync", payload: {} } });
  assert.match(String(longKey.error), /an actor key is at most 128 characters/);
  // An actor's input ends up in store keys: a forged start with a huge one is refused too.
  const hugeInput = await request(ctx, apply, { id: "huge-input-1", op: "start", kind: "imap", key: key(ctx), input: { user_id: "u".repeat(60_000) } });
  assert.match(String(hugeInput.error), /"input" must be an object of at most 16 strings \(at most 128 characters\)/);
  const unreadable = await request(ctx, apply, "not an order");
  assert.match(String(unreadable.error), /a keyed order must be a JSON object/);
  assert.equal(worker(ctx)?.inspect().context !== undefined, true, "the worker still runs");
  // The node still answers over the same connection.
  const nodes = await request(ctx, "caliopen.debug.nodes", {});
  assert.is((nodes.cluster as { healthy: boolean }).healthy, true);
  assert.equal(
    events.filter((event) => event === "disconnect" || event === "reconnect"),
    [],
  );
});

test.run();
