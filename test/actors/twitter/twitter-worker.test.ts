// The `twitter` worker family driven through an ActorHost and its FamilySupervisor on a real nats-server,
// against the fake X API: `inboundTwitter` is answered here by processInboundTwitter on the real store.

import { randomBytes } from "node:crypto";
import type { Subscription } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { newDraft } from "../../../actors/messages/new-draft.ts";
import type { Credentials, Identity, Message, User } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { decodeStoredDm } from "../../../actors/twitter/dm-raw.ts";
import { processInboundTwitter } from "../../../actors/twitter/inbound-twitter.ts";
import { TWITTER_KIND, twitterWorkerFamily } from "../../../actors/twitter/twitter-worker.ts";
import { RATE_LIMIT_RESET, type TwitterWorkerContext } from "../../../actors/twitter/twitter-worker-state.ts";
import type { ActorCell } from "../../../runtime/actor-cell.ts";
import type { ActorHost } from "../../../runtime/actor-host.ts";
import { FamilySupervisor } from "../../../runtime/cluster/family-supervisor.ts";
import { SingleNodePlacement } from "../../../runtime/cluster/placement.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import { silentLogger } from "../../../runtime/logger.ts";
import { SecretBox } from "../../../runtime/secret-box.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import { type FakeUser, type FakeXApi, startFakeXApi } from "../../helpers/fake-x-api.ts";
import { type RuntimeFixture, startRuntimeFixture } from "../../helpers/runtime-fixture.ts";

interface Context {
  fx: RuntimeFixture;
  x: FakeXApi;
  store: Store;
  host: ActorHost;
  sup: FamilySupervisor;
  user: User;
  /** process_inbound requests answered, by identity. */
  imports: Map<string, number>;
  orders: Record<string, unknown>[];
  subs: Subscription[];
  /** Milliseconds the importer waits before answering. */
  importDelayMs: number;
}

const test = suite<Context>("twitter worker");

test.before(async (ctx) => {
  ctx.fx = await startRuntimeFixture();
  ctx.x = await startFakeXApi();
  ctx.store = await openStore({ nc: ctx.fx.nc, subjects: ctx.fx.subjects, secrets: new SecretBox(randomBytes(32)) });
  ctx.host = ctx.fx.newHost();
  const family = twitterWorkerFamily(ctx.store, {
    x: { baseUrl: ctx.x.url, appKey: ctx.x.appKey, appSecret: ctx.x.appSecret },
    pageSize: 3,
    resetMarginMs: 100,
  });
  ctx.sup = new FamilySupervisor(ctx.host, family, new SingleNodePlacement("test-node"), silentLogger());
  ctx.user = (await createUser(ctx.store, { name: "bob" })).user;
  ctx.imports = new Map();
  ctx.importDelayMs = 0;
  ctx.orders = [];
  ctx.subs = [
    ctx.fx.nc.subscribe("inboundTwitter", {
      callback: (_err, msg) => {
        const decoded = decodeJson(msg.data);
        const order = (decoded.ok ? decoded.value : {}) as Record<string, string>;
        ctx.imports.set(order.remote_id ?? "", (ctx.imports.get(order.remote_id ?? "") ?? 0) + 1);
        void (async () => {
          await sleep(ctx.importDelayMs);
          // The importer refuses DMs that say "poison".
          const bytes = await ctx.store.raws.read(order.message_id ?? "");
          if (bytes !== null && decodeStoredDm(bytes).event.text === "poison")
            return msg.respond(encodeJson({ error: true, message: "cannot digest this one" }));
          const reply = await processInboundTwitter(ctx.store, {
            message_id: order.message_id ?? "",
            remote_id: order.remote_id ?? "",
            user_id: order.user_id ?? "",
          });
          msg.respond(encodeJson(reply));
        })();
      },
    }),
    ctx.fx.nc.subscribe("identitiesWorker", {
      callback: (_err, msg) => {
        const decoded = decodeJson(msg.data);
        if (decoded.ok) ctx.orders.push(decoded.value as Record<string, unknown>);
      },
    }),
  ];
  await ctx.fx.nc.flush();
});
test.after(async (ctx) => {
  for (const sub of ctx.subs) sub.unsubscribe();
  ctx.sup.close();
  await ctx.fx.stop();
  await ctx.x.close();
});

let accounts = 0;

