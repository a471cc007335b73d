// Inbound actors on two nodes: `process_inbound` lands on either node (their queue group), and a request
// for a user whose actor belongs to the other node is forwarded there, starting the actor on its owner
// when it does not run yet. Each user has exactly one actor, on the node owning its shard.
import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { INBOUND_KIND } from "../../../actors/inbound/inbound-processor.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { decodeJson, encodeJson, isJsonObject } from "../../../runtime/json.ts";
import type { Reply } from "../../../runtime/reply.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../../helpers/test-node.ts";

interface Context {
  nats: TestNats;
  nodes: RunningNode[];
  client: NatsConnection;
  store: Store;
}

const test = suite<Context>("inbound actors on two nodes");
// Enough users, and shards, that both nodes own some of them: 64 shards split 32/32 between these two
// node ids, 12 users all on one node 5 times in 10,000.
const SHARDS = 64;
const USERS = 12;
const MAILS = 4;

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  const config = testCaliopenConfig({ api: null, mail: { ...testCaliopenConfig().mail, smtp: null } });
  ctx.nodes = [
    await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: "inbound-a", shards: SHARDS }),
    await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: "inbound-b", shards: SHARDS }),
  ];
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  // Both nodes own a fair share of the shards before the test starts.
  await waitFor(
    "shards spread over both nodes",
    async () => {
      const owned = await ownedShards(ctx.client);
      return owned.length === 2 && owned.every((shards) => shards >= SHARDS / 4);
    },
    15_000,
  );
});

test.after(async (ctx) => {
  for (const node of ctx.nodes) await node.shutdown("test over");
  await ctx.nats.stop();
});

test("every user's imports reach its one actor, wherever the request landed", async (ctx) => {
  const users = await Promise.all(
    Array.from({ length: USERS }, (_, i) => createUser(ctx.store, { name: `two-${i}-${randomUUID().slice(0, 6)}`, email: `two-${i}@platform.test` })),
  );
  const replies = await Promise.all(
    users.flatMap(({ user, identity }) =>
      Array.from({ length: MAILS }, async (_, i) => {
        const id = `${i}-${randomUUID()}@elsewhere.test`;
        const raw = await ctx.store.raws.put(null, Buffer.from(`From: x@elsewhere.test\r\nTo: y@platform.test\r\nMessage-ID: <${id}>\r\n\r\nHi.\r\n`));
        const msg = await ctx.client.request(
          "inboundSMTP",
          encodeJson({ order: "process_inbound", message_id: raw.raw_msg_id, remote_id: identity?.identity_id, user_id: user.user_id }),
          { timeout: 20_000 },
        );
        const decoded = decodeJson(msg.data);
        return decoded.ok && isJsonObject(decoded.value) ? (decoded.value as Reply) : null;
      }),
    ),
  );
  for (const reply of replies) assert.is(reply?.message, "message imported", JSON.stringify(reply));
  const owners = new Set<string>();
  for (const { user } of users) {
    const running = ctx.nodes.filter((node) => node.host.get(INBOUND_KIND, user.user_id) !== undefined);
    assert.is(running.length, 1, `user ${user.user_id}: one actor`);
    owners.add(running[0]?.id ?? "");
  }
  assert.is(owners.size, 2, "both nodes run some of them");
});

/** Shards each node owns, as its `caliopen.debug.nodes` reply says. */
async function ownedShards(nc: NatsConnection): Promise<number[]> {
  const owned: number[] = [];
  for await (const msg of await nc.requestMany("caliopen.debug.nodes", encodeJson({}), { strategy: "stall", stall: 150, maxWait: 2_000 })) {
    const decoded = decodeJson(msg.data);
    const cluster = decoded.ok && isJsonObject(decoded.value) && isJsonObject(decoded.value.cluster) ? decoded.value.cluster : null;
    owned.push(typeof cluster?.ownedShards === "number" ? cluster.ownedShards : 0);
  }
  return owned;
}

test.run();
