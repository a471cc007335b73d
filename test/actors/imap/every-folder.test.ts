// Every folder of an IMAP account against a real Dovecot, on a real node: each folder synced with its own
// cursor, Sent mail stored as the user's, Trash and Junk left out unless asked for, one message however
// many folders hold it (each recorded on it), folders created, renamed and deleted on the server found at
// the next sync (a renamed one is not fetched again), the identity's include/exclude setting, new mail
// heard by the watch syncing INBOX alone, and a server listing more folders than a worker follows.
import { execFileSync } from "node:child_process";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { type FolderCursor, MAX_FOLDERS } from "../../../actors/imap/account-folders.ts";
import type { ImapWorkerContext } from "../../../actors/imap/imap-worker-state.ts";
import type { Identity, IdentityInfos, Message } from "../../../actors/store/model.ts";
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

interface Context {
  nats: TestNats;
  certs: TestCertificates;
  dovecot: TestDovecot;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  userId: string;
}

const test = suite<Context>("IMAP every folder");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.certs = await makeTestCertificates();
  const { certs } = ctx;
  ctx.dovecot = await startTestDovecot({ tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca } });
  const config = testCaliopenConfig({
    api: null,
    destinations: testDestinations([ctx.dovecot.server], [await certs.caPem()]),
    imap: { push: true, retry: { initialMs: 200, maxMs: 400, factor: 2, jitter: 0 } },
  });
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: "folders-node" });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  ctx.userId = (await createUser(ctx.store, { name: "fiona", email: "fiona@platform.test" })).user.user_id;
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.dovecot.stop();
  await ctx.certs.remove();
  await ctx.nats.stop();
});

let accounts = 0;

async function account(ctx: Context, infos: Partial<IdentityInfos> = {}): Promise<{ login: string; identity: Identity }> {
  const login = `folders${++accounts}`;
  const identity = await ctx.store.identities.create({
    user_id: ctx.userId,
    type: "remote",
    protocol: "imap",
    identifier: `${login}@remote.test`,
    display_name: login,
    infos: { inserver: ctx.dovecot.server, outserver: "127.0.0.1:1", poll_interval: "15", ...infos },
    credentials: { username: login, password: "secret" },
  });
  return { login, identity };
}

function mail(subject: string, messageId = `${subject.replace(/\W/g, "-")}-${Date.now()}-${Math.random()}@elsewhere.test`): string {
  return `From: Someone <someone@elsewhere.test>\r\nTo: me@remote.test\r\nSubject: ${subject}\r\nMessage-ID: <${messageId}>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nbody of ${subject}\r\n`;
}

async function onServer(ctx: Context, login: string, work: (imap: Awaited<ReturnType<TestDovecot["client"]>>) => Promise<void>): Promise<void> {
  const imap = await ctx.dovecot.client(login, "secret");
  try {
    await work(imap);
  } finally {
    await imap.logout();
  }
}

function sync(ctx: Context, identity: Identity, order = "sync"): void {
  ctx.client.publish("IMAPfetcher", encodeJson({ order, remote_id: identity.identity_id, user_id: identity.user_id }));
}

function context(ctx: Context, identity: Identity): Partial<ImapWorkerContext> {
  return (ctx.node.host.get("imap", identity.identity_id)?.inspect().context ?? {}) as Partial<ImapWorkerContext>;
}

/** Waits for the run after `runsBefore` runs to finish, and returns it. */
async function nextRun(ctx: Context, identity: Identity, runsBefore: number) {
  return waitFor(
    "the next sync finished",
    () => {
      const history = context(ctx, identity).history ?? [];
      return history.length > runsBefore && history[0]?.outcome === "done" ? history[0] : undefined;
    },
    20_000,
  );
}

async function messagesBySubject(ctx: Context, identity: Identity): Promise<Map<string, Message>> {
  const page = await ctx.store.messages.list(ctx.userId, { limit: 500 });
  return new Map(page.items.filter((message) => message.user_identities.includes(identity.identity_id)).map((message) => [message.subject, message]));
}

function folderPaths(ctx: Context, identity: Identity): string[] {
  return (context(ctx, identity).folders ?? []).map((folder) => folder.path);
}

function cursorOf(ctx: Context, identity: Identity, path: string): FolderCursor | undefined {
  return context(ctx, identity).folders?.find((folder) => folder.path === path);
}

/** The first sync of a new account's worker. */
async function firstSync(ctx: Context, identity: Identity) {
  ctx.client.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: identity.identity_id, user_id: identity.user_id }));
  sync(ctx, identity);
  return nextRun(ctx, identity, 0);
}

