// One test per row of the contract: a node consumes the subject in the right queue group (a core queue
// subscription for subjects with requests; for publish-only subjects, a durable consumer of the intake
// stream named after the queue group), a valid payload passes validation, and every kind of invalid
// input is rejected with an error naming the problem (a reply for a request, a dead letter for a
// published order).

import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { CONTRACT, isPublishOnly, type OrderSpec, type SubjectSpec } from "../../contract/contract-table.ts";
import { DurableIntake } from "../../runtime/durable-intake.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import type { PayloadSchema } from "../../runtime/payload-schema.ts";
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
}

const test = suite<Context>("contract table");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  const config = testCaliopenConfig({ api: null });
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: "contract-node" });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.nats.stop();
});

function validPayload(order: string, schema: PayloadSchema): Record<string, unknown> {
  const payload: Record<string, unknown> = { order, extra_field_is_accepted: true };
  for (const [field, spec] of Object.entries(schema))
    payload[field] = spec.enum?.[0] ?? (spec.type === "decimal" ? "15" : spec.type === "number" ? 1 : `${field}-1`);
  return payload;
}

async function ask(client: NatsConnection, subject: string, body: Uint8Array | Record<string, unknown>): Promise<{ error: boolean; message: string }> {
  const data = body instanceof Uint8Array ? body : encodeJson(body);
  const msg = await client.request(subject, data, { timeout: 3000 });
  const decoded = decodeJson(msg.data);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value as { error: boolean; message: string };
}

test("every subject of the contract is in the table with its queue group", () => {
  assert.equal(
    CONTRACT.map((row) => `${row.subject}/${row.queue}`),
    [
      "identitiesWorker/IDsworker",
      "imap_worker/IMAPworkers",
      "IMAPfetcher/IMAPworkers",
      "outboundIMAP/IMAPworkers",
      "twitter_worker/twitterworkers",
      "twitter_dm/twitterworkers",
      "outboundSMTP/SMTPqueue",
      "inboundSMTP/SMTPqueue",
      "inboundTwitter/Twitterqueue",
      "contactAction/contactQueue",
      "keyAction/keyQueue",
    ],
  );
});

/** The reason a published probe was refused for, read from the dead letters. */
async function deadLetterReason(node: RunningNode, probe: string, withinMs = 5_000): Promise<string> {
  const letter = await waitFor(
    `dead letter of ${probe}`,
    async () => {
      const letters = await node.deadLetters.list(2_000);
      return letters.find((l) => JSON.stringify(l.payload).includes(probe));
    },
    withinMs,
    50,
  );
  return letter.reason;
}

/**
 * Sends one probe the way the row's subject is used, and returns the error message it got. A published
 * order that a service takes leaves no dead letter: `mayBeTaken` then reads silence as acceptance.
 */
type Probe = (body: Uint8Array | Record<string, unknown>, marker: string, mayBeTaken?: boolean) => Promise<{ error: boolean; message: string }>;

function prober(ctx: Context, row: SubjectSpec): Probe {
  if (!isPublishOnly(row)) return (body) => ask(ctx.client, row.subject, body);
  return async (body, marker, mayBeTaken = false) => {
    ctx.client.publish(row.subject, body instanceof Uint8Array ? body : encodeJson(body));
    if (!mayBeTaken) return { error: true, message: await deadLetterReason(ctx.node, marker) };
    const reason = await deadLetterReason(ctx.node, marker, 1_500).catch(() => null);
    return reason === null ? { error: false, message: "taken (no dead letter)" } : { error: true, message: reason };
  };
}

