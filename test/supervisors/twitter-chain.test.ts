// The Twitter chain on one node, driven as a client would, against the fake X API: an account added
// through the API is polled on twitter_dm → its DMs become stored messages → a reply draft is sent as a
// DM to its first recipient.

import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import { openStore } from "../../actors/store/store.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { callApi } from "../helpers/api-client.ts";
import { type FakeXApi, startFakeXApi } from "../helpers/fake-x-api.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

interface Context {
  nats: TestNats;
  x: FakeXApi;
  node: RunningNode;
  client: NatsConnection;
  apiUrl: string;
  token: string;
}

const test = suite<Context>("twitter chain");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.x = await startFakeXApi();
  const config = testCaliopenConfig({ twitter: { x: { baseUrl: ctx.x.url, appKey: ctx.x.appKey, appSecret: ctx.x.appSecret } } });
  let apiUrl = "";
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config, { onApiStarted: (url) => (apiUrl = url) }), { nodeId: "twitter-node" });
  ctx.apiUrl = apiUrl;
  ctx.client = await ctx.nats.connect();
  const store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  ctx.token = (await createUser(store, { name: "alice" })).token;
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.x.close();
  await ctx.nats.stop();
});

const call = (ctx: Context, method: string, path: string, body?: unknown) => callApi(ctx.apiUrl, ctx.token, method, path, body);

test("a Twitter account added through the API: its DMs are stored, and a reply draft goes out as a DM", async (ctx) => {
  const alice = ctx.x.addUser("alice_tw", "Alice");
  const bob = ctx.x.addUser("bob_tw", "Bob");
  ctx.x.grant(alice, { oauth1: { token: "alice-token", secret: "alice-secret" } });
  ctx.x.dm(bob, alice, "hi Alice, coffee?");

  const created = await call(ctx, "POST", "/api/v2/identities/remotes", {
    protocol: "twitter",
    identifier: "alice_tw",
    credentials: { token: "alice-token", secret: "alice-secret" },
  });
  assert.is(created.status, 201, JSON.stringify(created.body));
  const identityId = created.body.identity_id as string;

  const received = await waitFor(
    "the DM as a stored message",
    async () =>
      ((await call(ctx, "GET", "/api/v2/messages")).body.items as { subject: string; body_plain: string }[]).find((m) => m.body_plain === "hi Alice, coffee?"),
    10_000,
  );
  const message = received as unknown as { message_id: string; protocol: string; participants: { type: string; address: string }[] };
  assert.is(message.protocol, "twitter");
  assert.ok(message.participants.some((p) => p.type === "From" && p.address === "bob_tw"));

  const draft = await call(ctx, "POST", "/api/v2/messages", {
    identity_id: identityId,
    parent_id: message.message_id,
    body_plain: "sure, at 3",
    participants: [{ type: "To", address: "bob_tw" }],
  });
  assert.is(draft.status, 201, JSON.stringify(draft.body));
  const sent = await call(ctx, "POST", `/api/v2/messages/${draft.body.message_id}/actions`, { actions: ["send"] });
  assert.is(sent.status, 200, JSON.stringify(sent.body));
  assert.is(sent.body.is_draft, false);
  assert.equal(
    ctx.x.sent.map((dm) => ({ text: dm.text, to: dm.recipient_id })),
    [{ text: "sure, at 3", to: bob.id }],
  );
  assert.ok(ctx.node.host.get("twitter", identityId), "the account has its worker");
});

test("the DM received and the reply sent are the user's notifications (new_message, message_sent)", async (ctx) => {
  const history = await waitFor(
    "both notifications",
    async () => {
      const items = (await call(ctx, "GET", "/api/v2/notifications")).body.items as { type: string; elements: Record<string, unknown>[] }[];
      return items.some((item) => item.type === "message_sent") && items.some((item) => item.type === "new_message") ? items : null;
    },
    10_000,
  );
  const received = history.find((item) => item.type === "new_message")?.elements[0];
  assert.is(received?.protocol, "twitter");
  assert.is(received?.from, "Bob <bob_tw>");
  assert.is(received?.excerpt, "hi Alice, coffee?");
  const sent = history.find((item) => item.type === "message_sent")?.elements[0];
  assert.is(sent?.excerpt, "sure, at 3");
  assert.is(sent?.is_received, false);
});

test.run();
