// Hostile input against a real node running the Caliopen services: ids that are huge, wildcards,
// dots, NUL, lone surrogates; orders nested 10,000 deep, over the size limit, over the server's
// max_payload; reply subjects near the server's control-line limit — on every request subject, the
// published subjects, actor subjects, the node inbox and the debug subjects. Every request gets an
// error naming the field or the limit (a request with an unusable reply subject gets nothing), every
// published one becomes a dead letter, and all along the node keeps its NATS connection and its actors.

import { createInbox, type NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import type { Identity } from "../../actors/store/model.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { CONTRACT, isPublishOnly, type OrderSpec } from "../../contract/contract-table.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

interface Context {
  nats: TestNats;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  userId: string;
  imap: Identity;
  /** Status events of the node's own NATS connection, all through the test. */
  events: string[];
}

const test = suite<Context>("hostile input");
const NODE = "hostile-node";
const encoder = new TextEncoder();

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  const config = testCaliopenConfig({ api: null, imap: { push: false } });
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: NODE });
  ctx.events = [];
  void (async () => {
    for await (const status of ctx.node.nc.status()) ctx.events.push(status.type);
  })();
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  ctx.userId = (await createUser(ctx.store, { name: "victim" })).user.user_id;
  // A live actor to aim at (its IMAP server does not exist: it backs off, and keeps running).
  ctx.imap = await ctx.store.identities.create({
    user_id: ctx.userId,
    type: "remote",
    protocol: "imap",
    identifier: "victim@remote.test",
    infos: { inserver: "127.0.0.1:1", poll_interval: "15" },
  });
  ctx.client.publish("identitiesWorker", encodeJson({ order: "add_identity", identity_id: ctx.imap.identity_id, user_id: ctx.userId }));
  await waitFor(
    "the identity's poller and worker",
    () => ctx.node.host.get("poller", ctx.imap.identity_id) && ctx.node.host.get("imap", ctx.imap.identity_id),
    8_000,
  );
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.nats.stop();
});

/** Ids an attacker may try, as JSON text of the field's value, and what the error must name. */
const HOSTILE_IDS: { what: string; json: string; names: "field" | "size" }[] = [
  { what: "a 200 KB id", json: JSON.stringify("x".repeat(200_000)), names: "size" },
  { what: "a 1,000-character id", json: JSON.stringify("x".repeat(1_000)), names: "field" },
  { what: "*", json: '"*"', names: "field" },
  { what: ">", json: '">"', names: "field" },
  { what: "a.b", json: '"a.b"', names: "field" },
  { what: "a NUL", json: '"a\\u0000b"', names: "field" },
  { what: "a lone surrogate", json: '"\\ud800"', names: "field" },
  { what: "spaces", json: '"a b"', names: "field" },
  { what: "=", json: '"=abc"', names: "field" },
  { what: "non-ASCII", json: '"idé"', names: "field" },
];

/** A contract order as JSON text, with one field's value given as raw JSON text; `marker` comes first. */
function orderText(order: string, spec: OrderSpec, field: string, valueJson: string, marker: string): Uint8Array {
  const parts = [`"marker":${JSON.stringify(marker)}`, `"order":${JSON.stringify(order)}`];
  for (const [name, fieldSpec] of Object.entries(spec.payload)) {
    const valid = fieldSpec.enum?.[0] ?? (fieldSpec.type === "decimal" ? "15" : `${name}-1`);
    parts.push(`${JSON.stringify(name)}:${name === field ? valueJson : JSON.stringify(valid)}`);
  }
  return encoder.encode(`{${parts.join(",")}}`);
}

async function ask(ctx: Context, subject: string, data: Uint8Array): Promise<{ error: boolean; message: string }> {
  const decoded = decodeJson((await ctx.client.request(subject, data, { timeout: 5_000 })).data);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value as { error: boolean; message: string };
}

async function deadLetterReason(ctx: Context, marker: string): Promise<string> {
  const letter = await waitFor(
    `dead letter ${marker}`,
    async () => (await ctx.node.deadLetters.list(3_000)).find((l) => JSON.stringify(l.payload).includes(marker)),
    10_000,
    50,
  );
  return letter.reason;
}

const SIZE_ERROR = /over the limit of 65536 bytes/;

function assertNames(message: string, field: string, names: "field" | "size", what: string): void {
  assert.match(message, names === "size" ? SIZE_ERROR : new RegExp(`field "${field}"`), `${what} in ${field}: ${message.slice(0, 120)}`);
}

const requestRows = CONTRACT.filter((row) => !isPublishOnly(row));

