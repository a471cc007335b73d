// Flags both ways against a real Dovecot, on a real node: what is changed on the server (\Seen, \Flagged,
// keywords, a message expunged, moved to Trash or to another followed folder) reaches the stored messages
// at the next sync, found through CONDSTORE; what is changed here (read, flagged, tags, deleted) reaches
// the server through the account's imap worker, checked there with an IMAP client; a change made while
// the server is away waits in the worker's state and is carried once it is back.
import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ImapFlow } from "imapflow";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import type { ImapWorkerContext } from "../../../actors/imap/imap-worker-state.ts";
import { MAX_PENDING_CHANGES } from "../../../actors/imap/pending-changes.ts";
import type { Identity, Message } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { encodeJson } from "../../../runtime/json.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { startTestDovecot, type TestDovecot } from "../../../scripts/local-servers/dovecot.ts";
import { makeTestCertificates, type TestCertificates } from "../../../scripts/local-servers/tls-certs.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig, testDestinations } from "../../helpers/test-node.ts";
import { type CountingProxy, startCountingProxy } from "./counting-proxy.ts";

interface Context {
  nats: TestNats;
  certs: TestCertificates;
  dovecot: TestDovecot;
  /** In front of Dovecot for the account whose server goes away. */
  proxy: CountingProxy;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  userId: string;
}

const test = suite<Context>("IMAP flags both ways");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.certs = await makeTestCertificates();
  const { certs } = ctx;
  ctx.dovecot = await startTestDovecot({ tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca } });
  ctx.proxy = await startCountingProxy(ctx.dovecot);
  const config = testCaliopenConfig({
    api: null,
    destinations: testDestinations([ctx.dovecot.server, ctx.proxy.server], [await certs.caPem()]),
    imap: { push: false, retry: { initialMs: 300, maxMs: 600, factor: 2, jitter: 0 } },
  });
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: "flags-node" });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  ctx.userId = (await createUser(ctx.store, { name: "gus", email: "gus@platform.test" })).user.user_id;
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.proxy.stop();
  await ctx.dovecot.stop();
  await ctx.certs.remove();
  await ctx.nats.stop();
});

let accounts = 0;

async function account(ctx: Context, inserver = ctx.dovecot.server): Promise<{ login: string; identity: Identity }> {
  const login = `flags${++accounts}`;
  const identity = await ctx.store.identities.create({
    user_id: ctx.userId,
    type: "remote",
    protocol: "imap",
    identifier: `${login}@remote.test`,
    display_name: login,
    infos: { inserver, outserver: "127.0.0.1:1", poll_interval: "15" },
    credentials: { username: login, password: "secret" },
  });
  return { login, identity };
}

function mail(subject: string): string {
  return `From: Someone <someone@elsewhere.test>\r\nTo: me@remote.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, "-")}-${Date.now()}-${Math.random()}@elsewhere.test>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nbody of ${subject}\r\n`;
}

async function onServer<T>(ctx: Context, login: string, work: (imap: ImapFlow) => Promise<T>): Promise<T> {
  const imap = await ctx.dovecot.client(login, "secret");
  try {
    return await work(imap);
  } finally {
    await imap.logout();
  }
}

/** Each message of a folder on the server: its subject and flags (without \Recent). */
async function serverFolder(ctx: Context, login: string, path: string): Promise<Map<string, string[]>> {
  return onServer(ctx, login, async (imap) => {
    const lock = await imap.getMailboxLock(path, { readOnly: true });
    try {
      const found = new Map<string, string[]>();
      for await (const row of imap.fetch("1:*", { envelope: true, flags: true })) {
        found.set(row.envelope?.subject ?? "", [...(row.flags ?? [])].filter((flag) => flag !== "\\Recent").sort());
      }
      return found;
    } catch {
      return new Map();
    } finally {
      lock.release();
    }
  });
}

function order(ctx: Context, identity: Identity, name: string, extra: Record<string, string> = {}): void {
  ctx.client.publish("IMAPfetcher", encodeJson({ order: name, remote_id: identity.identity_id, user_id: identity.user_id, ...extra }));
}

function context(ctx: Context, identity: Identity): Partial<ImapWorkerContext> {
  return (ctx.node.host.get("imap", identity.identity_id)?.inspect().context ?? {}) as Partial<ImapWorkerContext>;
}

