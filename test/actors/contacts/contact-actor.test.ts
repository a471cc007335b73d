// A contact's orders (contact_update, discover_key, publish_key, delete_key) run in its `contact` actor,
// on a real node with the Caliopen services: one at a time per contact, a key server that is down is
// waited for (the next try a deadline operators see), and an order for a contact that does not exist
// starts no actor. Orders are published on NATS as a peer would; the key servers are real HTTP
// servers (SKS for publishing, one that holds its lookups for discovery).

import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import type { ContactActorContext } from "../../../actors/contacts/contact-actor.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { freePort } from "../../../scripts/local-servers/free-port.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import type { CaliopenConfig } from "../../../supervisors/caliopen-config.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { callApi } from "../../helpers/api-client.ts";
import { startCli } from "../../helpers/cli-process.ts";
import { Gpg } from "../../helpers/gpg.ts";
import { type HeldKeyServer, startHeldKeyServer } from "../../helpers/held-key-server.ts";
import { startTestKeyServer, type TestKeyServer } from "../../helpers/hkp-server.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../../helpers/test-node.ts";
import { newContact } from "../store/fixture.ts";

interface Context {
  nats: TestNats;
  discovery: HeldKeyServer;
  /** The publishing key server's port: nothing listens there until a test starts SKS on it. */
  publishingPort: number;
  publishing: TestKeyServer | null;
  gpg: Gpg;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  apiUrl: string;
  token: string;
  userId: string;
  ownContact: string;
  config: CaliopenConfig;
}

interface Inspected {
  state: unknown;
  deadlines: Record<string, string>;
  context: ContactActorContext;
}

const test = suite<Context>("contact actors");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.discovery = await startHeldKeyServer();
  ctx.publishingPort = await freePort();
  ctx.publishing = null;
  ctx.gpg = await Gpg.open();
  const config = testCaliopenConfig({
    keys: {
      // Long enough that a held lookup is still running whatever the test does meanwhile.
      discovery: { hkp: ctx.discovery.url, wkd: false, dns: null, timeoutMs: 60_000 },
      publishing: { hkp: `http://127.0.0.1:${ctx.publishingPort}`, wkd: null },
    },
  });
  ctx.config = config;
  let apiUrl = "";
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config, { onApiStarted: (url) => (apiUrl = url) }), { nodeId: "contacts-node" });
  ctx.apiUrl = apiUrl;
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  const created = await createUser(ctx.store, { name: "alice", email: "alice@platform.test" });
  ctx.token = created.token;
  ctx.userId = created.user.user_id;
  ctx.ownContact = created.user.contact_id;
});

test.after(async (ctx) => {
  ctx.discovery.release();
  await ctx.node.shutdown("test over");
  await ctx.client.close();
  await ctx.discovery.stop();
  await ctx.publishing?.stop();
  await ctx.gpg.close();
  await ctx.nats.stop();
});

const send = (ctx: Context, subject: "contactAction" | "keyAction", order: Record<string, unknown>) => ctx.client.publish(subject, encodeJson(order));
const inspect = (ctx: Context, contactId: string) => ctx.node.host.get("contact", contactId)?.inspect() as Inspected | undefined;
const queued = (actor: Inspected | undefined) => actor?.context.queue.map((order) => order.order) ?? [];
const finished = (actor: Inspected | undefined) => actor?.context.history.map((order) => `${order.order}:${order.outcome}`) ?? [];

async function newStoredContact(ctx: Context, email: string): Promise<string> {
  return (await ctx.store.contacts.create(newContact(ctx.userId, [email]))).contact_id;
}

test("contact_update and discover_key reach the contact's actor, which operators see", async (ctx) => {
  ctx.discovery.release();
  const contactId = await newStoredContact(ctx, "carol@example.test");
  send(ctx, "contactAction", { order: "contact_update", contact_id: contactId, user_id: ctx.userId });
  const updated = await waitFor("the contact_update done by the actor", () => {
    const actor = inspect(ctx, contactId);
    return actor?.state === "idle" && finished(actor).includes("contact_update:done") ? actor : null;
  });
  assert.is(updated.context.contact_id, contactId);
  assert.ok((await ctx.store.contacts.get(ctx.userId, contactId))?.derived !== null, "derived data saved");

  send(ctx, "keyAction", { order: "discover_key", contact_id: contactId, user_id: ctx.userId });
  await waitFor("discover_key done by the same actor", () => finished(inspect(ctx, contactId))[0] === "discover_key:done");
  assert.ok((await ctx.store.contacts.get(ctx.userId, contactId))?.key_discovery !== null, "discovery's report saved");

  // What `caliopen inspect contact <id>` and `caliopen actors --kind contact` ask.
  const one = decodeJson((await ctx.client.request(`caliopen.debug.actor.contact.${contactId}`, encodeJson({}), { timeout: 2_000 })).data);
  assert.ok(one.ok && (one.value as { found: boolean }).found, JSON.stringify(one));
  const listed = decodeJson((await ctx.client.request("caliopen.debug.actors", encodeJson({ kind: "contact" }), { timeout: 2_000 })).data);
  const actors = listed.ok ? ((listed.value as { actors: { kind: string; key: string; state: unknown }[] }).actors ?? []) : [];
  assert.ok(
    actors.some((actor) => actor.kind === "contact" && actor.key === contactId && actor.state === "idle"),
    JSON.stringify(listed),
  );
});

