// Import batches (`import_batch`, actors/inbound/inbound-batch.ts) on a real node, nats-server and
// Dovecot: an IMAP sync of 70 messages reaches the user's inbound actor as a few batches, never as a
// `process_inbound` per mail, and stores each message once; a batch sent on the bus to the node's inbox
// is checked like any bus message (hostile payloads refused, each with its reason) and a bad raw in a
// batch is answered as an error while the others are imported; a batch sent again finds its messages;
// a batch the store refuses waits whole and is answered once the store takes writes again.
import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { createInbox, type NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { IMPORT_BATCH_EMAIL, MAX_BATCH_RAWS } from "../../../actors/inbound/inbound-batch.ts";
import { INBOUND_KIND } from "../../../actors/inbound/inbound-processor.ts";
import type { Identity, User } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { KeyedOrders } from "../../../runtime/cluster/keyed-orders.ts";
import { decodeJson, encodeJson, isJsonObject } from "../../../runtime/json.ts";
import type { Reply } from "../../../runtime/reply.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { dovecotIdentity, startTestDovecot, type TestDovecot } from "../../../scripts/local-servers/dovecot.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig, testDestinations } from "../../helpers/test-node.ts";

interface Context {
  nats: TestNats;
  dovecot: TestDovecot;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
}

const NODE_ID = "batch-node";
const test = suite<Context>("import batches");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.dovecot = await startTestDovecot();
  const config = testCaliopenConfig({ api: null, destinations: testDestinations([`${ctx.dovecot.server}+cleartext`]), imap: { push: false } });
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: NODE_ID });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
});

test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.dovecot.stop();
  await ctx.nats.stop();
});

async function newUser(ctx: Context): Promise<User> {
  return (await createUser(ctx.store, { name: `u-${randomUUID().slice(0, 8)}`, email: `u-${randomUUID().slice(0, 8)}@platform.test` })).user;
}

function remoteIdentity(ctx: Context, user: User, login: string): Promise<Identity> {
  return dovecotIdentity(ctx.store, user.user_id, ctx.dovecot, login);
}

/** The messages bucket with no room for one more: JetStream refuses every new message, nothing stored is touched. */
async function refuseNewMessages(ctx: Context): Promise<{ takeWritesAgain(): Promise<void> }> {
  const jsm = await jetstreamManager(ctx.client);
  const stream = "KV_caliopen_messages";
  const info = await jsm.streams.info(stream);
  await jsm.streams.update(stream, { ...info.config, max_bytes: Math.max(1, info.state.bytes) });
  let refusing = true;
  return {
    async takeWritesAgain() {
      if (!refusing) return;
      refusing = false;
      await jsm.streams.update(stream, { ...info.config, max_bytes: -1 });
    },
  };
}

function mail(tag: string, n: number): Buffer {
  return Buffer.from(
    [
      `From: Sender ${n} <sender${n}@elsewhere.test>`,
      "To: someone@remote.test",
      `Subject: ${tag} ${n}`,
      `Message-ID: <${tag}-${n}@elsewhere.test>`,
      "Date: Sat, 28 Nov 2026 10:00:00 +0000",
      "",
      `body ${n}`,
      "",
    ].join("\r\n"),
  );
}

/**
 * A batch as anyone on the bus could send it: to the node's inbox, with a reply subject of ours. The
 * answer is the inbox's refusal, or the actor's reply.
 */
async function sendBatch(ctx: Context, userId: string, payload: Record<string, unknown>): Promise<Reply> {
  const replyTo = createInbox();
  const replies = ctx.client.subscribe(replyTo, { max: 1 });
  const envelope = { kind: INBOUND_KIND, key: userId, message: { type: IMPORT_BATCH_EMAIL, payload }, replyTo, input: { user_id: userId } };
  const answer = decodeJson((await ctx.client.request(KeyedOrders.inboxSubject(new Subjects(""), NODE_ID), encodeJson(envelope), { timeout: 5_000 })).data);
  assert.ok(answer.ok && isJsonObject(answer.value));
  if (answer.value.accepted !== true) {
    replies.unsubscribe();
    return { error: true, message: String(answer.value.error) };
  }
  for await (const msg of replies) {
    const decoded = decodeJson(msg.data);
    assert.ok(decoded.ok && isJsonObject(decoded.value));
    return decoded.value as Reply;
  }
  throw new Error("no reply");
}