async function syncAndWait(ctx: Context, identity: Identity) {
  const runs = context(ctx, identity).history?.length ?? 0;
  order(ctx, identity, "sync");
  return waitFor(
    "the sync finished",
    () => {
      const history = context(ctx, identity).history ?? [];
      return history.length > runs && history[0]?.outcome === "done" && history[0].mode === "sync" ? history[0] : undefined;
    },
    20_000,
  );
}

async function bySubject(ctx: Context, identity: Identity): Promise<Map<string, Message>> {
  const page = await ctx.store.messages.list(ctx.userId, { limit: 500 });
  return new Map(page.items.filter((message) => message.user_identities.includes(identity.identity_id)).map((message) => [message.subject, message]));
}

async function started(ctx: Context, login: string, identity: Identity, subjects: string[]): Promise<Map<string, Message>> {
  await onServer(ctx, login, async (imap) => {
    await imap.mailboxCreate("Archive");
    for (const subject of subjects) await imap.append("INBOX", mail(subject), []);
  });
  ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: identity.identity_id, user_id: identity.user_id }));
  await syncAndWait(ctx, identity);
  return bySubject(ctx, identity);
}

test("changed on the server: \\Seen, \\Flagged and keywords reach the messages at the next sync (CONDSTORE); tags set here stay", async (ctx) => {
  const { login, identity } = await account(ctx);
  const before = await started(ctx, login, identity, ["one", "two", "three"]);
  assert.ok([...before.values()].every((message) => message.is_unread && message.is_flagged === false));
  await ctx.store.messages.update(ctx.userId, before.get("three")?.message_id ?? "", (message) => ({ ...message, tags: ["mine"] }));

  await onServer(ctx, login, async (imap) => {
    const lock = await imap.getMailboxLock("INBOX");
    try {
      await imap.messageFlagsAdd("1", ["\\Seen"], { uid: true });
      await imap.messageFlagsAdd("2", ["\\Flagged"], { uid: true });
      await imap.messageFlagsAdd("3", ["Work"], { uid: true });
    } finally {
      lock.release();
    }
  });
  const run = await syncAndWait(ctx, identity);
  assert.equal(run.server_changes, { method: "condstore", changed: 3, expunged: 0, deleted: 0 }, "the history shows how the changes were found");
  const after = await bySubject(ctx, identity);
  assert.equal([after.get("one")?.is_unread, after.get("two")?.is_unread], [false, true]);
  assert.equal([after.get("two")?.is_flagged, after.get("two")?.tags], [true, ["flagged"]]);
  assert.equal(after.get("three")?.tags, ["mine", "Work"], "the user's own tag stays, the keyword is added");

  // Taken off on the server: taken off here.
  await onServer(ctx, login, async (imap) => {
    const lock = await imap.getMailboxLock("INBOX");
    try {
      await imap.messageFlagsRemove("1", ["\\Seen"], { uid: true });
      await imap.messageFlagsRemove("3", ["Work"], { uid: true });
    } finally {
      lock.release();
    }
  });
  await syncAndWait(ctx, identity);
  const again = await bySubject(ctx, identity);
  assert.equal([again.get("one")?.is_unread, again.get("three")?.tags], [true, ["mine"]]);
  // Nothing changed since: the folder is not even opened.
  const quiet = await syncAndWait(ctx, identity);
  assert.is(quiet.server_changes, undefined);
});

test("gone on the server: expunged or moved to Trash → deleted here; moved to another followed folder → the same message, in its new folder", async (ctx) => {
  const { login, identity } = await account(ctx);
  const before = await started(ctx, login, identity, ["stays", "expunged", "trashed", "archived"]);
  await onServer(ctx, login, async (imap) => {
    const lock = await imap.getMailboxLock("INBOX");
    try {
      await imap.messageDelete("2", { uid: true });
      await imap.messageMove("3", "Trash", { uid: true });
      await imap.messageMove("4", "Archive", { uid: true });
    } finally {
      lock.release();
    }
  });
  const run = await syncAndWait(ctx, identity);
  assert.equal(run.server_changes?.expunged, 3);
  assert.equal(run.server_changes?.deleted, 2);
  const after = await bySubject(ctx, identity);
  assert.equal([...after.keys()].sort(), ["archived", "stays"]);
  const archived = after.get("archived");
  assert.is(archived?.message_id, before.get("archived")?.message_id, "one message: moved, not copied");
  assert.equal(
    archived?.locations?.map((location) => location.mailbox),
    ["Archive"],
  );
});