/** An X account on the fake, its correspondents, and the Twitter identity of the user that syncs it. */
async function account(ctx: Context, credentials?: Credentials): Promise<{ me: FakeUser; alice: FakeUser; carol: FakeUser; identity: Identity }> {
  const n = ++accounts;
  const me = ctx.x.addUser(`Bob_${n}`, `Bob ${n}`);
  const alice = ctx.x.addUser(`Alice_${n}`, `Alice ${n}`);
  const carol = ctx.x.addUser(`carol_${n}`, `Carol ${n}`);
  ctx.x.grant(me, { oauth1: { token: `token-${n}`, secret: `secret-${n}` }, bearer: `bearer-${n}` });
  const identity = await ctx.store.identities.create({
    user_id: ctx.user.user_id,
    type: "remote",
    protocol: "twitter",
    identifier: me.username,
    display_name: me.name,
    infos: { poll_interval: "2" },
    credentials: credentials ?? { token: `token-${n}`, secret: `secret-${n}` },
  });
  return { me, alice, carol, identity };
}

const input = (identity: Identity) => ({ remote_id: identity.identity_id, user_id: identity.user_id });
const cellOf = (ctx: Context, identity: Identity) => ctx.host.get(TWITTER_KIND, identity.identity_id) as ActorCell;
const contextOf = (ctx: Context, identity: Identity) => (cellOf(ctx, identity)?.inspect().context ?? {}) as TwitterWorkerContext;
const syncState = (ctx: Context, identity: Identity) => (cellOf(ctx, identity)?.summary().state as { working?: { sync?: string } } | undefined)?.working?.sync;

function sync(ctx: Context, identity: Identity): void {
  cellOf(ctx, identity).receive({ type: "sync", payload: { order: "sync", ...input(identity) } });
}

async function deliver(ctx: Context, identity: Identity, messageId: string): Promise<Record<string, unknown>> {
  const payload = { order: "deliver", message_id: messageId, ...input(identity) };
  const answer = await ctx.fx.nc.request(cellOf(ctx, identity).subject, encodeJson({ type: "deliver", payload }), { timeout: 15_000 });
  const decoded = decodeJson(answer.data);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value as Record<string, unknown>;
}

async function messagesOf(ctx: Context, identity: Identity): Promise<Message[]> {
  const page = await ctx.store.messages.list(ctx.user.user_id, { limit: 500 });
  return page.items.filter((message) => message.user_identities.includes(identity.identity_id)).sort((a, b) => a.date.localeCompare(b.date));
}

async function settled(ctx: Context, identity: Identity, state = "idle"): Promise<void> {
  await waitFor(`sync region ${state}`, () => syncState(ctx, identity) === state, 10_000);
}

const dmRequests = (ctx: Context) => ctx.x.requests.filter((r) => r.path === "/2/dm_events");