test(`a sync of 70 messages sends the inbound actor a few batches of at most ${MAX_BATCH_RAWS}, no process_inbound, and stores each message once`, async (ctx) => {
  const user = await newUser(ctx);
  const login = `batch-${randomUUID().slice(0, 8)}`;
  await ctx.dovecot.addUser(login, "secret");
  await ctx.dovecot.fillInbox(
    login,
    Array.from({ length: 70 }, (_, n) => mail(login, n)),
  );
  const identity = await remoteIdentity(ctx, user, login);
  // Every process_inbound any bridge asks for passes here (the entry point's queue group aside).
  let processInbound = 0;
  const watch = ctx.client.subscribe("inboundSMTP", { callback: () => void processInbound++ });
  try {
    ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: identity.identity_id, user_id: user.user_id }));
    ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: identity.identity_id, user_id: user.user_id }));
    const run = await waitFor(
      "the sync in the worker's history",
      () =>
        (ctx.node.host.get("imap", identity.identity_id)?.inspect().context as { history?: { total: number; done: number; failed: number }[] } | undefined)
          ?.history?.[0],
      30_000,
    );
    assert.equal([run.total, run.done, run.failed], [70, 70, 0]);
    const stored = await ctx.store.messages.list(user.user_id, { limit: 500 });
    assert.is(stored.items.length, 70);
    assert.is(new Set(stored.items.map((message) => message.external_references.message_id)).size, 70);
    assert.is(processInbound, 0, "no process_inbound on inboundSMTP");
    // Each order the actor took has a sequence number: a batch is one.
    const inbound = ctx.node.host.get(INBOUND_KIND, user.user_id)?.inspect().context as { next_seq: number; progress: { done: number } } | undefined;
    assert.ok(inbound, "the user's inbound actor ran");
    const orders = inbound.next_seq - 1;
    assert.ok(orders >= Math.ceil(70 / MAX_BATCH_RAWS) && orders <= 70 / 8, `${orders} batches for 70 messages`);
  } finally {
    watch.unsubscribe();
  }
});

test("a batch with a bad raw among good ones answers each in the order asked; the same batch again finds its messages", async (ctx) => {
  const user = await newUser(ctx);
  const identity = await remoteIdentity(ctx, user, `direct-${randomUUID().slice(0, 8)}`);
  const first = await ctx.store.raws.put(user.user_id, mail("direct", 1));
  const notMine = await ctx.store.raws.put((await newUser(ctx)).user_id, mail("direct", 2));
  const second = await ctx.store.raws.put(user.user_id, mail("direct", 3));
  const rawIds = [first.raw_msg_id, notMine.raw_msg_id, "no-such-raw", second.raw_msg_id];
  const payload = { user_id: user.user_id, remote_id: identity.identity_id, raw_ids: rawIds.join(",") };

  const reply = await sendBatch(ctx, user.user_id, payload);
  assert.is(reply.error, false, reply.message);
  const results = reply.results as Reply[];
  assert.equal(
    results.map((result) => result.error),
    [false, true, true, false],
  );
  assert.match(results[1]?.message ?? "", /belongs to another user/);
  assert.match(results[2]?.message ?? "", /unknown raw message/);
  assert.is((await ctx.store.messages.list(user.user_id, { limit: 10 })).items.length, 2);

  const again = await sendBatch(ctx, user.user_id, payload);
  const retried = again.results as Reply[];
  assert.equal(
    retried.map((result) => result.message_id),
    results.map((result) => result.message_id),
    "the same messages",
  );
  assert.ok(retried[0]?.message === "raw message already imported" && retried[3]?.message === "raw message already imported");
  assert.is((await ctx.store.messages.list(user.user_id, { limit: 10 })).items.length, 2);
  assert.ok((await ctx.store.raws.get(first.raw_msg_id))?.delivered, "the raw is marked delivered");
});

test("hostile batches are refused, each with its reason, and import nothing", async (ctx) => {
  const user = await newUser(ctx);
  const other = await newUser(ctx);
  const identity = await remoteIdentity(ctx, user, `hostile-${randomUUID().slice(0, 8)}`);
  const raw = await ctx.store.raws.put(user.user_id, mail("hostile", 1));
  const base = { user_id: user.user_id, remote_id: identity.identity_id };
  const tooMany = Array.from({ length: MAX_BATCH_RAWS + 1 }, (_, n) => `raw-${n}`).join(",");
  const cases: [string, Record<string, unknown>, RegExp, string?][] = [
    ["a subject token in an id", { ...base, raw_ids: `${raw.raw_msg_id},../x.>` }, /raw_ids/],
    ["more ids than a batch takes", { ...base, raw_ids: tooMany }, /raw_ids/],
    ["an id twice", { ...base, raw_ids: `${raw.raw_msg_id},${raw.raw_msg_id}` }, /twice/],
    ["no ids", { ...base, raw_ids: "" }, /raw_ids/],
    ["ids that are not a string", { ...base, raw_ids: [raw.raw_msg_id] }, /raw_ids/],
    ["an empty id", { ...base, raw_ids: `${raw.raw_msg_id},` }, /raw_ids/],
    ["no remote_id", { user_id: user.user_id, raw_ids: raw.raw_msg_id }, /remote_id/],
    ["another user's actor", { ...base, user_id: other.user_id, raw_ids: raw.raw_msg_id }, /not of user/],
  ];
  for (const [what, payload, reason] of cases) {
    const reply = await sendBatch(ctx, user.user_id, payload);
    assert.is(reply.error, true, `${what}: refused`);
    assert.match(reply.message, reason, `${what}: ${reply.message}`);
  }
  assert.is((await ctx.store.messages.list(user.user_id, { limit: 10 })).items.length, 0, "nothing imported");
  // The batch's ids, checked before any subject or key is made of them.
  const fine = await sendBatch(ctx, user.user_id, { ...base, raw_ids: raw.raw_msg_id });
  assert.is(fine.error, false, fine.message);
});

