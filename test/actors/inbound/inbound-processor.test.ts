// The inbound processor as an actor, on a real node and nats-server: `process_inbound` on inboundSMTP
// reaches the user's `inbound` actor (one per user, visible to the debug subjects), whose replies are the
// processors' own (imported, already imported, errors); a made-up user gets no actor; a batch shows as
// `importing` with its queue; and a store that refuses writes puts the actor in `backingOff` with the
// error, keeping every queued order, each answered once the store takes writes again.
import { randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { INBOUND_KIND } from "../../../actors/inbound/inbound-processor.ts";
import type { Identity, User } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { decodeJson, encodeJson, isJsonObject } from "../../../runtime/json.ts";
import type { Reply } from "../../../runtime/reply.ts";
import { SnapshotStore } from "../../../runtime/snapshot-store.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { startCli } from "../../helpers/cli-process.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../../helpers/test-node.ts";

interface Context {
  nats: TestNats;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
}

const test = suite<Context>("inbound processor actor");
const MiB = 1024 * 1024;
const PASSIVATE_AFTER_MS = 400;

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  const config = testCaliopenConfig({ api: null });
  // Idle actors passivate within the test's time.
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: "inbound-node", passivateAfterMs: PASSIVATE_AFTER_MS });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
});

test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.nats.stop();
});

async function newUser(ctx: Context): Promise<{ user: User; local: Identity }> {
  const { user, identity } = await createUser(ctx.store, { name: `u-${randomUUID().slice(0, 8)}`, email: `u-${randomUUID().slice(0, 8)}@platform.test` });
  assert.ok(identity);
  return { user, local: identity };
}

function mail(messageId: string, extra: string[] = [], body = "Hello."): Buffer {
  return Buffer.from(
    [
      "From: Bob <bob@elsewhere.test>",
      "To: someone@platform.test",
      `Subject: ${messageId}`,
      `Message-ID: <${messageId}>`,
      "Date: Sat, 28 Nov 2026 09:00:00 +0000",
      ...extra,
      "",
      body,
      "",
    ].join("\r\n"),
  );
}

async function processInbound(
  ctx: Context,
  subject: string,
  order: { message_id: string; remote_id: string; user_id: string },
  timeout = 30_000,
): Promise<Reply> {
  const msg = await ctx.client.request(subject, encodeJson({ order: "process_inbound", ...order }), { timeout });
  const decoded = decodeJson(msg.data);
  assert.ok(decoded.ok && isJsonObject(decoded.value), "a JSON reply");
  return decoded.value as Reply;
}

async function importMail(ctx: Context, user: User, identity: Identity, bytes: Buffer | AsyncIterable<Uint8Array>, timeout?: number): Promise<Reply> {
  const raw = await ctx.store.raws.put(identity.type === "remote" ? user.user_id : null, bytes);
  return processInbound(ctx, "inboundSMTP", { message_id: raw.raw_msg_id, remote_id: identity.identity_id, user_id: user.user_id }, timeout);
}

async function inspect(ctx: Context, userId: string): Promise<{ state: unknown; context: Record<string, unknown> } | null> {
  const replies = await ctx.client.request(`caliopen.debug.actor.${INBOUND_KIND}.${userId}`, encodeJson({}), { timeout: 2_000 });
  const decoded = decodeJson(replies.data);
  const actor = decoded.ok && isJsonObject(decoded.value) && decoded.value.found === true ? decoded.value.actor : null;
  if (!isJsonObject(actor) || !isJsonObject(actor.context)) return null;
  return { state: actor.state, context: actor.context };
}