test("sync imports the new DMs (received and the account's own), oldest first; a second sync only the newer ones", async (ctx) => {
  const { me, alice, carol, identity } = await account(ctx);
  const first = [
    ctx.x.dm(alice, me, "hi"),
    ctx.x.dm(me, alice, "hello Alice"),
    ctx.x.dm(alice, me, "coffee?"),
    ctx.x.dm(carol, me, "psst"),
    ctx.x.dm(alice, me, "tomorrow 10:00"),
  ];
  await ctx.sup.start(identity.identity_id, input(identity));
  sync(ctx, identity);
  await waitFor("5 messages", async () => (await messagesOf(ctx, identity)).length === 5, 10_000);
  await settled(ctx, identity);
  const messages = await messagesOf(ctx, identity);
  assert.equal(messages.map((m) => m.body_plain).sort(), first.map((e) => e.text).sort());
  const own = messages.find((m) => m.body_plain === "hello Alice");
  assert.equal(
    own?.participants.map((p) => [p.type, p.address]),
    [
      ["From", me.username.toLowerCase()],
      ["To", alice.username.toLowerCase()],
    ],
  );
  assert.is(own?.is_received, false);
  const fromCarol = messages.find((m) => m.body_plain === "psst");
  assert.equal(
    fromCarol?.participants.map((p) => [p.type, p.address, p.label]),
    [
      ["From", carol.username.toLowerCase(), carol.name],
      ["To", me.username.toLowerCase(), me.name],
    ],
  );
  assert.is(fromCarol?.is_unread, true);
  assert.is(fromCarol?.external_references.message_id, first[3]?.id);
  const context = contextOf(ctx, identity);
  assert.is(context.last_seen_id, first[4]?.id);
  assert.equal(context.account, { id: me.id, username: me.username, name: me.name });
  assert.equal(context.progress && { total: context.progress.total, done: context.progress.done }, { total: 5, done: 5 });
  const infos = (await ctx.store.identities.get(ctx.user.user_id, identity.identity_id))?.infos;
  assert.ok(infos?.last_sync);
  assert.is(infos?.last_error, null);
  assert.is(infos?.twitter_last_seen_id, first[4]?.id);
  assert.is(ctx.imports.get(identity.identity_id), 5);

  // Two more: one page read, two imports.
  const before = dmRequests(ctx).length;
  const second = [ctx.x.dm(alice, me, "are you there?"), ctx.x.dm(carol, me, "ping")];
  sync(ctx, identity);
  await waitFor("7 messages", async () => (await messagesOf(ctx, identity)).length === 7, 10_000);
  await settled(ctx, identity);
  assert.is(ctx.imports.get(identity.identity_id), 7, "only the newer DMs are imported");
  assert.is(contextOf(ctx, identity).last_seen_id, second[1]?.id);
  const requests = dmRequests(ctx).slice(before);
  assert.is(requests.length, 1);
  assert.is(requests[0]?.auth, "oauth1");

  // Syncs arriving during a sync are coalesced into one more run.
  const runs = contextOf(ctx, identity).history.length;
  sync(ctx, identity);
  sync(ctx, identity);
  sync(ctx, identity);
  await settled(ctx, identity);
  await waitFor("runs recorded", () => contextOf(ctx, identity).history.length >= runs + 1);
  assert.ok(contextOf(ctx, identity).history.length <= runs + 2, "three syncs at once make at most two runs");
  assert.is(ctx.imports.get(identity.identity_id), 7);
});

test("429: rate-limited until the reset (a deadline), the identities worker asked to poll half as often, and back after a good sync", async (ctx) => {
  const { me, alice, identity } = await account(ctx, undefined);
  await ctx.sup.start(identity.identity_id, input(identity));
  ctx.x.dm(alice, me, "before the limit");
  const resetAt = new Date((Math.floor(Date.now() / 1000) + 2) * 1000);
  ctx.x.rateLimit(resetAt, 1, "/2/dm_events");
  sync(ctx, identity);
  await settled(ctx, identity, "rateLimited");
  const cell = cellOf(ctx, identity);
  assert.is(cell.summary().deadlines[RATE_LIMIT_RESET], new Date(resetAt.getTime() + 100).toISOString());
  assert.is(contextOf(ctx, identity).rate_limited_until, resetAt.toISOString());
  assert.match(contextOf(ctx, identity).last_error?.message ?? "", /rate limited/);
  const slower = await waitFor("update_interval published", () => ctx.orders.find((o) => o.identity_id === identity.identity_id));
  assert.equal(slower, { order: "update_interval", identity_id: identity.identity_id, user_id: ctx.user.user_id, poll_intervall: "4", protocol: "twitter" });
  // A poll during the wait is taken (not dead-lettered) and changes nothing.
  sync(ctx, identity);
  assert.is(syncState(ctx, identity), "rateLimited");
  assert.equal((await messagesOf(ctx, identity)).length, 0);

  // After the reset the owed sync runs by itself and succeeds: the previous interval comes back.
  await waitFor("imported after the reset", async () => (await messagesOf(ctx, identity)).length === 1, 10_000);
  await settled(ctx, identity);
  assert.ok(Date.now() >= resetAt.getTime(), "not before the reset");
  const back = await waitFor("interval restored", () => ctx.orders.filter((o) => o.identity_id === identity.identity_id)[1]);
  assert.equal(back, { order: "update_interval", identity_id: identity.identity_id, user_id: ctx.user.user_id, poll_intervall: "2", protocol: "twitter" });
  assert.is(contextOf(ctx, identity).slowed_from, null);
  assert.is(contextOf(ctx, identity).rate_limited_until, null);
  assert.equal(cellOf(ctx, identity).summary().deadlines, {});
});