for (const row of CONTRACT) {
  const orders = Object.entries(row.orders) as [string, OrderSpec][];
  const durable = isPublishOnly(row);
  const how = durable ? `a durable consumer ${row.queue}_${row.subject}` : `queue group ${row.queue}`;

  test(`${row.subject}: consumed through ${how}, orders ${orders.map(([o]) => o).join(", ")} validated`, async (ctx) => {
    const { nats, client } = ctx;
    const subscriptions = await nats.subscriptions();
    const mine = subscriptions.filter((sub) => sub.subject === row.subject && sub.connection.includes("contract-node"));
    if (durable) {
      assert.equal(mine, [], `${row.subject} is not taken from core NATS (the intake stream captures it)`);
      const jsm = await jetstreamManager(client);
      const consumer = await jsm.consumers.info(DurableIntake.streamName(ctx.node.subjects), `${row.queue}_${row.subject}`);
      assert.is(consumer.config.filter_subject, row.subject);
    } else {
      assert.equal(
        mine.map((sub) => sub.queue),
        [row.queue],
        `${row.subject} subscribed once, in queue ${row.queue}`,
      );
    }
    const probe = prober(ctx, row);
    const mark = () => `probe-${randomUUID()}`;

    let marker = mark();
    const invalidJson = await probe(new TextEncoder().encode(`{not json ${marker}`), marker);
    assert.ok(invalidJson.error && /invalid JSON/.test(invalidJson.message), invalidJson.message);
    marker = mark();
    const notObject = await probe(encodeJson([marker]), marker);
    assert.ok(notObject.error && /JSON object/.test(notObject.message), notObject.message);
    marker = mark();
    const noOrder = await probe({ user_id: "u", marker }, marker);
    assert.ok(noOrder.error && /"order"/.test(noOrder.message), noOrder.message);
    marker = mark();
    const unknown = await probe({ order: "launch_missiles", user_id: "u", marker }, marker);
    assert.ok(unknown.error && /unknown order "launch_missiles"/.test(unknown.message), unknown.message);

    for (const [order, spec] of orders) {
      marker = mark();
      const valid = validPayload(order, spec.payload);
      const accepted = await probe({ ...valid, marker }, marker, true);
      assert.not.match(accepted.message, /invalid|missing|must be/, `${row.subject} ${order}: a valid payload passes validation (${accepted.message})`);
      for (const [field, fieldSpec] of Object.entries(spec.payload)) {
        if (!fieldSpec.required) continue;
        const { [field]: _dropped, ...missing } = valid;
        marker = mark();
        const missingReply = await probe({ ...missing, marker }, marker);
        assert.ok(missingReply.error, `${order} without ${field} is refused`);
        assert.match(missingReply.message, new RegExp(`missing required field "${field}"`));
        marker = mark();
        const mistyped = await probe({ ...valid, [field]: 42, marker }, marker);
        assert.ok(mistyped.error, `${order} with a number for ${field} is refused`);
        assert.match(mistyped.message, new RegExp(`field "${field}"`));
      }
    }
  });
}

test("services that run answer orders about unknown objects with an error reply naming them", async ({ client }) => {
  const deliver = await ask(client, "outboundSMTP", { order: "deliver", message_id: "no-such-draft", remote_id: "r", user_id: "u" });
  assert.is(deliver.error, true);
  assert.match(deliver.message, /no-such-draft/);
  const inbound = await ask(client, "inboundSMTP", { order: "process_inbound", message_id: "no-such-raw", remote_id: "r", user_id: "u" });
  assert.is(inbound.error, true);
  assert.match(inbound.message, /unknown user u|no-such-raw/);
});

test("add_worker starts the bridges' worker actors for an account of theirs; remove_worker removes them", async ({ client, node, store }) => {
  const user = (await createUser(store, { name: "workers" })).user;
  for (const [subject, kind, protocol] of [
    ["imap_worker", "imap", "imap"],
    ["twitter_worker", "twitter", "twitter"],
  ] as const) {
    const identity = await store.identities.create({
      user_id: user.user_id,
      type: "remote",
      protocol,
      identifier: `${kind}@workers.test`,
      infos: { inserver: "127.0.0.1:1" },
    });
    const order = { remote_id: identity.identity_id, user_id: user.user_id };
    client.publish(subject, encodeJson({ order: "add_worker", ...order }));
    await waitFor(`${kind} worker started`, () => node.host.get(kind, identity.identity_id) !== undefined);
    client.publish(subject, encodeJson({ order: "remove_worker", ...order }));
    await waitFor(`${kind} worker removed`, () => node.host.get(kind, identity.identity_id) === undefined);
  }
});