test("every folder but Trash and Junk, each with its own cursor; Sent mail is the user's; a mail in two folders is one message, in both", async (ctx) => {
  const { login, identity } = await account(ctx);
  const shared = mail("in INBOX and Archive", "shared-one@elsewhere.test");
  await onServer(ctx, login, async (imap) => {
    await imap.mailboxCreate("Archive");
    await imap.mailboxCreate(["Archive", "2025"]);
    await imap.append("INBOX", mail("unread in INBOX"), []);
    await imap.append("INBOX", mail("read in INBOX"), ["\\Seen"]);
    await imap.append("INBOX", shared, []);
    await imap.append("Archive", shared, ["\\Seen"]);
    await imap.append("Archive", mail("archived"), ["\\Seen", "\\Flagged"]);
    await imap.append("Archive/2025", mail("archived in 2025"), ["\\Seen"]);
    await imap.append("Sent", mail("sent by me"), ["\\Seen"]);
    await imap.append("Trash", mail("thrown away"), []);
    await imap.append("Junk", mail("spam"), []);
  });
  const run = await firstSync(ctx, identity);
  assert.equal([run.total, run.done, run.failed], [7, 7, 0], "seven messages in the folders followed, the shared one fetched from each");
  assert.equal(folderPaths(ctx, identity), ["INBOX", "Archive", "Archive/2025", "Drafts", "Sent"], "INBOX first, Trash and Junk left out");
  assert.equal(cursorOf(ctx, identity, "Sent")?.special_use, "\\Sent");
  assert.is(cursorOf(ctx, identity, "Archive")?.lastseenuid, 2);
  assert.is(cursorOf(ctx, identity, "INBOX")?.lastseenuid, 3);

  const messages = await messagesBySubject(ctx, identity);
  assert.equal([...messages.keys()].sort(), ["archived", "archived in 2025", "in INBOX and Archive", "read in INBOX", "sent by me", "unread in INBOX"]);
  const sharedMessage = messages.get("in INBOX and Archive");
  assert.equal(
    sharedMessage?.locations?.map((location) => [location.mailbox, location.uid]).sort(),
    [
      ["Archive", 1],
      ["INBOX", 3],
    ],
    "one message, in both folders",
  );
  assert.equal(
    messages.get("archived in 2025")?.locations?.map(({ identity_id, mailbox, uid }) => ({ identity_id, mailbox, uid })),
    [{ identity_id: identity.identity_id, mailbox: "Archive/2025", uid: 1 }],
  );
  const sent = messages.get("sent by me");
  assert.equal([sent?.is_received, sent?.is_unread], [false, false], "mail of the Sent folder is the user's own, and read");
  assert.equal(
    [messages.get("unread in INBOX")?.is_unread, messages.get("read in INBOX")?.is_unread, messages.get("archived")?.is_unread],
    [true, false, false],
    "\\Seen on the server: read here",
  );
  assert.equal(messages.get("archived")?.tags, ["flagged"]);

  // Nothing new: the next sync opens no folder (their STATUS says so) and imports nothing.
  const runs = context(ctx, identity).history?.length ?? 0;
  sync(ctx, identity);
  const again = await nextRun(ctx, identity, runs);
  assert.equal([again.total, again.done], [0, 0]);
  assert.is(again.folder_changes, undefined, "no folder changed");
});

test("folders created, renamed and deleted on the server are found at the next sync; a renamed folder is not fetched again", async (ctx) => {
  const { login, identity } = await account(ctx);
  await onServer(ctx, login, async (imap) => {
    await imap.mailboxCreate("Projects");
    await imap.mailboxCreate("Old");
    await imap.append("Projects", mail("project 1"), []);
    await imap.append("Projects", mail("project 2"), []);
    await imap.append("Old", mail("old stuff"), []);
  });
  await firstSync(ctx, identity);
  assert.equal(folderPaths(ctx, identity), ["INBOX", "Drafts", "Old", "Projects", "Sent"]);
  const projects = cursorOf(ctx, identity, "Projects");

  await onServer(ctx, login, async (imap) => {
    await imap.mailboxRename("Projects", "Work");
    await imap.mailboxDelete("Old");
    await imap.mailboxCreate("Receipts");
    await imap.append("Receipts", mail("receipt"), []);
    await imap.append("Work", mail("project 3"), []);
  });
  const runs = context(ctx, identity).history?.length ?? 0;
  sync(ctx, identity);
  const run = await nextRun(ctx, identity, runs);
  assert.equal(run.folder_changes, { added: ["Receipts"], renamed: [{ from: "Projects", to: "Work" }], removed: ["Old"], more: 0, left_out: 0 });
  assert.equal([run.total, run.done], [2, 2], "the receipt and the new project mail only: the renamed folder's mail is not fetched again");
  assert.equal(folderPaths(ctx, identity), ["INBOX", "Drafts", "Receipts", "Sent", "Work"]);
  const work = cursorOf(ctx, identity, "Work");
  assert.equal([work?.uidvalidity, work?.lastseenuid], [projects?.uidvalidity, 3], "the renamed folder kept its cursor");
  const messages = await messagesBySubject(ctx, identity);
  assert.equal([...messages.keys()].sort(), ["old stuff", "project 1", "project 2", "project 3", "receipt"], "a deleted folder's messages stay");
  assert.is(messages.get("project 3")?.locations?.[0]?.mailbox, "Work");
});