test("401: needs-credentials, polls ignored until reload_worker restarts the worker with new credentials", async (ctx) => {
  const { me, alice, identity } = await account(ctx, { access_token: "expired" });
  ctx.x.dm(alice, me, "can you read me?");
  await ctx.sup.start(identity.identity_id, input(identity));
  sync(ctx, identity);
  await settled(ctx, identity, "needsCredentials");
  const infos = await waitFor("error on the identity", async () => (await ctx.store.identities.get(ctx.user.user_id, identity.identity_id))?.infos.last_error);
  assert.match(infos.message, /refused the credentials.*waiting for new credentials/);
  const asked = ctx.x.requests.length;
  sync(ctx, identity);
  sync(ctx, identity);
  assert.is(syncState(ctx, identity), "needsCredentials");
  assert.is(ctx.x.requests.length, asked, "no request with credentials known to be refused");

  const n = accounts;
  await ctx.store.identities.update(ctx.user.user_id, identity.identity_id, () => ({ credentials: { access_token: `bearer-${n}` } }));
  await ctx.sup.reload(identity.identity_id, input(identity));
  await waitFor("imported with the new token", async () => (await messagesOf(ctx, identity)).length === 1, 10_000);
  await settled(ctx, identity);
  assert.is(contextOf(ctx, identity).last_error, null);
  assert.is(dmRequests(ctx).at(-1)?.auth, "bearer");
});

test("deliver: the DM is posted to the first To, the draft flipped to sent, ok; a retry is not posted twice, nor imported again", async (ctx) => {
  const { me, alice, identity } = await account(ctx);
  await ctx.sup.start(identity.identity_id, input(identity));
  const draft = newDraft(identity, {
    body_plain: "see you at 10",
    participants: [
      { type: "To", address: alice.username },
      { type: "To", address: "someone_else" },
    ],
  });
  await ctx.store.messages.create(draft);
  const posted = ctx.x.sent.length;
  const reply = await deliver(ctx, identity, draft.message_id);
  assert.equal(reply, { error: false, message: `message ${draft.message_id} has been sent`, message_id: draft.message_id, dm_event_id: reply.dm_event_id });
  assert.is(ctx.x.sent.length, posted + 1);
  const dm = ctx.x.sent.at(-1);
  assert.equal(dm && { text: dm.text, sender: dm.sender_id, recipient: dm.recipient_id, id: dm.id }, {
    text: "see you at 10",
    sender: me.id,
    recipient: alice.id,
    id: String(reply.dm_event_id),
  });
  const sent = await ctx.store.messages.get(ctx.user.user_id, draft.message_id);
  assert.ok(sent);
  assert.is(sent.is_draft, false);
  assert.is(sent.external_references.message_id, dm?.id);
  assert.ok(sent.raw_msg_id);
  assert.is(sent.sending_since, null);
  assert.is((await ctx.store.raws.get(sent.raw_msg_id))?.delivered, true);
  const raw = decodeStoredDm((await ctx.store.raws.read(sent.raw_msg_id)) as Uint8Array);
  assert.equal([raw.direction, raw.sender.id, raw.recipient.username, raw.event.id, raw.event.text], ["sent", me.id, alice.username, dm?.id, "see you at 10"]);

  const again = await deliver(ctx, identity, draft.message_id);
  assert.equal(again, { error: false, message: `message ${draft.message_id} was already sent`, message_id: draft.message_id });
  assert.is(ctx.x.sent.length, posted + 1, "not posted twice");

  // The next sync sees the sent event: it is the sent draft already, not a new message.
  sync(ctx, identity);
  await waitFor("synced", () => contextOf(ctx, identity).last_seen_id === dm?.id, 10_000);
  await settled(ctx, identity);
  const messages = await messagesOf(ctx, identity);
  assert.equal(
    messages.map((m) => m.message_id),
    [draft.message_id],
  );
});