test("hostile ids on every request subject get an error naming the field or the limit", async (ctx) => {
  assert.equal(
    requestRows.map((row) => row.subject),
    ["outboundIMAP", "twitter_dm", "outboundSMTP", "inboundSMTP", "inboundTwitter"],
  );
  for (const row of requestRows) {
    for (const [order, spec] of Object.entries(row.orders) as [string, OrderSpec][]) {
      if (spec.mode !== "request") continue;
      for (const field of Object.keys(spec.payload)) {
        for (const hostile of HOSTILE_IDS) {
          const reply = await ask(ctx, row.subject, orderText(order, spec, field, hostile.json, `req-${row.subject}-${field}`));
          assert.is(reply.error, true, `${row.subject} ${order} with ${hostile.what} in ${field}`);
          assertNames(reply.message, field, hostile.names, hostile.what);
        }
      }
    }
  }
});

test("hostile ids in published orders are dead-lettered with the field or the limit", async (ctx) => {
  const published = CONTRACT.flatMap((row) =>
    (Object.entries(row.orders) as [string, OrderSpec][])
      .filter(([, spec]) => spec.mode === "publish")
      .map(([order, spec]) => ({ subject: row.subject, order, spec })),
  );
  const sent: { marker: string; field: string; names: "field" | "size"; what: string }[] = [];
  for (const { subject, order, spec } of published) {
    const field = Object.keys(spec.payload)[0] as string;
    for (const hostile of HOSTILE_IDS) {
      const marker = `pub-${subject}-${order}-${sent.length}`;
      ctx.client.publish(subject, orderText(order, spec, field, hostile.json, marker));
      sent.push({ marker, field, names: hostile.names, what: `${subject} ${order}: ${hostile.what}` });
    }
  }
  // The contract's other bounded fields.
  const interval = CONTRACT[0].orders.update_interval;
  ctx.client.publish("identitiesWorker", orderText("update_interval", interval, "protocol", '"gopher"', "pub-enum"));
  ctx.client.publish("identitiesWorker", orderText("update_interval", interval, "poll_intervall", JSON.stringify("1".repeat(100)), "pub-interval"));
  for (const { marker, field, names, what } of sent) assertNames(await deadLetterReason(ctx, marker), field, names, what);
  assert.match(await deadLetterReason(ctx, "pub-enum"), /field "protocol" must be one of "imap", "email", "twitter"/);
  assert.match(await deadLetterReason(ctx, "pub-interval"), /field "poll_intervall" is 100 characters long, over the limit of 16/);
});

