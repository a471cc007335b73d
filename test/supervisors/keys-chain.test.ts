// Contacts and keys on one node, driven through the API as a client would, against a real HKP key server
// (SKS) and GnuPG: create a contact → its derived data is computed; patch its emails → keys on the key
// server are discovered and listed; add the user's own key → published, and fetchable by GnuPG.

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
import { Gpg } from "../helpers/gpg.ts";
import { startTestKeyServer, type TestKeyServer } from "../helpers/hkp-server.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

interface Context {
  nats: TestNats;
  keys: TestKeyServer;
  gpg: Gpg;
  node: RunningNode;
  client: NatsConnection;
  apiUrl: string;
  token: string;
  ownContact: string;
}

const test = suite<Context>("keys chain");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.keys = await startTestKeyServer();
  ctx.gpg = await Gpg.open();
  const config = testCaliopenConfig({
    keys: { discovery: { hkp: ctx.keys.url, wkd: false, dns: null, timeoutMs: 5_000 }, publishing: { hkp: ctx.keys.url, wkd: null } },
  });
  let apiUrl = "";
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config, { onApiStarted: (url) => (apiUrl = url) }), { nodeId: "keys-node" });
  ctx.apiUrl = apiUrl;
  ctx.client = await ctx.nats.connect();
  const store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  const created = await createUser(store, { name: "alice", email: "alice@platform.test" });
  ctx.token = created.token;
  ctx.ownContact = created.user.contact_id;
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.gpg.close();
  await ctx.keys.stop();
  await ctx.nats.stop();
});

const call = (ctx: Context, method: string, path: string, body?: unknown) => callApi(ctx.apiUrl, ctx.token, method, path, body);

test("a new contact gets its derived data; new emails bring the keys published for them", async (ctx) => {
  const created = await call(ctx, "POST", "/api/v2/contacts", { given_name: "Bob", emails: [{ address: "bob@old.test" }] });
  assert.is(created.status, 201);
  const contactId = created.body.contact_id as string;
  const derived = await waitFor("derived data", async () => (await call(ctx, "GET", `/api/v2/contacts/${contactId}`)).body.derived, 10_000);
  assert.equal(derived.messages_by_address, { "bob@old.test": 0 });
  assert.is(derived.best_key_size, 0);

  // Bob publishes a key made by GnuPG for his new address.
  const fingerprint = await ctx.gpg.generate("Bob <bob@new.test>");
  await ctx.gpg.sendKeys(ctx.keys.hkp, fingerprint);
  await waitFor("the key on the server", async () => (await ctx.keys.get("bob@new.test")) !== null);

  const patched = await call(ctx, "PATCH", `/api/v2/contacts/${contactId}`, { emails: [{ address: "bob@old.test" }, { address: "bob@new.test" }] });
  assert.is(patched.status, 200);
  const listed = await waitFor(
    "the discovered key listed",
    async () => {
      const keys = (await call(ctx, "GET", `/api/v2/contacts/${contactId}/publickeys`)).body.keys as { fingerprint: string; source: string }[];
      return keys.length > 0 ? keys : null;
    },
    15_000,
  );
  assert.equal(
    listed.map((key) => [key.fingerprint, key.source]),
    [[fingerprint, "hkp"]],
  );
  const contact = (await call(ctx, "GET", `/api/v2/contacts/${contactId}`)).body;
  assert.ok(contact.key_discovery.found.includes(fingerprint), JSON.stringify(contact.key_discovery));
  // contact_update went out with the patch too: the key's size shows once the keys are in.
  await call(ctx, "PATCH", `/api/v2/contacts/${contactId}`, { given_name: "Bobby" });
  await waitFor("best key size", async () => (await call(ctx, "GET", `/api/v2/contacts/${contactId}`)).body.derived?.best_key_size > 0, 10_000);
});

test("the user's own key is published to the key server, where GnuPG finds it", async (ctx) => {
  const fingerprint = await ctx.gpg.generate("Alice <alice@platform.test>");
  const armored = await ctx.gpg.exportPublic(fingerprint);
  const added = await call(ctx, "POST", `/api/v2/contacts/${ctx.ownContact}/publickeys`, { key: armored });
  assert.is(added.status, 201, JSON.stringify(added.body));
  await waitFor("on the key server", async () => ((await ctx.keys.get("alice@platform.test")) ?? "").length > 0, 15_000);
  const fresh = await Gpg.open();
  try {
    await fresh.receiveKeys(ctx.keys.hkp, fingerprint);
    assert.ok(await fresh.has(fingerprint), "GnuPG fetched it from the key server");
  } finally {
    await fresh.close();
  }
});

test.run();