test("infos.mailboxes: include only some folders, or exclude some (a path covers its subfolders; \\Sent names the Sent folder)", async (ctx) => {
  const seed = async (login: string) =>
    onServer(ctx, login, async (imap) => {
      await imap.mailboxCreate("Lists");
      await imap.mailboxCreate(["Lists", "dev"]);
      await imap.append("INBOX", mail("inbox"), []);
      await imap.append("Lists/dev", mail("dev list"), []);
      await imap.append("Sent", mail("sent"), []);
      await imap.append("Trash", mail("trash"), []);
    });
  const only = await account(ctx, { mailboxes: { include: ["\\Trash", "Lists"] } });
  await seed(only.login);
  await firstSync(ctx, only.identity);
  assert.equal(folderPaths(ctx, only.identity), ["INBOX", "Lists", "Lists/dev", "Trash"], "INBOX always; Trash when asked for");
  assert.equal([...(await messagesBySubject(ctx, only.identity)).keys()].sort(), ["dev list", "inbox", "trash"]);

  const without = await account(ctx, { mailboxes: { exclude: ["Lists", "\\Sent", "\\Trash", "\\Junk"] } });
  await seed(without.login);
  await firstSync(ctx, without.identity);
  assert.equal(folderPaths(ctx, without.identity), ["INBOX", "Drafts"]);
  assert.equal([...(await messagesBySubject(ctx, without.identity)).keys()], ["inbox"]);

  // The setting changes: the next sync follows it (a folder left out is forgotten, one let in starts).
  await ctx.store.identities.updateInfos(ctx.userId, without.identity.identity_id, { mailboxes: null });
  const runs = context(ctx, without.identity).history?.length ?? 0;
  sync(ctx, without.identity);
  const run = await nextRun(ctx, without.identity, runs);
  assert.equal(run.folder_changes?.added, ["Lists", "Lists/dev", "Sent"]);
  assert.equal([...(await messagesBySubject(ctx, without.identity)).keys()].sort(), ["dev list", "inbox", "sent"]);
});

test("new mail heard by the watch syncs INBOX alone; other folders follow the poll", async (ctx) => {
  const { login, identity } = await account(ctx);
  await firstSync(ctx, identity);
  await waitFor("watching", () => JSON.stringify(ctx.node.host.get("imap", identity.identity_id)?.summary().state ?? "").includes('"push":"watching"'), 10_000);
  await sleep(300);
  await onServer(ctx, login, async (imap) => {
    await imap.append("Sent", mail("sent elsewhere"), ["\\Seen"]);
    await imap.append("INBOX", mail("pushed"), []);
  });
  await waitFor("pushed mail stored", async () => (await messagesBySubject(ctx, identity)).has("pushed"), 10_000, 50);
  const pushedRun = await waitFor("the INBOX run in the history", () => context(ctx, identity).history?.find((run) => run.mode === "inbox"), 5_000);
  assert.equal([pushedRun.total, pushedRun.done], [1, 1]);
  assert.not.ok((await messagesBySubject(ctx, identity)).has("sent elsewhere"), "the Sent folder waits for the poll");
  const runs = context(ctx, identity).history?.length ?? 0;
  sync(ctx, identity);
  await nextRun(ctx, identity, runs);
  assert.ok((await messagesBySubject(ctx, identity)).has("sent elsewhere"), "synced by the poll");
});

test(`a server listing more folders than a worker follows: ${MAX_FOLDERS} are synced, the others left out and counted`, async (ctx) => {
  const { login, identity } = await account(ctx);
  const extra = MAX_FOLDERS + 20;
  const names = Array.from({ length: extra }, (_, n) => `F${String(n).padStart(4, "0")}`);
  // Created by doveadm at once (an IMAP CREATE each would take long).
  execFileSync("doveadm", ["-c", `${ctx.dovecot.dir}/dovecot.conf`, "mailbox", "create", "-u", login, ...names]);
  const run = await firstSync(ctx, identity);
  const folders = context(ctx, identity).folders ?? [];
  assert.is(folders.length, MAX_FOLDERS);
  assert.is(folders[0]?.path, "INBOX");
  // INBOX, Drafts and Sent and the F folders: the ones after the first MAX_FOLDERS - 1 in order are left out.
  assert.is(run.folder_changes?.left_out, extra + 3 - MAX_FOLDERS);
  assert.is(run.folder_changes?.added.length, 5, "the history names a few, and counts the rest");
  assert.is(run.folder_changes?.more, MAX_FOLDERS - 5);
  assert.ok(JSON.stringify(context(ctx, identity)).length < 100_000, "the worker's state stays small");
});

test.run();