test("orders over the size limit, nested 10,000 deep, or with raw NUL bytes are refused naming the limit; 8 MB is refused by the client library", async (ctx) => {
  const deep = `{"order":"deliver","message_id":"m","remote_id":"r","user_id":"u","x":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
  const big = encodeJson({ order: "deliver", message_id: "m", remote_id: "r", user_id: "u", pad: "x".repeat(100_000) });
  const nul = encoder.encode('{"order":"deliver","message_id":"a\u0000b","remote_id":"r","user_id":"u"}');
  for (const row of requestRows) {
    assert.match((await ask(ctx, row.subject, encoder.encode(deep))).message, /nested deeper than the limit of 32 levels/, row.subject);
    assert.match((await ask(ctx, row.subject, big)).message, SIZE_ERROR, row.subject);
    assert.match((await ask(ctx, row.subject, nul)).message, /invalid JSON/, row.subject);
  }
  ctx.client.publish("contactAction", encoder.encode(`{"marker":"deep-pub","x":${"[".repeat(10_000)}${"]".repeat(10_000)}}`));
  assert.match(await deadLetterReason(ctx, "deep-pub"), /nested deeper than the limit of 32 levels/);

  const huge = new Uint8Array(8 * 1024 * 1024);
  let refused = "";
  try {
    await ctx.client.request("outboundSMTP", huge, { timeout: 2_000 });
  } catch (err) {
    refused = (err as Error).message;
  }
  assert.match(refused, /max_payload|MAX_PAYLOAD|payload/i, "the client library refuses more than the server's max_payload");
  assert.throws(() => ctx.client.publish("contactAction", huge));
  assert.is(
    (await ask(ctx, "outboundSMTP", encodeJson({ order: "deliver", message_id: "m", remote_id: "r", user_id: "u" }))).error,
    true,
    "the node still answers",
  );
});

test("a reply subject near the server's control-line limit gets no reply: request subjects, actor subject, node inbox, debug subjects", async (ctx) => {
  const watcher = await ctx.nats.connect();
  const rejectedBefore = await rejectedCount(ctx);
  const got: string[] = [];
  const inbox = `caliopen.node.${NODE}.forward`;
  const followUps: Record<string, unknown> = {
    "caliopen.debug.nodes": {},
    "caliopen.debug.actors": {},
    [`caliopen.actor.imap.${ctx.imap.identity_id}`]: { type: "nope" },
    [inbox]: { kind: "imap", key: ctx.imap.identity_id, message: { type: "nope", payload: {} } },
  };
  for (const row of requestRows) followUps[row.subject] = { order: "deliver" };
  for (const [subject, followUp] of Object.entries(followUps)) {
    const body = encodeJson({ order: "deliver", message_id: "m", remote_id: "r", user_id: "u" });
    // As long as the requester's own `PUB <subject> <reply> <size>` line allows (4,070-4,085 bytes).
    const reply = `_INBOX.${"r".repeat(4_096 - subject.length - String(body.length).length - 2 - "_INBOX.".length - 1)}`;
    watcher.subscribe(reply, { callback: () => void got.push(subject) });
    await watcher.flush();
    watcher.publish(subject, body, { reply });
    // Messages on one subscription are handled in order: once this is answered, the one above was handled.
    const answered = decodeJson((await watcher.request(subject, encodeJson(followUp), { timeout: 5_000 })).data);
    assert.ok(answered.ok, `${subject} still answers`);
  }
  assert.is((await rejectedCount(ctx)) - rejectedBefore >= requestRows.length * 2, true, "the entry points dropped the requests and refused the follow-ups");
  await watcher.flush();
  assert.equal(got, []);
  await watcher.close();
});

async function rejectedCount(ctx: Context): Promise<number> {
  const nodes = decodeJson((await ctx.client.request("caliopen.debug.nodes", encodeJson({}), { timeout: 2_000 })).data);
  const entryPoints = ((nodes.ok ? nodes.value : {}) as { entryPoints?: { rejected: number }[] }).entryPoints ?? [];
  return entryPoints.reduce((sum, entry) => sum + entry.rejected, 0);
}

test("actor subjects and the node inbox: hostile messages refused, a reply subject inside a forwarded message never used", async (ctx) => {
  const actor = `caliopen.actor.imap.${ctx.imap.identity_id}`;
  const deliver = (field: string, valueJson: string) =>
    encoder.encode(
      `{"type":"deliver","payload":{"order":"deliver","message_id":${field === "message_id" ? valueJson : '"m-1"'},"remote_id":${field === "remote_id" ? valueJson : JSON.stringify(ctx.imap.identity_id)},"user_id":${JSON.stringify(ctx.userId)}}}`,
    );
  for (const hostile of HOSTILE_IDS) {
    for (const field of ["message_id", "remote_id"]) {
      const reply = await ask(ctx, actor, deliver(field, hostile.json));
      assert.is(reply.error, true);
      assertNames(reply.message, field, hostile.names, `${hostile.what} on the actor subject`);
    }
  }
  assert.match(
    (await ask(ctx, actor, encoder.encode(`{"type":"deliver","payload":${"[".repeat(10_000)}${"]".repeat(10_000)}}`))).message,
    /nested deeper than the limit of 32 levels/,
  );
  assert.match((await ask(ctx, actor, encodeJson({ type: "x".repeat(100_000) }))).message, SIZE_ERROR);
  assert.match((await ask(ctx, actor, encodeJson({ type: "x".repeat(60_000) }))).message, /imap actors do not take "x{64}…" from the bus/);

  const inbox = `caliopen.node.${NODE}.forward`;
  // A deliver is answered on its reply subject: without the checks, the node would publish to the subject given.
  const forwarded = (extra: Record<string, unknown>) =>
    encodeJson({
      kind: "imap",
      key: ctx.imap.identity_id,
      message: { type: "deliver", payload: { order: "deliver", message_id: "m-1", remote_id: ctx.imap.identity_id, user_id: ctx.userId } },
      ...extra,
    });
  const inboxError = async (data: Uint8Array) =>
    String((decodeJson((await ctx.client.request(inbox, data, { timeout: 3_000 })).data) as { value: { error?: unknown } }).value.error);
  // In the payload, a reply subject has no control-line limit of its own: publishing there would get the node disconnected.
  assert.match(await inboxError(forwarded({ replyTo: `_INBOX.${"r".repeat(10_000)}` })), /reply subject is unusable/);
  assert.match(await inboxError(forwarded({ replyTo: "a.*" })), /reply subject is unusable/);
  assert.match(await inboxError(forwarded({ key: "k".repeat(200_000) })), /over the limit of 73728 bytes/);
  assert.match(await inboxError(forwarded({ key: "k".repeat(1_000) })), /at most 128 characters/);
  assert.match(await inboxError(forwarded({ key: "\ud800" })), /well-formed/);
  assert.match(await inboxError(encoder.encode(`{"kind":"imap","x":${"[".repeat(10_000)}${"]".repeat(10_000)}}`)), /nested deeper than the limit of 34 levels/);
  // A well-formed envelope whose message is not: the actor answers the requester with the field.
  const replyTo = createInbox();
  const replies = ctx.client.subscribe(replyTo, { max: 1 });
  await ctx.client.flush();
  await ctx.client.request(
    inbox,
    forwarded({
      message: { type: "deliver", payload: { order: "deliver", message_id: "a.>", remote_id: ctx.imap.identity_id, user_id: ctx.userId } },
      replyTo,
    }),
    { timeout: 3_000 },
  );
  for await (const msg of replies)
    assert.match(String((decodeJson(msg.data) as { value: { message: string } }).value.message), /field "message_id" must be 1-64 characters/);
});

test("debug subjects: hostile queries refused naming the field or limit", async (ctx) => {
  const debug = (subject: string, data: Uint8Array) => ask(ctx, subject, data);
  assert.match((await debug("caliopen.debug.actors", encodeJson({ limit: "all" }))).message, /"limit" must be a number/);
  assert.match((await debug("caliopen.debug.actors", encodeJson({ kind: "k".repeat(100_000) }))).message, SIZE_ERROR);
  assert.match((await debug("caliopen.debug.actors", encodeJson({ kind: "k".repeat(1_000) }))).message, /"kind" must be a string of at most 128/);
  assert.match(
    (await debug("caliopen.debug.actors", encoder.encode(`{"kind":${"[".repeat(10_000)}${"]".repeat(10_000)}}`))).message,
    /nested deeper than the limit of 32 levels/,
  );
  const page = (await debug("caliopen.debug.actors", encodeJson({ limit: 1e300, offset: 1e300 }))) as unknown as { limit: number; actors: unknown[] };
  assert.equal([page.limit, page.actors.length], [1_000, 0]);
  assert.match((await debug(`caliopen.debug.actor.imap.${"k".repeat(3_900)}`, encodeJson({}))).message, /a key of at most 128 characters/);
});

test("an order for an identity that does not exist gets an error", async (ctx) => {
  for (const subject of ["outboundIMAP", "twitter_dm"]) {
    const reply = await ask(ctx, subject, encodeJson({ order: "deliver", message_id: "m-1", remote_id: "no-such-identity", user_id: ctx.userId }));
    assert.equal(reply, { error: true, message: `deliver refused: user ${ctx.userId} has no identity no-such-identity` });
  }
  const sync = await ask(ctx, "twitter_dm", encodeJson({ order: "sync", remote_id: "no-such-identity", user_id: ctx.userId }));
  assert.equal(sync, { error: true, message: `sync refused: user ${ctx.userId} has no identity no-such-identity` });
  assert.is(ctx.node.host.get("twitter", "no-such-identity"), undefined);
});

test("through all of it the node kept its NATS connection, never fenced itself, and its actors kept running", async (ctx) => {
  assert.equal(
    ctx.events.filter((event) => event === "disconnect" || event === "reconnect" || event === "reconnecting"),
    [],
  );
  const nodes = (await ask(ctx, "caliopen.debug.nodes", encodeJson({}))) as unknown as {
    node: string;
    cluster: { healthy: boolean; ownedShards: number; shards: number };
  };
  assert.is(nodes.node, NODE);
  assert.is(nodes.cluster.healthy, true);
  assert.is(nodes.cluster.ownedShards, nodes.cluster.shards);
  for (const kind of ["poller", "imap"]) assert.is(ctx.node.host.get(kind, ctx.imap.identity_id)?.status, "running", kind);
  // Real orders still work.
  ctx.client.publish(
    "identitiesWorker",
    encodeJson({ order: "update_interval", identity_id: ctx.imap.identity_id, user_id: ctx.userId, poll_intervall: "30", protocol: "imap" }),
  );
  await waitFor(
    "update_interval applied",
    () => (ctx.node.host.get("poller", ctx.imap.identity_id)?.inspect().context as { poll_interval?: string } | undefined)?.poll_interval === "30",
    8_000,
  );
});

test.run();