test("deliver failures are replies: no recipient, unknown screen name, unknown draft, refused credentials", async (ctx) => {
  const { identity } = await account(ctx);
  await ctx.sup.start(identity.identity_id, input(identity));
  const noTo = newDraft(identity, { body_plain: "to nobody" });
  const unknown = newDraft(identity, { body_plain: "to a ghost", participants: [{ type: "To", address: "no_such_user" }] });
  await ctx.store.messages.create(noTo);
  await ctx.store.messages.create(unknown);
  const posted = ctx.x.sent.length;
  assert.match(String((await deliver(ctx, identity, noTo.message_id)).message), /has no recipient/);
  const ghost = await deliver(ctx, identity, unknown.message_id);
  assert.is(ghost.error, true);
  assert.match(String(ghost.message), /Could not find user with username/);
  assert.is((await ctx.store.messages.get(ctx.user.user_id, unknown.message_id))?.sending_since, null, "the claim is released after a failed send");
  assert.match(String((await deliver(ctx, identity, "no-such-draft")).message), /not found/);
  assert.is(ctx.x.sent.length, posted);

  // Refused credentials while delivering: the reply says so and the worker waits for new ones.
  await ctx.store.identities.update(ctx.user.user_id, identity.identity_id, () => ({ credentials: { access_token: "revoked" } }));
  const refused = await deliver(ctx, identity, unknown.message_id);
  assert.match(String(refused.message), /refused the credentials.*new credentials are needed/);
  await settled(ctx, identity, "needsCredentials");
});

test("an event the importer refuses stops the sync there and is retried with the same raw; given up after 5 refusals, listed", async (ctx) => {
  const { me, alice, identity } = await account(ctx);
  const ok1 = ctx.x.dm(alice, me, "fine");
  const poison = ctx.x.dm(alice, me, "poison");
  const ok2 = ctx.x.dm(alice, me, "fine again");
  await ctx.sup.start(identity.identity_id, input(identity));
  sync(ctx, identity);
  await waitFor("stopped at the poison", () => contextOf(ctx, identity).retry?.attempts === 1, 10_000);
  await settled(ctx, identity);
  const first = contextOf(ctx, identity);
  assert.is(first.last_seen_id, ok1.id, "the cursor stays before the refused event");
  assert.is(first.retry?.event_id, poison.id);
  assert.match(first.last_error?.message ?? "", /not imported: cannot digest this one; retried at the next sync/);
  assert.equal(
    (await messagesOf(ctx, identity)).map((m) => m.body_plain),
    ["fine"],
  );
  for (let attempt = 2; attempt <= 4; attempt++) {
    sync(ctx, identity);
    await waitFor(`attempt ${attempt}`, () => contextOf(ctx, identity).retry?.attempts === attempt, 10_000);
    assert.is(contextOf(ctx, identity).retry?.raw_msg_id, first.retry?.raw_msg_id, "the stored raw is reused");
    await settled(ctx, identity);
  }
  sync(ctx, identity);
  await waitFor("given up, the rest imported", async () => (await messagesOf(ctx, identity)).length === 2, 10_000);
  await settled(ctx, identity);
  const last = contextOf(ctx, identity);
  assert.is(last.last_seen_id, ok2.id);
  assert.is(last.retry, null);
  assert.equal(
    last.skipped.map((s) => s.event_id),
    [poison.id],
  );
  assert.match(last.skipped[0]?.reason ?? "", /given up after 5 attempts/);
});

test("a worker reloaded in the middle of a sync finishes it after its restart", async (ctx) => {
  const { me, alice, identity } = await account(ctx);
  for (let n = 0; n < 4; n++) ctx.x.dm(alice, me, `slow ${n}`);
  await ctx.sup.start(identity.identity_id, input(identity));
  ctx.importDelayMs = 150;
  try {
    sync(ctx, identity);
    await waitFor("some imported", () => (contextOf(ctx, identity).progress?.done ?? 0) >= 1, 10_000);
    await ctx.sup.reload(identity.identity_id, input(identity));
    await waitFor("all imported", async () => (await messagesOf(ctx, identity)).length === 4, 10_000);
    await settled(ctx, identity);
  } finally {
    ctx.importDelayMs = 0;
  }
  assert.is((await messagesOf(ctx, identity)).length, 4);
  // The stopped run quits after its import in flight; the restarted one goes on from the saved cursor.
  assert.ok((ctx.imports.get(identity.identity_id) ?? 0) <= 5, `imports: ${ctx.imports.get(identity.identity_id)}`);
});

test("a deleted identity ends its worker", async (ctx) => {
  const { identity } = await account(ctx);
  await ctx.sup.start(identity.identity_id, input(identity));
  await ctx.store.identities.markDeleted(ctx.user.user_id, identity.identity_id);
  sync(ctx, identity);
  await waitFor("worker removed", () => ctx.host.get(TWITTER_KIND, identity.identity_id) === undefined);
  assert.is(await ctx.fx.snapshots.load(TWITTER_KIND, identity.identity_id), null);
});

test.run();
