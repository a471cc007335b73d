// The inbound actor through a nats-server restart in the middle of a burst of imports: the node fences
// itself (its actors stop, the queue as last saved stays in the snapshot), rejoins when the server is
// back and resumes the actor. Requesters behave as the bridges do (a request that times out or is
// answered with an error is asked again later), and in the end every mail is one stored message: none
// lost, none stored twice.
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { INBOUND_KIND } from "../../../actors/inbound/inbound-processor.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { type EmbeddedNats, startEmbeddedNats } from "../../../runtime/embedded-nats-server.ts";
import { decodeJson, encodeJson, isJsonObject } from "../../../runtime/json.ts";
import { natsConnectOptions } from "../../../runtime/nats-endpoint.ts";
import type { Reply } from "../../../runtime/reply.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { freePort } from "../../../scripts/local-servers/free-port.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { startTestNode, testCaliopenConfig } from "../../helpers/test-node.ts";

interface Context {
  dir: string;
  port: number;
  server: EmbeddedNats;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
}

const test = suite<Context>("inbound actor across a nats-server restart");
const MAILS = 150;

test.before(async (ctx) => {
  ctx.dir = await mkdtemp(join(tmpdir(), "caliopen-test-inbound-restart-"));
  ctx.port = await freePort();
  ctx.server = await startEmbeddedNats({ dataDir: ctx.dir, port: ctx.port });
  const config = testCaliopenConfig({ api: null });
  ctx.node = await startTestNode(ctx.server.endpoint, caliopenServices(config), { nodeId: "restart-node" });
  ctx.client = await connect({ ...(await natsConnectOptions(ctx.server.endpoint)), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
});

test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.client.close().catch(() => undefined);
  await ctx.server.stop();
  await rm(ctx.dir, { recursive: true, force: true });
});

/** As a bridge does: asked again after a timeout or an error reply, until the import is answered. */
async function importUntilAnswered(ctx: Context, order: { message_id: string; remote_id: string; user_id: string }): Promise<{ reply: Reply; tries: number }> {
  const deadline = Date.now() + 90_000;
  for (let tries = 1; ; tries++) {
    let reply: Reply | null = null;
    try {
      const msg = await ctx.client.request("inboundSMTP", encodeJson({ order: "process_inbound", ...order }), { timeout: 10_000 });
      const decoded = decodeJson(msg.data);
      if (decoded.ok && isJsonObject(decoded.value)) reply = decoded.value as Reply;
    } catch {
      // No answer (the server is down, the actor moved): asked again.
    }
    if (reply !== null && !reply.error) return { reply, tries };
    if (Date.now() > deadline) throw new Error(`order for raw ${order.message_id} never answered; last: ${JSON.stringify(reply)}`);
    await sleep(300);
  }
}

test("a burst of imports across a restart: every mail stored once", async (ctx) => {
  const { user, identity } = await createUser(ctx.store, { name: "restart", email: "restart@platform.test" });
  assert.ok(identity);
  const messageIds = Array.from({ length: MAILS }, (_, i) => `restart-${i}-${randomUUID()}@elsewhere.test`);
  const raws = await Promise.all(
    messageIds.map((id) =>
      ctx.store.raws.put(null, Buffer.from(`From: bob@elsewhere.test\r\nTo: restart@platform.test\r\nSubject: ${id}\r\nMessage-ID: <${id}>\r\n\r\nHello.\r\n`)),
    ),
  );
  const answers = raws.map((raw) => importUntilAnswered(ctx, { message_id: raw.raw_msg_id, remote_id: identity.identity_id, user_id: user.user_id }));
  // Stopped while the actor has imported some and has more queued.
  await waitFor(
    "the user's actor in the middle of the burst",
    () => {
      const context = ctx.node.host.get(INBOUND_KIND, user.user_id)?.inspect().context as { queue: unknown[]; progress: { done: number } | null } | undefined;
      return context !== undefined && context.queue.length > 0 && (context.progress?.done ?? 0) > 0;
    },
    20_000,
    5,
  );

  await ctx.server.stop();
  // Longer than the node's failure detection: it fences itself and stops its actors.
  await sleep(2_000);
  ctx.server = await startEmbeddedNats({ dataDir: ctx.dir, port: ctx.port });

  const results = await Promise.all(answers);
  const stored = new Map<string, string>();
  for (const [i, { reply }] of results.entries()) {
    assert.ok(reply.message === "message imported" || reply.message === "raw message already imported", JSON.stringify(reply));
    const id = messageIds[i] ?? "";
    const message = await ctx.store.messages.byExternalId(user.user_id, id);
    assert.ok(message, `mail ${id} stored`);
    assert.is(message.message_id, reply.message_id, "the reply names the stored message");
    stored.set(id, message.message_id);
  }
  assert.is(new Set(stored.values()).size, MAILS, "one message per mail");
  assert.is((await ctx.store.messages.list(user.user_id, { limit: 1 })).total, MAILS, "and no other message");
  assert.ok(
    results.some(({ tries }) => tries > 1),
    "some requests were asked again across the restart",
  );
});

test.run();