test("process_inbound reaches the user's inbound actor: imported, already imported (second identity attached), threaded", async (ctx) => {
  const { user, local } = await newUser(ctx);
  const first = await importMail(ctx, user, local, mail("lunch-1@elsewhere.test"));
  assert.equal(Object.keys(first).sort(), ["discussion_id", "error", "message", "message_id"], JSON.stringify(first));
  assert.is(first.error, false);
  assert.is(first.message, "message imported");
  assert.ok(ctx.node.host.get(INBOUND_KIND, user.user_id), "the user's inbound actor runs on the node");
  const seen = await inspect(ctx, user.user_id);
  assert.is(seen?.context.user_id, user.user_id);

  // The same mail again, and received by a second identity of the user: one message, both identities.
  const again = await importMail(ctx, user, local, mail("lunch-1@elsewhere.test"));
  assert.equal(again, { error: false, message: "raw message already imported", message_id: first.message_id, discussion_id: first.discussion_id });
  const remote = await ctx.store.identities.create({
    user_id: user.user_id,
    type: "remote",
    protocol: "imap",
    identifier: "u@provider.test",
    infos: { inserver: "imap.provider.test:993" },
  });
  const viaRemote = await importMail(ctx, user, remote, mail("lunch-1@elsewhere.test"));
  assert.equal(viaRemote, { error: false, message: "raw message already imported", message_id: first.message_id, discussion_id: first.discussion_id });
  const stored = await ctx.store.messages.get(user.user_id, String(first.message_id));
  assert.equal(stored?.user_identities.sort(), [local.identity_id, remote.identity_id].sort());

  // A reply is threaded on it (its parent found through what the actor remembers, or the store).
  const reply = await importMail(ctx, user, local, mail("lunch-2@elsewhere.test", ["In-Reply-To: <lunch-1@elsewhere.test>"]));
  assert.is(reply.message, "message imported");
  const threaded = await ctx.store.messages.get(user.user_id, String(reply.message_id));
  assert.is(threaded?.parent_id, first.message_id);
});

test("errors are replied as before: an unknown raw, another user's identity, a DM processor given a mail identity", async (ctx) => {
  const { user, local } = await newUser(ctx);
  const other = await newUser(ctx);
  const unknownRaw = randomUUID();
  assert.equal(await processInbound(ctx, "inboundSMTP", { message_id: unknownRaw, remote_id: local.identity_id, user_id: user.user_id }), {
    error: true,
    message: `unknown raw message ${unknownRaw}`,
  });
  const raw = await ctx.store.raws.put(null, mail("x-1@elsewhere.test"));
  assert.equal(await processInbound(ctx, "inboundSMTP", { message_id: raw.raw_msg_id, remote_id: other.local.identity_id, user_id: user.user_id }), {
    error: true,
    message: `identity ${other.local.identity_id} is not an identity of user ${user.user_id}`,
  });
  assert.equal(await processInbound(ctx, "inboundTwitter", { message_id: raw.raw_msg_id, remote_id: local.identity_id, user_id: user.user_id }), {
    error: true,
    message: `identity ${local.identity_id} is a ${local.protocol} identity, not a twitter one`,
  });
  // The same identity is then fine for mail: a refusal was not remembered.
  const imported = await processInbound(ctx, "inboundSMTP", { message_id: raw.raw_msg_id, remote_id: local.identity_id, user_id: user.user_id });
  assert.is(imported.message, "message imported", JSON.stringify(imported));
});

test("a made-up user id is answered `unknown user …`, and no actor is made or saved for it", async (ctx) => {
  const { local } = await newUser(ctx);
  const madeUp = randomUUID();
  const raw = await ctx.store.raws.put(null, mail("nobody@elsewhere.test"));
  for (const subject of ["inboundSMTP", "inboundTwitter"]) {
    assert.equal(await processInbound(ctx, subject, { message_id: raw.raw_msg_id, remote_id: local.identity_id, user_id: madeUp }), {
      error: true,
      message: `unknown user ${madeUp}`,
    });
  }
  assert.is(ctx.node.host.get(INBOUND_KIND, madeUp), undefined);
  const snapshots = await new Kvm(ctx.client).open("caliopen_actor_snapshots");
  assert.is(await snapshots.get(SnapshotStore.keyOf(INBOUND_KIND, madeUp)), null, "no snapshot saved");
  // An id the bus rules refuse never reaches the admission either.
  const bad = await processInbound(ctx, "inboundSMTP", { message_id: raw.raw_msg_id, remote_id: local.identity_id, user_id: "../../x" });
  assert.is(bad.error, true);
  assert.ok(ctx.node.host.list().every((cell) => cell.kind !== INBOUND_KIND || cell.key !== "../../x"));
});