test("one contact's orders run one at a time: an update arriving during a discovery runs after it, duplicates folded", async (ctx) => {
  const contactId = await newStoredContact(ctx, "dave@example.test");
  const other = await newStoredContact(ctx, "erin@example.test");
  // The key server holds discovery's lookup: discover_key keeps running until the test lets it answer.
  ctx.discovery.hold();
  const lookupsBefore = ctx.discovery.received;
  send(ctx, "keyAction", { order: "discover_key", contact_id: contactId, user_id: ctx.userId });
  await waitFor("discovery's lookup held by the key server", () => ctx.discovery.received > lookupsBefore);
  const running = inspect(ctx, contactId);
  assert.is(running?.state, "working");
  assert.equal(queued(running), ["discover_key"]);

  const update = { order: "contact_update", contact_id: contactId, user_id: ctx.userId };
  send(ctx, "contactAction", update);
  await waitFor("the update queued behind the discovery", () => queued(inspect(ctx, contactId)).length === 2);
  // Orders of two subjects may arrive in either order: the second discovery is sent once the update waits.
  send(ctx, "contactAction", update);
  send(ctx, "keyAction", { order: "discover_key", contact_id: contactId, user_id: ctx.userId });
  send(ctx, "contactAction", update);
  await waitFor("the second discovery queued", () => queued(inspect(ctx, contactId)).length === 3);
  // Sent after the others: once it is done, they have reached the node too.
  send(ctx, "contactAction", { order: "contact_update", contact_id: other, user_id: ctx.userId });
  await waitFor("the other contact's update", async () => (await ctx.store.contacts.get(ctx.userId, other))?.derived !== null);
  assert.equal(queued(inspect(ctx, contactId)), ["discover_key", "contact_update", "discover_key"], "the contact_updates waiting are one");
  assert.is((await ctx.store.contacts.get(ctx.userId, contactId))?.derived, null, "the update has not run while the discovery runs");
  assert.is(inspect(ctx, contactId)?.state, "working", "while another contact's update was done");

  ctx.discovery.release();
  const done = await waitFor(
    "the queue worked off",
    () => {
      const actor = inspect(ctx, contactId);
      return actor?.state === "idle" ? actor : null;
    },
    10_000,
  );
  assert.equal([...finished(done)].reverse(), ["discover_key:done", "contact_update:done", "discover_key:done"]);
  assert.ok((await ctx.store.contacts.get(ctx.userId, contactId))?.derived !== null, "the update ran after the discovery");
});