test("a batch the store refuses waits whole in the queue and is answered, each raw imported once, when it takes writes again", async (ctx) => {
  const user = await newUser(ctx);
  const identity = await remoteIdentity(ctx, user, `full-${randomUUID().slice(0, 8)}`);
  const raws = await Promise.all(Array.from({ length: 20 }, (_, n) => ctx.store.raws.put(user.user_id, mail(`full-${identity.identity_id}`, n))));
  const store = await refuseNewMessages(ctx);
  try {
    const reply = sendBatch(ctx, user.user_id, {
      user_id: user.user_id,
      remote_id: identity.identity_id,
      raw_ids: raws.map((raw) => raw.raw_msg_id).join(","),
    });
    const backingOff = await waitFor(
      "the actor backing off",
      () => {
        const cell = ctx.node.host.get(INBOUND_KIND, user.user_id);
        return cell !== undefined && JSON.stringify(cell.summary().state).includes("backingOff")
          ? (cell.inspect().context as { queue: { raw_ids?: string[] }[] })
          : null;
      },
      20_000,
    );
    assert.equal(backingOff.queue[0]?.raw_ids?.length, 20, "the whole batch waits first in the queue");
    await store.takeWritesAgain();
    const answered = await reply;
    assert.is(answered.error, false, answered.message);
    const results = answered.results as Reply[];
    assert.ok(
      results.every((result) => !result.error),
      JSON.stringify(results.filter((result) => result.error)),
    );
    assert.is(new Set(results.map((result) => result.message_id)).size, 20, "one message per raw");
    assert.is((await ctx.store.messages.list(user.user_id, { limit: 50 })).items.length, 20);
  } finally {
    await store.takeWritesAgain();
  }
});

test("a flood of batches for one user: 256 raws wait in its queue, the next batch is answered `busy, try again` at once; every queued one is imported", async (ctx) => {
  const user = await newUser(ctx);
  const identity = await remoteIdentity(ctx, user, `flood-${randomUUID().slice(0, 8)}`);
  const batches = 256 / MAX_BATCH_RAWS + 1;
  const raws = await Promise.all(
    Array.from({ length: batches * MAX_BATCH_RAWS }, (_, n) => ctx.store.raws.put(user.user_id, mail(`flood-${identity.identity_id}`, n))),
  );
  // Nothing leaves the queue while the batches come in.
  const store = await refuseNewMessages(ctx);
  try {
    const send = (batch: number) =>
      sendBatch(ctx, user.user_id, {
        user_id: user.user_id,
        remote_id: identity.identity_id,
        raw_ids: raws
          .slice(batch * MAX_BATCH_RAWS, (batch + 1) * MAX_BATCH_RAWS)
          .map((raw) => raw.raw_msg_id)
          .join(","),
      });
    const queued = Array.from({ length: batches - 1 }, (_, batch) => send(batch));
    await waitFor(
      "256 raws queued",
      () => {
        const context = ctx.node.host.get(INBOUND_KIND, user.user_id)?.inspect().context as
          | { queue: { raw_ids?: string[] }[]; running: { raw_ids?: string[] }[] }
          | undefined;
        const count = (orders: { raw_ids?: string[] }[] = []) => orders.reduce((sum, order) => sum + (order.raw_ids?.length ?? 1), 0);
        return context !== undefined && count(context.queue) + count(context.running) === 256;
      },
      20_000,
    );
    assert.equal(await send(batches - 1), { error: true, message: "busy, try again" });
    await store.takeWritesAgain();
    for (const answered of await Promise.all(queued)) {
      assert.is(answered.error, false, answered.message);
      assert.ok((answered.results as Reply[]).every((result) => !result.error));
    }
    assert.is((await ctx.store.messages.list(user.user_id, { limit: 500 })).items.length, 256);
  } finally {
    await store.takeWritesAgain();
  }
});

test.run();
