// Where a contact actor gives up, on a real node whose contact family retries quickly: an order that
// keeps failing is tried a bounded number of times then kept as a dead letter of its subject; an order
// that cannot pass (the contact is not the user's) is dead-lettered at once; an order beyond the queue's
// bound is dead-lettered. The key servers are real HTTP servers (one that holds its lookups, and a port
// where nothing listens: a key server that is down).

import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { type ContactActorContext, contactFamily } from "../../../actors/contacts/contact-actor.ts";
import { DestinationPolicy } from "../../../actors/network/destination-policy.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { encodeJson } from "../../../runtime/json.ts";
import { SecretBox } from "../../../runtime/secret-box.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { freePort } from "../../../scripts/local-servers/free-port.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import { contactRoutes } from "../../../supervisors/contact-routes.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import type { ServiceFactory } from "../../../supervisors/services.ts";
import { type HeldKeyServer, startHeldKeyServer } from "../../helpers/held-key-server.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode } from "../../helpers/test-node.ts";
import { newContact, newPublicKey } from "../store/fixture.ts";

interface Context {
  nats: TestNats;
  discovery: HeldKeyServer;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  userId: string;
  ownContact: string;
}

interface Inspected {
  state: unknown;
  deadlines: Record<string, string>;
  context: ContactActorContext;
}

const MAX_TRIES = 3;
const MAX_QUEUED = 2;

const test = suite<Context>("contact actors: limits");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.discovery = await startHeldKeyServer();
  const downKeyServer = `http://127.0.0.1:${await freePort()}`;
  const secrets = new SecretBox(randomBytes(32));
  const services: ServiceFactory = async (deps) => {
    const store = await openStore({ nc: deps.nc, subjects: deps.subjects, secrets });
    const keys = { discovery: { hkp: ctx.discovery.url, wkd: false, dns: null, timeoutMs: 60_000 }, publishing: { hkp: downKeyServer, wkd: null } };
    return {
      families: [
        contactFamily(
          { store, keys, destinations: new DestinationPolicy() },
          { retry: { initialMs: 50, maxMs: 200, factor: 2, jitter: 0 }, maxTries: MAX_TRIES, maxQueued: MAX_QUEUED },
        ),
      ],
      bindings: (context) => contactRoutes(context, store),
    };
  };
  ctx.node = await startTestNode(ctx.nats.endpoint, services, { nodeId: "contact-limits-node" });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets });
  const created = await createUser(ctx.store, { name: "alice", email: "alice@platform.test" });
  ctx.userId = created.user.user_id;
  ctx.ownContact = created.user.contact_id;
});

test.after(async (ctx) => {
  ctx.discovery.release();
  await ctx.node.shutdown("test over");
  await ctx.client.close();
  await ctx.discovery.stop();
  await ctx.nats.stop();
});

const send = (ctx: Context, subject: string, order: Record<string, unknown>) => ctx.client.publish(subject, encodeJson(order));
const inspect = (ctx: Context, contactId: string) => ctx.node.host.get("contact", contactId)?.inspect() as Inspected | undefined;
const queued = (actor: Inspected | undefined) => actor?.context.queue.map((order) => order.order) ?? [];

/** The dead letters recorded after `before` of them, once there are `count` more. */
async function newDeadLetters(ctx: Context, before: number, count: number) {
  return waitFor(
    `${count} more dead letter(s)`,
    async () => {
      const all = await ctx.node.deadLetters.list(1_000);
      return all.length >= before + count ? all.slice(before) : null;
    },
    10_000,
  );
}

