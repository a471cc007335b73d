// One test per row of the contract: a node subscribes the subject in the right queue group, a valid
// payload passes validation, and every kind of invalid input is rejected with an error naming the
// problem (a reply for a request, a dead letter for a published order).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { NatsConnection } from "@nats-io/transport-node";
import { CONTRACT, type OrderSpec } from "../../actors/contract/contract-table.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import type { PayloadSchema } from "../../runtime/payload-schema.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode } from "../helpers/test-node.ts";
import { waitFor } from "../helpers/wait.ts";

interface Context {
  nats: TestNats;
  node: RunningNode;
  client: NatsConnection;
}

const test = suite<Context>("contract table");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.node = await startTestNode(ctx.nats.url, caliopenServices(), { nodeId: "contract-node" });
  ctx.client = await ctx.nats.connect();
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.nats.stop();
});

function validPayload(order: string, schema: PayloadSchema): Record<string, unknown> {
  const payload: Record<string, unknown> = { order, extra_field_is_accepted: true };
  for (const [field, spec] of Object.entries(schema)) payload[field] = spec.type === "decimal" ? "15" : spec.type === "number" ? 1 : `${field}-1`;
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

for (const row of CONTRACT) {
  const orders = Object.entries(row.orders) as [string, OrderSpec][];

  test(`${row.subject}: subscribed in queue group ${row.queue}, orders ${orders.map(([o]) => o).join(", ")} validated`, async ({ nats, client }) => {
    const subscriptions = await nats.subscriptions();
    const mine = subscriptions.filter((sub) => sub.subject === row.subject && sub.connection.includes("contract-node"));
    assert.equal(mine.map((sub) => sub.queue), [row.queue], `${row.subject} subscribed once, in queue ${row.queue}`);

    const invalidJson = await ask(client, row.subject, new TextEncoder().encode("{not json"));
    assert.ok(invalidJson.error && /invalid JSON/.test(invalidJson.message), invalidJson.message);
    const notObject = await ask(client, row.subject, encodeJson([1, 2]));
    assert.ok(notObject.error && /JSON object/.test(notObject.message), notObject.message);
    const noOrder = await ask(client, row.subject, { user_id: "u" });
    assert.ok(noOrder.error && /"order"/.test(noOrder.message), noOrder.message);
    const unknown = await ask(client, row.subject, { order: "launch_missiles", user_id: "u" });
    assert.ok(unknown.error && /unknown order "launch_missiles"/.test(unknown.message), unknown.message);

    for (const [order, spec] of orders) {
      const valid = validPayload(order, spec.payload);
      const accepted = await ask(client, row.subject, valid);
      assert.not.match(accepted.message, /invalid|missing|must be/, `${row.subject} ${order}: a valid payload passes validation (${accepted.message})`);
      for (const [field, fieldSpec] of Object.entries(spec.payload)) {
        if (!fieldSpec.required) continue;
        const { [field]: _dropped, ...missing } = valid;
        const missingReply = await ask(client, row.subject, missing);
        assert.ok(missingReply.error, `${order} without ${field} is refused`);
        assert.match(missingReply.message, new RegExp(`missing required field "${field}"`));
        const mistyped = await ask(client, row.subject, { ...valid, [field]: 42 });
        assert.ok(mistyped.error, `${order} with a number for ${field} is refused`);
        assert.match(mistyped.message, new RegExp(`field "${field}"`));
      }
    }
  });
}

test("valid orders for services not built yet get an error reply saying so (never a timeout)", async ({ client }) => {
  const reply = await ask(client, "outboundSMTP", { order: "deliver", message_id: "m", remote_id: "r", user_id: "u" });
  assert.is(reply.error, true);
  assert.match(reply.message, /smtp-bridge .* not available yet/);
  const inbound = await ask(client, "inboundSMTP", { order: "process_inbound", message_id: "m", remote_id: "r", user_id: "u" });
  assert.match(inbound.message, /mq-worker \(InboundEmail\) is not available yet/);
});

test("the imap and twitter worker supervisors refuse add_worker instead of starting a pretend actor", async ({ client, node }) => {
  for (const subject of ["imap_worker", "twitter_worker"]) {
    const reply = await ask(client, subject, { order: "add_worker", remote_id: "r-1", user_id: "u-1" });
    assert.is(reply.error, true);
    assert.match(reply.message, /worker actors are not implemented yet/);
  }
  assert.is(node.host.count(), 0);
});

test("published orders that are malformed or unknown are dead-lettered, logged and counted", async ({ client, node }) => {
  client.publish("contactAction", encodeJson({ order: "contact_update", user_id: "u" }));
  client.publish("keyAction", encodeJson({ order: "rotate_everything", user_id: "u" }));
  client.publish("identitiesWorker", new TextEncoder().encode("garbage"));
  client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: "r", user_id: "u" }));
  const letters = await waitFor("four dead letters", async () => {
    const list = await node.deadLetters.list(50);
    return list.filter((l) => ["contactAction", "keyAction", "identitiesWorker", "IMAPfetcher"].includes(l.subject)).length >= 4 ? list : null;
  });
  const reasons = (subject: string) => letters.filter((l) => l.subject === subject).map((l) => l.reason).join(" | ");
  assert.match(reasons("contactAction"), /missing required field "contact_id"/);
  assert.match(reasons("keyAction"), /unknown order "rotate_everything"/);
  assert.match(reasons("identitiesWorker"), /invalid JSON/);
  assert.match(reasons("IMAPfetcher"), /not available yet/);
  const counts = node.deadLetters.countsBySubject();
  assert.ok((counts.contactAction ?? 0) >= 1 && (counts.keyAction ?? 0) >= 1 && (counts.identitiesWorker ?? 0) >= 1);
});

test.run();