test("publish_key waits for a key server that is down, its next try a deadline, and succeeds when the server is back", async (ctx) => {
  const fingerprint = await ctx.gpg.generate("Alice <alice@platform.test>");
  const added = await callApi(ctx.apiUrl, ctx.token, "POST", `/api/v2/contacts/${ctx.ownContact}/publickeys`, { key: await ctx.gpg.exportPublic(fingerprint) });
  assert.is(added.status, 201, JSON.stringify(added.body));

  const waiting = await waitFor(
    "the actor waiting to try again",
    () => {
      const actor = inspect(ctx, ctx.ownContact);
      return actor?.state === "waitingToRetry" ? actor : null;
    },
    10_000,
  );
  assert.equal(queued(waiting), ["publish_key"]);
  assert.match(waiting.context.retry?.error ?? "", new RegExp(`publish_key: uploading \\w+ to http://127.0.0.1:${ctx.publishingPort} failed`));
  assert.is(waiting.context.retry?.try, 1);
  const due = Date.parse(waiting.deadlines["retry.due"] ?? "");
  assert.ok(due > Date.parse(waiting.context.retry?.at ?? ""), `next try at ${waiting.deadlines["retry.due"]}`);
  // `caliopen actors` shows the same deadline.
  const listed = decodeJson((await ctx.client.request("caliopen.debug.actors", encodeJson({ kind: "contact" }), { timeout: 2_000 })).data);
  const summaries = listed.ok ? (listed.value as { actors: { key: string; state: unknown; deadlines: Record<string, string> }[] }).actors : [];
  const summary = summaries.find((actor) => actor.key === ctx.ownContact);
  assert.is(summary?.state, "waitingToRetry");
  assert.ok(summary?.deadlines["retry.due"] !== undefined, JSON.stringify(summary));
  const cli = await startCli(["actors", "--kind", "contact"], ctx.nats.env).exited;
  assert.is(cli.code, 0, cli.stderr);
  // The CLI cuts long keys: the contact id's first characters name it.
  assert.match(cli.stdout, new RegExp(`^contact\\s+${ctx.ownContact.slice(0, 20)}\\S*\\s+contacts-node\\s+running\\s+waitingToRetry\\b.*retry\\.due`, "m"));

  // An update for the same contact waits behind the key's publication.
  send(ctx, "contactAction", { order: "contact_update", contact_id: ctx.ownContact, user_id: ctx.userId });
  await waitFor("the update queued", () => queued(inspect(ctx, ctx.ownContact)).length === 2);

  ctx.publishing = await startTestKeyServer({ port: ctx.publishingPort });
  await waitFor("the key on the key server", async () => ((await ctx.publishing?.get("alice@platform.test")) ?? "").length > 0, 30_000);
  const done = await waitFor(
    "the actor idle again",
    () => {
      const actor = inspect(ctx, ctx.ownContact);
      return actor?.state === "idle" ? actor : null;
    },
    10_000,
  );
  assert.equal(finished(done).slice(0, 2), ["contact_update:done", "publish_key:done"]);
  assert.is(done.context.retry, null);
  // No retry left pending; only its end once idle.
  assert.equal(Object.keys(done.deadlines), ["finish.due"]);
});

test("an order naming a contact the user does not have starts no actor and becomes a dead letter", async (ctx) => {
  const before = (await ctx.node.deadLetters.list(1_000)).length;
  const stranger = await createUser(ctx.store, { name: "mallory", email: "mallory@platform.test" });
  send(ctx, "contactAction", { order: "contact_update", contact_id: "made-up-contact", user_id: ctx.userId });
  send(ctx, "keyAction", { order: "publish_key", key_id: "ABCDEF0123456789", resource_id: "made-up-owner", user_id: ctx.userId });
  // A real contact, of another user.
  send(ctx, "keyAction", { order: "discover_key", contact_id: stranger.user.contact_id, user_id: ctx.userId });
  // Not an id: refused at the entry point.
  send(ctx, "keyAction", { order: "discover_key", contact_id: "a.b", user_id: ctx.userId });
  const letters = await waitFor("four dead letters", async () => {
    const all = await ctx.node.deadLetters.list(1_000);
    return all.length >= before + 4 ? all.slice(before) : null;
  });
  const reasons = letters.map((letter) => letter.reason).join("\n");
  assert.match(reasons, `contact_update refused: user ${ctx.userId} has no contact made-up-contact`);
  assert.match(reasons, `publish_key refused: user ${ctx.userId} has no contact made-up-owner`);
  assert.match(reasons, `discover_key refused: user ${ctx.userId} has no contact ${stranger.user.contact_id}`);
  for (const key of ["made-up-contact", "made-up-owner", stranger.user.contact_id, "a.b"]) assert.is(ctx.node.host.get("contact", key), undefined, key);
});

test("an order running when its node stops runs again on the node that takes the contact over", async (ctx) => {
  const contactId = await newStoredContact(ctx, "frank@example.test");
  ctx.discovery.hold();
  const lookups = ctx.discovery.received;
  send(ctx, "keyAction", { order: "discover_key", contact_id: contactId, user_id: ctx.userId });
  await waitFor("the discovery held", () => ctx.discovery.received > lookups);

  const successor = await startTestNode(ctx.nats.endpoint, caliopenServices(ctx.config), { nodeId: "contacts-successor" });
  await ctx.node.shutdown("handing over");
  ctx.node = successor;
  // The snapshot saved while it ran brings the order back, and it is run again from the start.
  await waitFor("the discovery asked again by the successor", () => ctx.discovery.received > lookups + 1, 15_000);
  assert.equal(queued(inspect(ctx, contactId)), ["discover_key"]);
  ctx.discovery.release();
  const done = await waitFor(
    "the discovery done",
    () => {
      const actor = inspect(ctx, contactId);
      return actor?.state === "idle" ? actor : null;
    },
    10_000,
  );
  assert.equal(finished(done), ["discover_key:done"]);
  assert.ok((await ctx.store.contacts.get(ctx.userId, contactId))?.key_discovery !== null);
});

test.run();