test("a batch shows as `importing` with its queue; the 20 MiB mail streams through; then idle with its progress", async (ctx) => {
  const { user, local } = await newUser(ctx);
  // Another actor is busy with the huge mail: the orders behind it wait in the queue.
  const huge = importMail(ctx, user, local, hugeMail(20 * MiB), 60_000);
  const snapshotOf = async () => (await inspect(ctx, user.user_id)) ?? { state: null, context: {} };
  await waitFor("the actor importing the huge mail", async () => (await snapshotOf()).state === "importing", 30_000);
  const raws = await Promise.all(Array.from({ length: 10 }, (_, i) => ctx.store.raws.put(null, mail(`batch-${i}@elsewhere.test`))));
  const small = raws.map((raw) =>
    processInbound(ctx, "inboundSMTP", { message_id: raw.raw_msg_id, remote_id: local.identity_id, user_id: user.user_id }, 60_000),
  );
  const busy = await waitFor(
    "the queue behind the huge mail",
    async () => {
      const seen = await snapshotOf();
      const queue = seen.context.queue as unknown[] | undefined;
      return seen.state === "importing" && (queue?.length ?? 0) > 0 ? seen : null;
    },
    30_000,
  );
  assert.ok((busy.context.running as unknown[]).length >= 1);
  const hugeReply = await huge;
  assert.is(hugeReply.message, "message imported", JSON.stringify(hugeReply));
  const message = await ctx.store.messages.get(user.user_id, String(hugeReply.message_id));
  assert.equal(message?.attachments, [
    { attachment_id: "0", content_type: "application/octet-stream", file_name: "photos.nef", size: 20 * MiB, is_inline: false },
  ]);
  for (const reply of await Promise.all(small)) assert.is(reply.message, "message imported", JSON.stringify(reply));
  const after = await waitFor("idle again", async () => {
    const seen = await snapshotOf();
    return seen.state === "idle" ? seen : null;
  });
  const progress = after.context.progress as { done: number; failed: number; rate_per_s: number; finished_at: string | null };
  assert.is(progress.done, 11);
  assert.is(progress.failed, 0);
  assert.ok(progress.rate_per_s > 0);
  assert.ok(progress.finished_at !== null);
  assert.equal(after.context.queue, []);
  // The snapshot keeps ids, never mail: far smaller than any mail here.
  assert.ok(JSON.stringify(after.context).length < 32 * 1024, `${JSON.stringify(after.context).length} characters of context`);
});

test("a store that refuses writes: backingOff with the error, orders kept and all answered once it takes writes again", async (ctx) => {
  const { user, local } = await newUser(ctx);
  const jsm = await jetstreamManager(ctx.client);
  const stream = "KV_caliopen_messages";
  const info = await jsm.streams.info(stream);
  // No room for one more message: every new message is refused by JetStream (nothing stored is touched).
  await jsm.streams.update(stream, { ...info.config, max_bytes: Math.max(1, info.state.bytes) });
  const raws = await Promise.all(Array.from({ length: 12 }, (_, i) => ctx.store.raws.put(null, mail(`full-${i}@elsewhere.test`))));
  const replies = raws.map((raw) =>
    processInbound(ctx, "inboundSMTP", { message_id: raw.raw_msg_id, remote_id: local.identity_id, user_id: user.user_id }, 60_000),
  );
  const backingOff = await waitFor(
    "the actor backing off",
    async () => {
      const seen = await inspect(ctx, user.user_id);
      return seen?.state === "backingOff" ? seen : null;
    },
    20_000,
  );
  const lastError = backingOff.context.last_error as { message: string } | null;
  assert.match(String(lastError?.message), /maximum bytes exceeded/i);
  assert.ok(typeof (backingOff.context.deadlines as Record<string, number>)["retry.due"] === "number", "the next try is scheduled");
  assert.ok((backingOff.context.queue as unknown[]).length >= 1, "the failed orders stay queued");
  assert.is(ctx.node.host.get(INBOUND_KIND, user.user_id)?.summary().deadlines["retry.due"] !== undefined, true);

  await jsm.streams.update(stream, { ...info.config, max_bytes: -1 });
  const answered = await Promise.all(replies);
  const ids = new Set<string>();
  for (const reply of answered) {
    assert.is(reply.message, "message imported", JSON.stringify(reply));
    ids.add(String(reply.message_id));
  }
  assert.is(ids.size, raws.length, "one message per mail");
  for (const id of ids) assert.ok(await ctx.store.messages.get(user.user_id, id), `message ${id} stored`);
  await waitFor("idle again", async () => (await inspect(ctx, user.user_id))?.state === "idle");
});

