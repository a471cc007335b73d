// The IMAP bridge against a real Dovecot, on a real node: sync of new mail, incremental sync, a changed
// UIDVALIDITY, fullfetch, IDLE push, a wrong password (backoff, visible error, slower polling, disabled
// in the end), and the Sent-folder copy of a delivered draft.
import { execFileSync } from "node:child_process";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { NatsConnection } from "@nats-io/transport-node";
import { SMTPServer } from "smtp-server";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { newDraft } from "../../../actors/messages/new-draft.ts";
import type { Identity, Message } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { startTestDovecot, type TestDovecot } from "../../helpers/dovecot.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../../helpers/test-node.ts";
import { sleep, waitFor } from "../../helpers/wait.ts";

interface Context {
  nats: TestNats;
  dovecot: TestDovecot;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  userId: string;
  orders: { subject: string; payload: Record<string, unknown> }[];
  /** process_inbound requests seen on inboundSMTP, by identity. */
  imports: Map<string, number>;
}

const test = suite<Context>("IMAP worker");
// Dovecot delays each refused login from an address after the first by about 4.5 s: failures are slow.
const DISABLE_AFTER_MS = 8_000;

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.dovecot = await startTestDovecot();
  const config = testCaliopenConfig({ api: null, imap: { push: true, retry: { initialMs: 200, maxMs: 400, factor: 2, jitter: 0 }, slowDownAfterFailures: 2, disableAfterMs: DISABLE_AFTER_MS } });
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: "imap-node" });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  ctx.userId = (await createUser(ctx.store, { name: "alice", email: "alice@platform.test" })).user.user_id;
  ctx.orders = [];
  ctx.client.subscribe("identitiesWorker", {
    callback: (_err, msg) => {
      const decoded = decodeJson(msg.data);
      if (decoded.ok) ctx.orders.push({ subject: msg.subject, payload: decoded.value as Record<string, unknown> });
    },
  });
  ctx.imports = new Map();
  ctx.client.subscribe("inboundSMTP", {
    callback: (_err, msg) => {
      const decoded = decodeJson(msg.data);
      const remote = decoded.ok ? String((decoded.value as Record<string, unknown>).remote_id) : "";
      ctx.imports.set(remote, (ctx.imports.get(remote) ?? 0) + 1);
    },
  });
  await ctx.client.flush();
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.dovecot.stop();
  await ctx.nats.stop();
});

let mailboxes = 0;

/** A Dovecot account and the remote identity that syncs it. */
async function account(ctx: Context, options: { password?: string; outserver?: string } = {}): Promise<{ login: string; identity: Identity }> {
  const login = `box${++mailboxes}`;
  await ctx.dovecot.addUser(login, "secret");
  const identity = await ctx.store.identities.create({
    user_id: ctx.userId,
    type: "remote",
    protocol: "imap",
    identifier: `${login}@remote.test`,
    display_name: `Box ${mailboxes}`,
    infos: { inserver: ctx.dovecot.server, outserver: options.outserver ?? "127.0.0.1:1", poll_interval: "15" },
    credentials: { username: login, password: options.password ?? "secret" },
  });
  return { login, identity };
}

function mail(n: number, extra = ""): string {
  return `From: Sender ${n} <sender${n}@elsewhere.test>\r\nTo: someone@remote.test\r\nSubject: message ${n}\r\nMessage-ID: <m${n}-${Date.now()}-${Math.random()}@elsewhere.test>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n${extra}\r\nbody of message ${n}\r\n`;
}

function publish(ctx: Context, subject: string, order: string, identity: Identity): void {
  ctx.client.publish(subject, encodeJson({ order, remote_id: identity.identity_id, user_id: identity.user_id }));
}

async function messagesOf(ctx: Context, identity: Identity): Promise<Message[]> {
  const page = await ctx.store.messages.list(ctx.userId, { limit: 500 });
  return page.items.filter((message) => message.user_identities.includes(identity.identity_id));
}

function worker(ctx: Context, identity: Identity) {
  return ctx.node.host.get("imap", identity.identity_id);
}

function context(ctx: Context, identity: Identity): Record<string, any> {
  return (worker(ctx, identity)?.inspect().context ?? {}) as Record<string, any>;
}

