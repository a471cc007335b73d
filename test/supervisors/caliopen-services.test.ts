// The chain on one node: a client adds an account through the node's HTTP API → the identities worker's
// poller for it syncs on schedule and announces the IMAP worker → the API shows the schedule → deleting
// the account stops it all.

import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import { openStore } from "../../actors/store/store.ts";
import { decodeJson } from "../../runtime/json.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { callApi } from "../helpers/api-client.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

const test = suite<{ nats: TestNats; node: RunningNode; client: NatsConnection; apiUrl: string; token: string; seen: { subject: string; order: unknown }[] }>(
  "Caliopen services on a node",
);

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  // The account's IMAP server does not exist: its worker fails, and must not slow the poller down here.
  const config = testCaliopenConfig({ imap: { slowDownAfterFailures: 1_000, retry: { initialMs: 60_000, maxMs: 60_000, factor: 1, jitter: 0 } } });
  let apiUrl = "";
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config, { onApiStarted: (url) => (apiUrl = url) }), { nodeId: "chain-node" });
  ctx.apiUrl = apiUrl;
  ctx.client = await ctx.nats.connect();
  const store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  ctx.token = (await createUser(store, { name: "alice" })).token;
  ctx.seen = [];
  for (const subject of ["IMAPfetcher", "imap_worker"]) {
    ctx.client.subscribe(subject, { callback: (_err, msg) => void ctx.seen.push({ subject, order: (decodeJson(msg.data) as { value: unknown }).value }) });
  }
  await ctx.client.flush();
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.nats.stop();
});

const call = (ctx: { apiUrl: string; token: string }, method: string, path: string, body?: unknown) => callApi(ctx.apiUrl, ctx.token, method, path, body);

test("an account added through the API is polled, its schedule shown, and deleting it stops everything", async (ctx) => {
  const created = await call(ctx, "POST", "/api/v2/identities/remotes", {
    protocol: "imap",
    identifier: "alice@provider.test",
    credentials: { username: "alice", password: "pw" },
    // A server that does not exist (.invalid never resolves): the test is about polling, not the sync.
    infos: { inserver: "imap.provider.invalid:143", poll_interval: "0.02" },
  });
  assert.is(created.status, 201);
  const id = created.body.identity_id as string;
  await waitFor("two syncs", () => ctx.seen.filter((s) => s.subject === "IMAPfetcher").length >= 2, 6_000);
  assert.ok(ctx.seen.some((s) => s.subject === "imap_worker" && (s.order as { order: string }).order === "add_worker"));

  const listed = await call(ctx, "GET", "/api/v2/identities/remotes");
  const infos = listed.body.identities[0].infos;
  assert.ok(Date.parse(infos.next_poll) > Date.now() - 2_000, `next poll shown: ${JSON.stringify(infos)}`);
  assert.ok(infos.last_poll);

  assert.is((await call(ctx, "DELETE", `/api/v2/identities/remotes/${id}`)).status, 204);
  await waitFor("remove_worker", () => ctx.seen.some((s) => s.subject === "imap_worker" && (s.order as { order: string }).order === "remove_worker"));
  await waitFor("poller gone", () => ctx.node.host.get("poller", id) === undefined);
});

test.run();