test("an idle inbound actor passivates, keeping its context; the next order brings it back", async (ctx) => {
  const { user, local } = await newUser(ctx);
  const first = await importMail(ctx, user, local, mail("before-rest@elsewhere.test"));
  assert.is(first.message, "message imported");
  const cell = ctx.node.host.get(INBOUND_KIND, user.user_id);
  assert.ok(cell);
  await waitFor("the actor passivated", () => cell.passivated, 5_000);
  const dormant = await inspect(ctx, user.user_id);
  assert.is(dormant?.state, "idle");
  assert.is((dormant?.context.progress as { done: number } | undefined)?.done, 1);
  const second = await importMail(ctx, user, local, mail("after-rest@elsewhere.test", ["References: <before-rest@elsewhere.test>"]));
  assert.is(second.message, "message imported");
  assert.is((await ctx.store.messages.get(user.user_id, String(second.message_id)))?.parent_id, first.message_id);
  assert.is(ctx.node.host.get(INBOUND_KIND, user.user_id), cell, "the same actor, revived");
});

test("`caliopen actors --kind inbound` lists the users' inbound actors, and only them", async (ctx) => {
  const { user, local } = await newUser(ctx);
  await importMail(ctx, user, local, mail("listed@elsewhere.test"));
  const result = await startCli(["actors", "--kind", INBOUND_KIND, "--json"], ctx.nats.env).exited;
  assert.is(result.code, 0, result.stderr);
  const listed = JSON.parse(result.stdout) as { kind: string; key: string; subject: string }[];
  assert.ok(listed.length >= 1);
  assert.ok(listed.every((actor) => actor.kind === INBOUND_KIND));
  assert.equal(
    listed.find((actor) => actor.key === user.user_id),
    { ...listed.find((actor) => actor.key === user.user_id), kind: INBOUND_KIND, key: user.user_id, subject: `caliopen.actor.inbound.${user.user_id}` },
  );
});

/** A mail with a 20 MiB attachment, made as it is stored: base64 lines in 64 KiB chunks. */
async function* hugeMail(attachmentBytes: number): AsyncIterable<Uint8Array> {
  yield Buffer.from(
    [
      "From: Studio <studio@photo.example>",
      "To: someone@platform.test",
      "Subject: photos",
      "Message-ID: <huge-20MiB@photo.example>",
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="B"',
      "",
      "--B",
      "Content-Type: text/plain; charset=utf-8",
      "",
      "The photos.",
      "--B",
      'Content-Type: application/octet-stream; name="photos.nef"',
      "Content-Transfer-Encoding: base64",
      'Content-Disposition: attachment; filename="photos.nef"',
      "",
      "",
    ].join("\r\n"),
  );
  const block = Buffer.alloc(57 * 1149);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + 7) & 0xff;
  for (let left = attachmentBytes; left > 0; ) {
    const part = block.subarray(0, Math.min(block.length, left));
    left -= part.length;
    yield Buffer.from(`${(part.toString("base64").match(/.{1,76}/g) ?? []).join("\r\n")}\r\n`);
  }
  yield Buffer.from("--B--\r\n");
}

test.run();