async function serverFlags(ctx: Context, login: string): Promise<string[][]> {
  const imap = await ctx.dovecot.client(login, "secret");
  const lock = await imap.getMailboxLock("INBOX");
  try {
    const flags: string[][] = [];
    // \Recent belongs to the session that first sees a message: not something a sync sets.
    for await (const message of imap.fetch("1:*", { flags: true })) flags.push([...(message.flags ?? [])].filter((flag) => flag !== "\\Recent").sort());
    return flags;
  } finally {
    lock.release();
    await imap.logout();
  }
}

test("add_worker and sync: new mail becomes stored messages, unread, with imported flags, never \\Seen on the server", async (ctx) => {
  const { login, identity } = await account(ctx);
  await ctx.dovecot.append(login, "secret", mail(1), { flags: ["\\Flagged"] });
  await ctx.dovecot.append(login, "secret", mail(2));
  await ctx.dovecot.append(login, "secret", mail(3), { flags: ["$label1", "\\Seen"] });
  publish(ctx, "imap_worker", "add_worker", identity);
  publish(ctx, "IMAPfetcher", "sync", identity);
  await waitFor("3 messages stored", async () => (await messagesOf(ctx, identity)).length === 3, 10_000);
  const messages = await messagesOf(ctx, identity);
  assert.equal(messages.map((m) => m.subject).sort(), ["message 1", "message 2", "message 3"]);
  assert.ok(messages.every((m) => m.is_unread && m.is_received && !m.is_draft));
  assert.equal(messages.find((m) => m.subject === "message 1")?.tags, ["flagged"]);
  assert.equal(messages.find((m) => m.subject === "message 3")?.tags, ["$label1"], "\\Seen is not a tag");
  await waitFor("cursor saved", () => context(ctx, identity).cursor?.lastseenuid === 3);
  assert.equal(await serverFlags(ctx, login), [["\\Flagged"], [], ["$label1", "\\Seen"]].map((flags) => flags.sort()), "nothing marked \\Seen by the sync");
  const infos = (await ctx.store.identities.get(ctx.userId, identity.identity_id))?.infos;
  assert.ok(infos?.last_sync, "last sync shown on the identity");
});

test("a later sync imports only what is new; a sync during a sync is coalesced", async (ctx) => {
  const { login, identity } = await account(ctx);
  for (let n = 1; n <= 3; n++) await ctx.dovecot.append(login, "secret", mail(n));
  publish(ctx, "imap_worker", "add_worker", identity);
  publish(ctx, "IMAPfetcher", "sync", identity);
  await waitFor("3 stored", async () => (await messagesOf(ctx, identity)).length === 3, 10_000);
  await waitFor("idle", () => JSON.stringify(worker(ctx, identity)?.summary().state).includes('"sync":"idle"'));
  for (let n = 4; n <= 5; n++) await ctx.dovecot.append(login, "secret", mail(n));
  // Three syncs at once: one runs, the others make at most one more run.
  publish(ctx, "IMAPfetcher", "sync", identity);
  publish(ctx, "IMAPfetcher", "sync", identity);
  publish(ctx, "IMAPfetcher", "sync", identity);
  await waitFor("5 stored", async () => (await messagesOf(ctx, identity)).length === 5, 10_000);
  await waitFor("idle again", () => JSON.stringify(worker(ctx, identity)?.summary().state).includes('"sync":"idle"'));
  await sleep(500);
  assert.is((await messagesOf(ctx, identity)).length, 5, "no duplicates");
  assert.is(context(ctx, identity).cursor.lastseenuid, 5);
});