test("changed here: read, flagged, tags and a deletion reach the server through the imap worker", async (ctx) => {
  const { login, identity } = await account(ctx);
  const messages = await started(ctx, login, identity, ["read me", "flag me", "tag me", "delete me"]);
  const id = (subject: string) => messages.get(subject)?.message_id ?? "";
  const change = async (subject: string, fields: Partial<Message>) => {
    await ctx.store.messages.update(ctx.userId, id(subject), (message) => ({ ...message, ...fields }));
    order(ctx, identity, "store_flags", { message_id: id(subject) });
  };
  await change("read me", { is_unread: false });
  await change("flag me", { is_flagged: true, tags: ["flagged"] });
  await change("tag me", { tags: ["Receipts", "has space"] });
  order(ctx, identity, "move_to_trash", { message_id: id("delete me") });
  await waitFor(
    "the changes applied",
    () => (context(ctx, identity).history ?? []).some((run) => run.changes_applied !== undefined) && context(ctx, identity).pending_changes?.length === 0,
    15_000,
  );
  await waitFor("the deleted message gone here", async () => !(await bySubject(ctx, identity)).has("delete me"), 10_000);

  const inbox = await serverFolder(ctx, login, "INBOX");
  assert.equal(inbox.get("read me"), ["\\Seen"]);
  assert.equal(inbox.get("flag me"), ["\\Flagged"], "\\Flagged, not a keyword 'flagged'");
  assert.equal(inbox.get("tag me"), ["Receipts"], "a tag that cannot be a keyword stays here");
  assert.not.ok(inbox.has("delete me"));
  assert.ok((await serverFolder(ctx, login, "Trash")).has("delete me"), "moved to the Trash");

  // The next sync sees its own changes as they are: nothing flips back.
  await syncAndWait(ctx, identity);
  const after = await bySubject(ctx, identity);
  assert.equal([after.get("read me")?.is_unread, after.get("flag me")?.is_flagged, after.get("tag me")?.tags], [false, true, ["Receipts", "has space"]]);
});

test("a change made while the server is away waits in the worker's state, and reaches the server once it is back", async (ctx) => {
  const { login, identity } = await account(ctx, ctx.proxy.server);
  const messages = await started(ctx, login, identity, ["later"]);
  const messageId = messages.get("later")?.message_id ?? "";
  ctx.proxy.refuse(true);
  await ctx.store.messages.update(ctx.userId, messageId, (message) => ({ ...message, is_unread: false }));
  order(ctx, identity, "store_flags", { message_id: messageId });
  await waitFor(
    "backing off with the change kept",
    () => {
      const state = JSON.stringify(ctx.node.host.get("imap", identity.identity_id)?.summary().state ?? "");
      return state.includes("backingOff") && context(ctx, identity).pending_changes?.length === 1;
    },
    15_000,
  );
  assert.equal((await serverFolder(ctx, login, "INBOX")).get("later"), [], "not on the server yet");
  await sleep(800);
  assert.is(context(ctx, identity).pending_changes?.[0]?.message_id, messageId, "still waiting after a failed retry");
  ctx.proxy.refuse(false);
  await waitFor("applied once the server is back", () => context(ctx, identity).pending_changes?.length === 0, 15_000);
  assert.equal((await serverFolder(ctx, login, "INBOX")).get("later"), ["\\Seen"]);
});

test(`changes pile up for a server away: at most ${MAX_PENDING_CHANGES} wait, the rest are refused as dead letters; the queue empties once it is back`, async (ctx) => {
  const { login, identity } = await account(ctx, ctx.proxy.server);
  await started(ctx, login, identity, ["queued"]);
  ctx.proxy.refuse(true);
  for (let n = 0; n < MAX_PENDING_CHANGES + 20; n++) order(ctx, identity, "store_flags", { message_id: randomUUID() });
  await waitFor(`${MAX_PENDING_CHANGES} waiting`, () => context(ctx, identity).pending_changes?.length === MAX_PENDING_CHANGES, 20_000);
  await sleep(500);
  assert.is(context(ctx, identity).pending_changes?.length, MAX_PENDING_CHANGES, "no more than the bound");
  ctx.proxy.refuse(false);
  // Messages that do not exist: nothing to carry, each taken off the queue.
  await waitFor("the queue emptied", () => context(ctx, identity).pending_changes?.length === 0, 20_000);
});

test.run();