test("orders for an identity that does not exist, or is not of the worker's protocol, are refused before any actor starts", async ({ client, node, store }) => {
  const user = (await createUser(store, { name: "nobody" })).user;
  const twitter = await store.identities.create({ user_id: user.user_id, type: "remote", protocol: "twitter", identifier: "@nobody" });
  const dm = await ask(client, "twitter_dm", { order: "sync", remote_id: "no-such-identity", user_id: user.user_id });
  assert.equal(dm, { error: true, message: `sync refused: user ${user.user_id} has no identity no-such-identity` });
  const deliver = await ask(client, "outboundIMAP", { order: "deliver", message_id: "m-1", remote_id: twitter.identity_id, user_id: user.user_id });
  assert.equal(deliver, {
    error: true,
    message: `deliver refused: identity ${twitter.identity_id} is a twitter identity; outboundIMAP serves imap/email identities`,
  });
  const someoneElse = await ask(client, "twitter_dm", { order: "sync", remote_id: twitter.identity_id, user_id: "another-user" });
  assert.match(someoneElse.message, /user another-user has no identity/);
  client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: "made-up-1", user_id: user.user_id }));
  client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: "made-up-2", user_id: user.user_id }));
  client.publish("identitiesWorker", encodeJson({ order: "add_identity", identity_id: "made-up-3", user_id: user.user_id }));
  for (const id of ["made-up-1", "made-up-2", "made-up-3"])
    assert.match(await deadLetterReason(node, id), new RegExp(`refused: user ${user.user_id} has no identity ${id}`));
  assert.equal(
    ["imap", "poller"].flatMap((kind) => ["made-up-1", "made-up-2", "made-up-3"].filter((id) => node.host.get(kind, id) !== undefined)),
    [],
  );

  // A deleted identity: no new work, but the orders that clean up after it still go through.
  const gone = await store.identities.create({
    user_id: user.user_id,
    type: "remote",
    protocol: "imap",
    identifier: "gone@workers.test",
    infos: { inserver: "127.0.0.1:1" },
  });
  await store.identities.markDeleted(user.user_id, gone.identity_id);
  client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: gone.identity_id, user_id: user.user_id, marker: "sync-of-deleted" }));
  assert.match(await deadLetterReason(node, "sync-of-deleted"), /sync refused: identity .* was deleted/);
  client.publish("imap_worker", encodeJson({ order: "remove_worker", remote_id: gone.identity_id, user_id: user.user_id, marker: "remove-deleted" }));
  client.publish("identitiesWorker", encodeJson({ order: "delete_identity", identity_id: gone.identity_id, user_id: user.user_id, marker: "delete-deleted" }));
  for (const marker of ["remove-deleted", "delete-deleted"])
    assert.is(await deadLetterReason(node, marker, 1_500).catch(() => null), null, `${marker} is taken`);
});

test("a request on a publish-only subject is answered by the intake stream: the order is stored", async ({ client, node }) => {
  const msg = await client.request("contactAction", encodeJson({ order: "contact_update", contact_id: "c", user_id: "u", marker: "stored-1" }), {
    timeout: 3000,
  });
  const decoded = decodeJson(msg.data);
  assert.ok(decoded.ok);
  assert.is((decoded.value as { stream: string }).stream, "caliopen_intake");
  // Then handled like any published order (here: refused, since there is no such contact).
  assert.match(await deadLetterReason(node, "stored-1"), /has no contact c/);
});

test("published orders that are malformed or unknown are dead-lettered and counted per subject", async ({ client, node }) => {
  const before = node.deadLetters.countsBySubject();
  client.publish("contactAction", encodeJson({ order: "contact_update", user_id: "u", marker: "count-1" }));
  client.publish("keyAction", encodeJson({ order: "rotate_everything", user_id: "u", marker: "count-2" }));
  client.publish("identitiesWorker", encodeJson({ order: "add_identity", identity_id: 42, user_id: "u", marker: "count-3" }));
  assert.match(await deadLetterReason(node, "count-1"), /missing required field "contact_id"/);
  assert.match(await deadLetterReason(node, "count-2"), /unknown order "rotate_everything"/);
  assert.match(await deadLetterReason(node, "count-3"), /field "identity_id" must be a string/);
  const after = node.deadLetters.countsBySubject();
  for (const subject of ["contactAction", "keyAction", "identitiesWorker"]) assert.is(after[subject], (before[subject] ?? 0) + 1, subject);
});

test.run();