test("a changed UIDVALIDITY makes the next sync fetch everything again, without duplicates", async (ctx) => {
  const { login, identity } = await account(ctx);
  for (let n = 1; n <= 2; n++) await ctx.dovecot.append(login, "secret", mail(n));
  publish(ctx, "imap_worker", "add_worker", identity);
  publish(ctx, "IMAPfetcher", "sync", identity);
  await waitFor("2 stored", async () => (await messagesOf(ctx, identity)).length === 2, 10_000);
  await waitFor("idle", () => JSON.stringify(worker(ctx, identity)?.summary().state).includes('"sync":"idle"'));
  const before = context(ctx, identity).cursor.uidvalidity as string;
  const importsBefore = ctx.imports.get(identity.identity_id) ?? 0;
  execFileSync("doveadm", ["-c", `${ctx.dovecot.dir}/dovecot.conf`, "mailbox", "update", "-u", login, "--uid-validity", "4242", "INBOX"]);
  await ctx.dovecot.append(login, "secret", mail(3));
  publish(ctx, "IMAPfetcher", "sync", identity);
  await waitFor("new uidvalidity taken", () => context(ctx, identity).cursor?.uidvalidity === "4242", 10_000);
  assert.is.not(before, "4242");
  await waitFor("3 stored", async () => (await messagesOf(ctx, identity)).length === 3, 10_000);
  await waitFor("all of the mailbox imported again", () => (ctx.imports.get(identity.identity_id) ?? 0) - importsBefore === 3);
  await sleep(300);
  assert.is((ctx.imports.get(identity.identity_id) ?? 0) - importsBefore, 3, "each message once");
  assert.is((await messagesOf(ctx, identity)).length, 3, "no duplicates");
});

test("fullfetch fetches every message again with visible progress; imports are de-duplicated", async (ctx) => {
  const { login, identity } = await account(ctx);
  for (let n = 1; n <= 4; n++) await ctx.dovecot.append(login, "secret", mail(n));
  publish(ctx, "imap_worker", "add_worker", identity);
  publish(ctx, "IMAPfetcher", "sync", identity);
  await waitFor("4 stored", async () => (await messagesOf(ctx, identity)).length === 4, 10_000);
  await waitFor("idle", () => JSON.stringify(worker(ctx, identity)?.summary().state).includes('"sync":"idle"'));
  const importsBefore = ctx.imports.get(identity.identity_id) ?? 0;
  publish(ctx, "IMAPfetcher", "fullfetch", identity);
  await waitFor("every message imported again", () => (ctx.imports.get(identity.identity_id) ?? 0) - importsBefore === 4, 10_000);
  const run = await waitFor("the fullfetch in the history", () => (context(ctx, identity).history as { mode: string; total: number; done: number }[]).find((r) => r.mode === "fullfetch"));
  assert.is(run.total, 4);
  assert.is(run.done, 4);
  assert.is((await messagesOf(ctx, identity)).length, 4);
  assert.is(context(ctx, identity).cursor.lastseenuid, 4, "the incremental cursor keeps its place");
});

test("with push on, mail APPENDed to the mailbox is stored within seconds, without any sync order", async (ctx) => {
  const { login, identity } = await account(ctx);
  publish(ctx, "imap_worker", "add_worker", identity);
  publish(ctx, "IMAPfetcher", "sync", identity);
  await waitFor("watching after the first sync", () => JSON.stringify(worker(ctx, identity)?.summary().state ?? "").includes('"push":"watching"'), 10_000);
  await sleep(500);
  const appendedAt = Date.now();
  await ctx.dovecot.append(login, "secret", mail(7));
  await waitFor("pushed mail stored", async () => (await messagesOf(ctx, identity)).length === 1, 10_000, 50);
  assert.ok(Date.now() - appendedAt < 8_000, `stored ${Date.now() - appendedAt} ms after the APPEND`);
});

