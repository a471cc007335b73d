// A contact's actor finishes once idle for a while (CONTACT finishAfterMs): removed from the node, its
// snapshot dropped, and the contact's next order starts a new one. Orders sent around the moment it
// finishes are never lost: each is run by the actor that follows. Real node, real NATS, orders
// published as a peer would.

import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { CONTACT_KIND, type ContactActorContext, contactFamily, FINISH_DUE } from "../../../actors/contacts/contact-actor.ts";
import { DestinationPolicy } from "../../../actors/network/destination-policy.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { encodeJson } from "../../../runtime/json.ts";
import { SecretBox } from "../../../runtime/secret-box.ts";
import { SnapshotStore } from "../../../runtime/snapshot-store.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import { contactRoutes } from "../../../supervisors/contact-routes.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import type { ServiceFactory } from "../../../supervisors/services.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode } from "../../helpers/test-node.ts";
import { newContact } from "../store/fixture.ts";

interface Context {
  nats: TestNats;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  snapshots: SnapshotStore;
  userId: string;
}

interface Inspected {
  state: unknown;
  deadlines: Record<string, string>;
  context: ContactActorContext;
}

const FINISH_AFTER_MS = 400;

const test = suite<Context>("contact actors: finishing when idle");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  const secrets = new SecretBox(randomBytes(32));
  const services: ServiceFactory = async (deps) => {
    const store = await openStore({ nc: deps.nc, subjects: deps.subjects, secrets });
    const keys = { discovery: { hkp: null, wkd: false, dns: null, timeoutMs: 5_000 }, publishing: { hkp: null, wkd: null } };
    return {
      families: [contactFamily({ store, keys, destinations: new DestinationPolicy() }, { finishAfterMs: FINISH_AFTER_MS })],
      bindings: (context) => contactRoutes(context, store),
    };
  };
  ctx.node = await startTestNode(ctx.nats.endpoint, services, { nodeId: "contact-finish-node" });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets });
  ctx.snapshots = await SnapshotStore.open(ctx.client, "caliopen_actor_snapshots");
  ctx.userId = (await createUser(ctx.store, { name: "alice", email: "alice@platform.test" })).user.user_id;
});

test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.client.close();
  await ctx.nats.stop();
});

const update = (ctx: Context, contactId: string) =>
  ctx.client.publish("contactAction", encodeJson({ order: "contact_update", contact_id: contactId, user_id: ctx.userId }));
const inspect = (ctx: Context, contactId: string) => ctx.node.host.get(CONTACT_KIND, contactId)?.inspect() as Inspected | undefined;
const newContactId = async (ctx: Context) =>
  (await ctx.store.contacts.create(newContact(ctx.userId, [`${randomBytes(4).toString("hex")}@example.test`]))).contact_id;

test("idle past its time, the actor finishes: gone from the node with its snapshot; the next order starts a new one", async (ctx) => {
  const contactId = await newContactId(ctx);
  update(ctx, contactId);
  const idle = await waitFor("the order run, the actor idle", () => {
    const actor = inspect(ctx, contactId);
    return actor?.state === "idle" && actor.context.history.length === 1 ? actor : null;
  });
  assert.ok(idle.deadlines[FINISH_DUE], "its end is a deadline operators see");
  await waitFor("the actor gone", () => inspect(ctx, contactId) === undefined, 5_000);
  await waitFor("its snapshot dropped", async () => (await ctx.snapshots.load(CONTACT_KIND, contactId)) === null, 5_000);
  update(ctx, contactId);
  const next = await waitFor("a new actor ran the next order", () => {
    const actor = inspect(ctx, contactId);
    return actor?.state === "idle" && actor.context.history.length === 1 ? actor : null;
  });
  assert.is(next.context.history[0]?.outcome, "done");
});

test("orders keep an actor alive; orders sent around the moment it finishes are each run, none dead-lettered", async (ctx) => {
  const contactId = await newContactId(ctx);
  const lettersBefore = (await ctx.node.deadLetters.list(1_000)).length;
  for (let n = 0; n < 4; n++) {
    update(ctx, contactId);
    await new Promise((resolve) => setTimeout(resolve, FINISH_AFTER_MS / 2));
  }
  await waitFor("one actor ran them all", () => (inspect(ctx, contactId)?.context.history.length ?? 0) >= 4, 5_000);
  // Around the finish: just before, at, and just after it.
  for (const offset of [-30, -10, 0, 10, 30, 60]) {
    const sentAt = await waitFor(
      "the actor idle",
      () => {
        const actor = inspect(ctx, contactId);
        return actor?.state === "idle" ? Date.now() : null;
      },
      5_000,
    );
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, FINISH_AFTER_MS + offset - (Date.now() - sentAt))));
    const sent = new Date().toISOString();
    update(ctx, contactId);
    await waitFor(
      `the order sent ${offset} ms from the finish run`,
      () => {
        const latest = inspect(ctx, contactId)?.context.history[0];
        return latest !== undefined && latest.finished_at >= sent;
      },
      10_000,
    );
  }
  assert.is((await ctx.node.deadLetters.list(1_000)).length, lettersBefore);
});

test.run();