test("a publication that keeps failing is tried a bounded number of times, then kept as a dead letter of keyAction", async (ctx) => {
  const key = await ctx.store.keys.add(newPublicKey(ctx.userId, ctx.ownContact));
  const before = (await ctx.node.deadLetters.list(1_000)).length;
  send(ctx, "keyAction", { order: "publish_key", key_id: key.key_id, resource_id: ctx.ownContact, user_id: ctx.userId });
  const [letter] = await newDeadLetters(ctx, before, 1);
  assert.is(letter?.subject, "keyAction");
  assert.match(
    letter?.reason ?? "",
    new RegExp(`^publish_key failed ${MAX_TRIES} times: publish_key: uploading ${key.key_id} to http://127\\.0\\.0\\.1:\\d+ failed`),
  );
  assert.equal(letter?.payload, { order: "publish_key", key_id: key.key_id, resource_id: ctx.ownContact, user_id: ctx.userId });
  const actor = await waitFor("the actor idle", () => {
    const inspected = inspect(ctx, ctx.ownContact);
    return inspected?.state === "idle" ? inspected : null;
  });
  assert.equal(queued(actor), []);
  assert.is(actor.context.history[0]?.outcome, "dead-lettered");
  assert.match(actor.context.last_error?.message ?? "", /^publish_key failed: /);
  // No retry left pending; only its end once idle.
  assert.equal(Object.keys(actor.deadlines), ["finish.due"]);
});

test("an update that cannot pass is not tried again: sent to the actor's own subject for a user who does not own the contact", async (ctx) => {
  const contactId = (await ctx.store.contacts.create(newContact(ctx.userId, ["bob@example.test"]))).contact_id;
  send(ctx, "contactAction", { order: "contact_update", contact_id: contactId, user_id: ctx.userId });
  await waitFor("the actor started and idle", () => inspect(ctx, contactId)?.state === "idle" && inspect(ctx, contactId)?.context.history.length === 1);
  const before = (await ctx.node.deadLetters.list(1_000)).length;
  // Its own subject skips the router's admission: the actor still runs the order for the user it names.
  send(ctx, `caliopen.actor.contact.${contactId}`, {
    type: "contact_update",
    payload: { order: "contact_update", contact_id: contactId, user_id: "someone-else" },
  });
  const [letter] = await newDeadLetters(ctx, before, 1);
  assert.is(letter?.subject, "contactAction");
  assert.is(letter?.reason, `contact_update failed: contact_update: user someone-else has no contact ${contactId}`);
  const actor = inspect(ctx, contactId);
  assert.is(actor?.context.history[0]?.outcome, "dead-lettered");
  assert.is(actor?.context.failures, 0);
});

test("an order beyond the queue's bound is kept as a dead letter; those queued still run", async (ctx) => {
  const contactId = (await ctx.store.contacts.create(newContact(ctx.userId, ["carol@example.test"]))).contact_id;
  ctx.discovery.hold();
  const lookups = ctx.discovery.received;
  send(ctx, "keyAction", { order: "discover_key", contact_id: contactId, user_id: ctx.userId });
  await waitFor("the discovery held", () => ctx.discovery.received > lookups);
  send(ctx, "contactAction", { order: "contact_update", contact_id: contactId, user_id: ctx.userId });
  await waitFor("the queue full", () => queued(inspect(ctx, contactId)).length === MAX_QUEUED);
  const before = (await ctx.node.deadLetters.list(1_000)).length;
  send(ctx, "keyAction", { order: "delete_key", key_id: "ABCDEF0123456789", resource_id: contactId, user_id: ctx.userId });
  const [letter] = await newDeadLetters(ctx, before, 1);
  assert.is(letter?.reason, `delete_key refused: contact ${contactId} already has ${MAX_QUEUED} orders waiting; send it again later`);
  assert.equal(queued(inspect(ctx, contactId)), ["discover_key", "contact_update"]);

  ctx.discovery.release();
  await waitFor("the queued orders done", () => inspect(ctx, contactId)?.state === "idle");
  assert.equal(
    inspect(ctx, contactId)?.context.history.map((order) => `${order.order}:${order.outcome}`),
    ["contact_update:done", "discover_key:done"],
  );
});

test.run();