test("a wrong password: backoff with the error visible, no push connection, slower polling asked, and after too long the identity is disabled", async (ctx) => {
  const { identity } = await account(ctx, { password: "wrong" });
  publish(ctx, "imap_worker", "add_worker", identity);
  publish(ctx, "IMAPfetcher", "sync", identity);
  await waitFor("backing off", () => JSON.stringify(worker(ctx, identity)?.summary().state ?? "").includes("backingOff"), 10_000);
  const seen = context(ctx, identity);
  assert.match(seen.last_error.message, /login refused/i);
  assert.ok(worker(ctx, identity)?.summary().deadlines["retry.due"], "the next retry is visible");
  assert.not.match(JSON.stringify(worker(ctx, identity)?.inspect()), /wrong/, "the password is not in debug output");
  assert.ok(JSON.stringify(worker(ctx, identity)?.summary().state).includes('"push":"waiting"'), "no push connection with a password that fails");
  await waitFor("error on the identity", async () => /login refused/i.test(String((await ctx.store.identities.get(ctx.userId, identity.identity_id))?.infos.last_error?.message)));

  const slower = await waitFor("update_interval", () => ctx.orders.find((o) => o.payload.order === "update_interval" && o.payload.identity_id === identity.identity_id), 15_000);
  assert.equal(slower.payload, { order: "update_interval", identity_id: identity.identity_id, user_id: ctx.userId, poll_intervall: "30", protocol: "imap" });

  const disabled = await waitFor("delete_identity", () => ctx.orders.find((o) => o.payload.order === "delete_identity" && o.payload.identity_id === identity.identity_id), DISABLE_AFTER_MS + 5_000);
  assert.equal(disabled.payload, { order: "delete_identity", identity_id: identity.identity_id, user_id: ctx.userId });
  await waitFor("identity inactive", async () => (await ctx.store.identities.get(ctx.userId, identity.identity_id))?.status === "inactive");
  // The identities worker's poller (started by update_interval) retires the bridge's worker on delete_identity.
  await waitFor("worker removed", () => worker(ctx, identity) === undefined, 5_000);
});

test("deliver on outboundIMAP: sent through the account's own SMTP server, then filed as \\Seen in its Sent mailbox", async (ctx) => {
  const received: { from: string; to: string[]; user: string; data: string }[] = [];
  const smtp = new SMTPServer({
    authOptional: false,
    allowInsecureAuth: true,
    disabledCommands: ["STARTTLS"],
    onAuth: (auth, _session, callback) => (auth.password === "secret" ? callback(null, { user: auth.username }) : callback(new Error("bad password"))),
    onData: (stream, session, callback) => {
      let data = "";
      stream.on("data", (chunk: Buffer) => (data += chunk.toString()));
      stream.on("end", () => {
        received.push({ from: String(session.envelope.mailFrom && session.envelope.mailFrom.address), to: session.envelope.rcptTo.map((r) => r.address), user: String(session.user), data });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", resolve));
  const port = (smtp.server.address() as { port: number }).port;
  try {
    const { login, identity } = await account(ctx, { outserver: `127.0.0.1:${port}` });
    publish(ctx, "imap_worker", "add_worker", identity);
    await waitFor("worker up", () => worker(ctx, identity) !== undefined);
    const draft = await ctx.store.messages.create(newDraft(identity, { subject: "from my own account", body_plain: "hello there", participants: [{ type: "To", address: "friend@elsewhere.test" }] }));
    const reply = decodeJson((await ctx.client.request("outboundIMAP", encodeJson({ order: "deliver", message_id: draft.message_id, remote_id: identity.identity_id, user_id: ctx.userId }), { timeout: 15_000 })).data);
    assert.ok(reply.ok);
    const answer = reply.value as { error: boolean; message: string; sent_copy: string };
    assert.is(answer.error, false, answer.message);
    assert.is(answer.sent_copy, "Sent");
    assert.is(received.length, 1);
    assert.is(received[0]?.user, login, "logged in to the account's SMTP server");
    assert.equal(received[0]?.to, ["friend@elsewhere.test"]);

    const imap = await ctx.dovecot.client(login, "secret");
    const lock = await imap.getMailboxLock("Sent");
    try {
      const copies = [];
      for await (const message of imap.fetch("1:*", { flags: true, envelope: true })) copies.push(message);
      assert.is(copies.length, 1);
      assert.is(copies[0]?.envelope?.subject, "from my own account");
      assert.ok(copies[0]?.flags?.has("\\Seen"));
    } finally {
      lock.release();
      await imap.logout();
    }
    const sent = await ctx.store.messages.get(ctx.userId, draft.message_id);
    assert.is(sent?.is_draft, false);
  } finally {
    await new Promise<void>((resolve) => smtp.close(() => resolve()));
  }
});

test("remove_worker stops the worker and drops its state", async (ctx) => {
  const { identity } = await account(ctx);
  publish(ctx, "imap_worker", "add_worker", identity);
  await waitFor("worker up", () => worker(ctx, identity) !== undefined);
  publish(ctx, "imap_worker", "remove_worker", identity);
  await waitFor("worker gone", () => worker(ctx, identity) === undefined);
});

test.run();
