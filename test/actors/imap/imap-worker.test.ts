// The IMAP bridge against a real Dovecot, on a real node: sync of new mail, incremental sync, a changed
// UIDVALIDITY, fullfetch, IDLE push, a wrong password (backoff, visible error, slower polling, disabled
// in the end), and the Sent-folder copy of a delivered draft. Dovecot offers STARTTLS with a certificate
// of the test CA, which the node trusts; the node admits exactly the servers the test starts. Servers it
// must not use: a STARTTLS stripper in the middle, a self-signed certificate, addresses the policy
// refuses (loopback not admitted, NATS, private, link-local) — each an error on the identity, unless the
// operator's exception admits it.
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import type { NatsConnection } from "@nats-io/transport-node";
import { generateKey } from "openpgp";
import { SMTPServer } from "smtp-server";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import type { FolderCursor } from "../../../actors/imap/account-folders.ts";
import type { ImapWorkerContext } from "../../../actors/imap/imap-worker-state.ts";
import { newDraft } from "../../../actors/messages/new-draft.ts";
import type { Identity } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { decodeJson } from "../../../runtime/json.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { startTestDovecot, type TestDovecot } from "../../../scripts/local-servers/dovecot.ts";
import { freePort } from "../../../scripts/local-servers/free-port.ts";
import { makeTestCertificates, type TestCertificates } from "../../../scripts/local-servers/tls-certs.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { type StarttlsStripper, startStarttlsStripper } from "../../helpers/starttls-stripper.ts";
import { startTestNode, testCaliopenConfig, testDestinations } from "../../helpers/test-node.ts";
import { newContact, newPublicKey } from "../store/fixture.ts";
import { deliverThroughWorker, messagesOf, publishFor } from "./worker-bus.ts";

interface Context {
  nats: TestNats;
  certs: TestCertificates;
  /** The provider's server: STARTTLS with a certificate of the test CA. */
  dovecot: TestDovecot;
  /** A server with a self-signed certificate, on two ports: one admitted as is, one with +unverified-tls. */
  selfSigned: TestDovecot;
  /** Men in the middle stripping STARTTLS in front of `dovecot`: one admitted as is, one with +cleartext. */
  stripped: StarttlsStripper;
  strippedExcepted: StarttlsStripper;
  /** An SMTP server for deliveries (STARTTLS, the test CA), and a TCP port that listens but is not admitted. */
  smtp: SMTPServer;
  smtpServer: string;
  smtpReceived: { from: string; to: string[]; user: string; secure: boolean; data: string }[];
  unadmitted: Server;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  userId: string;
  orders: { subject: string; payload: Record<string, unknown> }[];
  /** process_inbound requests seen on inboundSMTP, by identity. */
}

const test = suite<Context>("IMAP worker");
// Dovecot delays each refused login from an address after the first by about 4.5 s: failures are slow.
const DISABLE_AFTER_MS = 8_000;

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.certs = await makeTestCertificates();
  const { certs } = ctx;
  ctx.dovecot = await startTestDovecot({ tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca } });
  ctx.selfSigned = await startTestDovecot({ tls: { cert: certs.selfSignedCert, key: certs.selfSignedKey, ca: certs.selfSignedCert }, extraPorts: 1 });
  ctx.stripped = await startStarttlsStripper("imap", ctx.dovecot);
  ctx.strippedExcepted = await startStarttlsStripper("imap", ctx.dovecot);
  ctx.smtpReceived = [];
  ctx.smtp = new SMTPServer({
    key: await readFile(certs.serverKey),
    cert: await readFile(certs.serverCert),
    authOptional: false,
    logger: false,
    onAuth: (auth, _session, callback) => (auth.password === "secret" ? callback(null, { user: auth.username }) : callback(new Error("bad password"))),
    onData: (stream, session, callback) => {
      let data = "";
      stream.on("data", (chunk: Buffer) => (data += chunk.toString()));
      stream.on("end", () => {
        ctx.smtpReceived.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          user: String(session.user),
          secure: session.secure,
          data,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => ctx.smtp.listen(0, "127.0.0.1", resolve));
  ctx.smtpServer = `127.0.0.1:${(ctx.smtp.server.address() as { port: number }).port}`;
  ctx.unadmitted = createServer((socket) => socket.end("* OK IMAP4rev1 ready\r\n"));
  await new Promise<void>((resolve) => ctx.unadmitted.listen(0, "127.0.0.1", resolve));
  // Exactly the servers this test started, each with the exception it is meant to have.
  const destinations = testDestinations(
    [
      ctx.dovecot.server,
      ctx.selfSigned.server,
      `${ctx.selfSigned.extraServers[0]}+unverified-tls`,
      ctx.stripped.server,
      `${ctx.strippedExcepted.server}+cleartext`,
      ctx.smtpServer,
    ],
    [await certs.caPem()],
  );
  const config = testCaliopenConfig({
    api: null,
    destinations,
    imap: { push: true, retry: { initialMs: 200, maxMs: 400, factor: 2, jitter: 0 }, slowDownAfterFailures: 2, disableAfterMs: DISABLE_AFTER_MS },
  });
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
  await ctx.client.flush();
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await Promise.all([ctx.stripped.stop(), ctx.strippedExcepted.stop()]);
  await new Promise<void>((resolve) => ctx.smtp.close(() => resolve()));
  await new Promise<void>((resolve) => ctx.unadmitted.close(() => resolve()));
  await Promise.all([ctx.dovecot.stop(), ctx.selfSigned.stop()]);
  await ctx.certs.remove();
  await ctx.nats.stop();
});

let mailboxes = 0;

/** A Dovecot account and the remote identity that syncs it (through `inserver`, the provider's Dovecot by default). */
async function account(
  ctx: Context,
  options: { password?: string; outserver?: string; inserver?: string } = {},
): Promise<{ login: string; identity: Identity }> {
  const login = `box${++mailboxes}`;
  await ctx.dovecot.addUser(login, "secret");
  const identity = await ctx.store.identities.create({
    user_id: ctx.userId,
    type: "remote",
    protocol: "imap",
    identifier: `${login}@remote.test`,
    display_name: `Box ${mailboxes}`,
    infos: { inserver: options.inserver ?? ctx.dovecot.server, outserver: options.outserver ?? "127.0.0.1:1", poll_interval: "15" },
    credentials: { username: login, password: options.password ?? "secret" },
  });
  return { login, identity };
}

function mail(n: number, extra = ""): string {
  return `From: Sender ${n} <sender${n}@elsewhere.test>\r\nTo: someone@remote.test\r\nSubject: message ${n}\r\nMessage-ID: <m${n}-${Date.now()}-${Math.random()}@elsewhere.test>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n${extra}\r\nbody of message ${n}\r\n`;
}

function worker(ctx: Context, identity: Identity) {
  return ctx.node.host.get("imap", identity.identity_id);
}

/** The worker's context, empty while there is no worker. */
function context(ctx: Context, identity: Identity): Partial<ImapWorkerContext> {
  return (worker(ctx, identity)?.inspect().context ?? {}) as Partial<ImapWorkerContext>;
}

/** Where the sync of one folder stands (INBOX by default), undefined before it was synced. */
function cursorOf(ctx: Context, identity: Identity, path = "INBOX"): FolderCursor | undefined {
  return context(ctx, identity).folders?.find((folder) => folder.path === path);
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

test("add_worker and sync: new mail becomes stored messages, unread unless \\Seen, with imported flags, never \\Seen on the server", async (ctx) => {
  const { login, identity } = await account(ctx);
  await ctx.dovecot.append(login, "secret", mail(1), { flags: ["\\Flagged"] });
  await ctx.dovecot.append(login, "secret", mail(2));
  await ctx.dovecot.append(login, "secret", mail(3), { flags: ["$label1", "\\Seen"] });
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("3 messages stored", async () => (await messagesOf(ctx.store, identity)).length === 3, 10_000);
  const messages = await messagesOf(ctx.store, identity);
  assert.equal(messages.map((m) => m.subject).sort(), ["message 1", "message 2", "message 3"]);
  assert.ok(messages.every((m) => m.is_received && !m.is_draft));
  assert.equal(
    messages
      .filter((m) => m.is_unread)
      .map((m) => m.subject)
      .sort(),
    ["message 1", "message 2"],
    "read on the server (\\Seen): read here",
  );
  assert.equal(messages.find((m) => m.subject === "message 1")?.tags, ["flagged"]);
  assert.equal(messages.find((m) => m.subject === "message 3")?.tags, ["$label1"], "\\Seen is not a tag");
  await waitFor("cursor saved", () => cursorOf(ctx, identity)?.lastseenuid === 3);
  assert.equal(
    await serverFlags(ctx, login),
    [["\\Flagged"], [], ["$label1", "\\Seen"]].map((flags) => flags.sort()),
    "nothing marked \\Seen by the sync",
  );
  const infos = (await ctx.store.identities.get(ctx.userId, identity.identity_id))?.infos;
  assert.ok(infos?.last_sync, "last sync shown on the identity");
  // Dovecot's own log: the worker's logins came over TLS (STARTTLS), never in clear.
  const logins = (await readFile(`${ctx.dovecot.dir}/dovecot.log`, "utf8")).split("\n").filter((line) => line.includes(`Login: user=<${login}>`));
  assert.ok(logins.length > 0, "Dovecot logged the logins");
  assert.ok(
    logins.every((line) => /, TLS,/.test(line)),
    logins.join("\n"),
  );
});

test("a later sync imports only what is new; a sync during a sync is coalesced", async (ctx) => {
  const { login, identity } = await account(ctx);
  for (let n = 1; n <= 3; n++) await ctx.dovecot.append(login, "secret", mail(n));
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("3 stored", async () => (await messagesOf(ctx.store, identity)).length === 3, 10_000);
  await waitFor("idle", () => JSON.stringify(worker(ctx, identity)?.summary().state).includes('"sync":"idle"'));
  for (let n = 4; n <= 5; n++) await ctx.dovecot.append(login, "secret", mail(n));
  // Three syncs at once: one runs, the others make at most one more run.
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("5 stored", async () => (await messagesOf(ctx.store, identity)).length === 5, 10_000);
  await waitFor("idle again", () => JSON.stringify(worker(ctx, identity)?.summary().state).includes('"sync":"idle"'));
  await sleep(500);
  assert.is((await messagesOf(ctx.store, identity)).length, 5, "no duplicates");
  assert.is(cursorOf(ctx, identity)?.lastseenuid, 5);
});

test("a changed UIDVALIDITY makes the next sync fetch everything again, without duplicates", async (ctx) => {
  const { login, identity } = await account(ctx);
  for (let n = 1; n <= 2; n++) await ctx.dovecot.append(login, "secret", mail(n));
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("2 stored", async () => (await messagesOf(ctx.store, identity)).length === 2, 10_000);
  await waitFor("idle", () => JSON.stringify(worker(ctx, identity)?.summary().state).includes('"sync":"idle"'));
  const { history: historyBefore } = context(ctx, identity);
  const cursor = cursorOf(ctx, identity);
  assert.ok(cursor && historyBefore, "the worker's cursor and history are visible");
  const before = cursor.uidvalidity;
  const runsBefore = historyBefore.length;
  execFileSync("doveadm", ["-c", `${ctx.dovecot.dir}/dovecot.conf`, "mailbox", "update", "-u", login, "--uid-validity", "4242", "INBOX"]);
  await ctx.dovecot.append(login, "secret", mail(3));
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("new uidvalidity taken", () => cursorOf(ctx, identity)?.uidvalidity === "4242", 10_000);
  assert.is.not(before, "4242");
  await waitFor("3 stored", async () => (await messagesOf(ctx.store, identity)).length === 3, 10_000);
  const run = await waitFor("the sync after the change in the history", () => {
    const history = context(ctx, identity).history ?? [];
    return history.length > runsBefore ? history[0] : undefined;
  });
  assert.equal([run.total, run.done, run.failed], [3, 3, 0], "all of the mailbox imported again, each message once");
  await sleep(300);
  assert.is((await messagesOf(ctx.store, identity)).length, 3, "no duplicates");
});

test("fullfetch fetches every message again with visible progress; imports are de-duplicated, raws too", async (ctx) => {
  const { login, identity } = await account(ctx);
  for (let n = 1; n <= 4; n++) await ctx.dovecot.append(login, "secret", mail(n));
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("4 stored", async () => (await messagesOf(ctx.store, identity)).length === 4, 10_000);
  await waitFor("idle", () => JSON.stringify(worker(ctx, identity)?.summary().state).includes('"sync":"idle"'));
  const rawsBefore = (await messagesOf(ctx.store, identity)).map((message) => String(message.raw_msg_id)).sort();
  publishFor(ctx.client, "IMAPfetcher", "fullfetch", identity);
  const run = await waitFor("the fullfetch in the history", () => (context(ctx, identity).history ?? []).find((r) => r.mode === "fullfetch"), 10_000);
  assert.equal([run.total, run.done, run.failed], [4, 4, 0], "every message imported again");
  assert.is((await messagesOf(ctx.store, identity)).length, 4);
  assert.equal(
    (await messagesOf(ctx.store, identity)).map((message) => String(message.raw_msg_id)).sort(),
    rawsBefore,
    "the same messages, from the same raws",
  );
  assert.is(cursorOf(ctx, identity)?.lastseenuid, 4, "the incremental cursor keeps its place");
});

test("with push on, mail APPENDed to the mailbox is stored within seconds, without any sync order", async (ctx) => {
  const { login, identity } = await account(ctx);
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("watching after the first sync", () => JSON.stringify(worker(ctx, identity)?.summary().state ?? "").includes('"push":"watching"'), 10_000);
  await sleep(500);
  const appendedAt = Date.now();
  await ctx.dovecot.append(login, "secret", mail(7));
  await waitFor("pushed mail stored", async () => (await messagesOf(ctx.store, identity)).length === 1, 10_000, 50);
  assert.ok(Date.now() - appendedAt < 8_000, `stored ${Date.now() - appendedAt} ms after the APPEND`);
});

test("a wrong password: backoff with the error visible, no push connection, slower polling asked, and after too long the identity is disabled", async (ctx) => {
  const { identity } = await account(ctx, { password: "wrong" });
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("backing off", () => JSON.stringify(worker(ctx, identity)?.summary().state ?? "").includes("backingOff"), 10_000);
  assert.match(String(context(ctx, identity).last_error?.message), /login refused/i);
  assert.ok(worker(ctx, identity)?.summary().deadlines["retry.due"], "the next retry is visible");
  assert.not.match(JSON.stringify(worker(ctx, identity)?.inspect()), /wrong/, "the password is not in debug output");
  assert.ok(JSON.stringify(worker(ctx, identity)?.summary().state).includes('"push":"waiting"'), "no push connection with a password that fails");
  await waitFor("error on the identity", async () =>
    /login refused/i.test(String((await ctx.store.identities.get(ctx.userId, identity.identity_id))?.infos.last_error?.message)),
  );

  const slower = await waitFor(
    "update_interval",
    () => ctx.orders.find((o) => o.payload.order === "update_interval" && o.payload.identity_id === identity.identity_id),
    15_000,
  );
  assert.equal(slower.payload, { order: "update_interval", identity_id: identity.identity_id, user_id: ctx.userId, poll_intervall: "30", protocol: "imap" });

  const disabled = await waitFor(
    "delete_identity",
    () => ctx.orders.find((o) => o.payload.order === "delete_identity" && o.payload.identity_id === identity.identity_id),
    DISABLE_AFTER_MS + 5_000,
  );
  assert.equal(disabled.payload, { order: "delete_identity", identity_id: identity.identity_id, user_id: ctx.userId });
  await waitFor("identity inactive", async () => (await ctx.store.identities.get(ctx.userId, identity.identity_id))?.status === "inactive");
  // The identities worker's poller (started by update_interval) retires the bridge's worker on delete_identity.
  await waitFor("worker removed", () => worker(ctx, identity) === undefined, 5_000);
});

test("deliver on outboundIMAP: sent through the account's own SMTP server (over STARTTLS), then filed as \\Seen in its Sent mailbox", async (ctx) => {
  const received = ctx.smtpReceived;
  {
    const { login, identity } = await account(ctx, { outserver: ctx.smtpServer });
    publishFor(ctx.client, "imap_worker", "add_worker", identity);
    await waitFor("worker up", () => worker(ctx, identity) !== undefined);
    const draft = await ctx.store.messages.create(
      newDraft(identity, { subject: "from my own account", body_plain: "hello there", participants: [{ type: "To", address: "friend@elsewhere.test" }] }),
    );
    const answer = await deliverThroughWorker(ctx.client, identity, draft.message_id);
    assert.is(answer.error, false, answer.message);
    assert.is(answer.sent_copy, "Sent");
    assert.is(received.length, 1);
    assert.is(received[0]?.user, login, "logged in to the account's SMTP server");
    assert.is(received[0]?.secure, true, "over TLS");
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
  }
});

test("deliver on outboundIMAP to a recipient whose key is known: sent encrypted, and the Sent folder's copy is that encrypted mail byte for byte", async (ctx) => {
  const { login, identity } = await account(ctx, { outserver: ctx.smtpServer });
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  await waitFor("worker up", () => worker(ctx, identity) !== undefined);
  const recipient = `keyed-${login}@elsewhere.test`;
  const contact = await ctx.store.contacts.create(newContact(ctx.userId, [recipient]));
  const { publicKey } = await generateKey({ userIDs: [{ email: recipient }], format: "object" });
  const fingerprint = publicKey.getFingerprint().toUpperCase();
  await ctx.store.keys.add(
    newPublicKey(ctx.userId, contact.contact_id, { fingerprint, key_id: fingerprint.slice(-16), armored: publicKey.armor(), emails: [recipient] }),
  );
  const draft = await ctx.store.messages.create(
    newDraft(identity, { subject: "encrypted from my account", body_plain: "for your eyes only", participants: [{ type: "To", address: recipient }] }),
  );
  const before = ctx.smtpReceived.length;
  const answer = await deliverThroughWorker(ctx.client, identity, draft.message_id);
  assert.is(answer.error, false, answer.message);
  assert.is(answer.sent_copy, "Sent");
  const sent = ctx.smtpReceived[before]?.data ?? "";
  assert.match(sent, /Content-Type: multipart\/encrypted; protocol="application\/pgp-encrypted"/);
  assert.not.match(sent, /for your eyes only/);

  const imap = await ctx.dovecot.client(login, "secret");
  const lock = await imap.getMailboxLock("Sent");
  try {
    const copies = [];
    for await (const message of imap.fetch("1:*", { source: true })) copies.push(message);
    assert.is(copies.length, 1);
    assert.is(copies[0]?.source?.toString("latin1").replace(/\r\n/g, "\n"), sent.replace(/\r\n/g, "\n"), "the Sent copy is the mail as sent");
  } finally {
    lock.release();
    await imap.logout();
  }
  assert.is((await ctx.store.messages.get(ctx.userId, draft.message_id))?.is_encrypted, true);
});

/** Starts the identity's worker and a sync; the error it ends on, once the identity shows one matching `pattern`. */
async function failing(ctx: Context, identity: Identity, pattern: RegExp): Promise<string> {
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  const message = await waitFor(
    `an error matching ${pattern} on the identity`,
    async () => {
      const error = (await ctx.store.identities.get(ctx.userId, identity.identity_id))?.infos.last_error?.message;
      return typeof error === "string" && pattern.test(error) ? error : null;
    },
    10_000,
  );
  assert.match(String(context(ctx, identity).last_error?.message), pattern, "on the worker too");
  return message;
}

async function retire(ctx: Context, identity: Identity): Promise<void> {
  publishFor(ctx.client, "imap_worker", "remove_worker", identity);
  await waitFor("worker removed", () => worker(ctx, identity) === undefined);
}

/** Whether `text` holds the test password as an IMAP client sends it (LOGIN, AUTHENTICATE PLAIN). */
function holdsPassword(text: string, login: string): boolean {
  return text.includes("secret") || text.includes(Buffer.from(`\0${login}\0secret`).toString("base64"));
}

test("a STARTTLS stripper between the worker and its server: no login, the reason on the identity; the operator's +cleartext exception lets it sync, and the stripper reads the password", async (ctx) => {
  const { login, identity } = await account(ctx, { inserver: ctx.stripped.server });
  await ctx.dovecot.append(login, "secret", mail(1));
  const message = await failing(ctx, identity, /STARTTLS/);
  assert.match(
    message,
    new RegExp(
      `^sync failed: IMAP server ${ctx.stripped.server}: not used: it does not offer STARTTLS, so the password would cross the network in clear; an operator may admit it with \\+cleartext`,
    ),
    message,
  );
  assert.ok(ctx.stripped.connections() > 0, "the worker did connect to it");
  assert.not.match(ctx.stripped.intercepted(), /LOGIN|AUTHENTICATE/i, "but never sent its login");
  assert.not.ok(holdsPassword(ctx.stripped.intercepted(), login));
  assert.is((await messagesOf(ctx.store, identity)).length, 0);
  await retire(ctx, identity);

  const excepted = await account(ctx, { inserver: ctx.strippedExcepted.server });
  await ctx.dovecot.append(excepted.login, "secret", mail(2));
  publishFor(ctx.client, "imap_worker", "add_worker", excepted.identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", excepted.identity);
  await waitFor("synced in clear", async () => (await messagesOf(ctx.store, excepted.identity)).length === 1, 10_000);
  assert.ok(
    holdsPassword(ctx.strippedExcepted.intercepted(), excepted.login),
    "the man in the middle read the password: why this is the operator's exception only",
  );
  await retire(ctx, excepted.identity);
});

test("a self-signed certificate: no login, the reason on the identity; the operator's +unverified-tls for that server lets it sync", async (ctx) => {
  const { login, identity } = await account(ctx, { inserver: ctx.selfSigned.server });
  await ctx.selfSigned.append(login, "secret", mail(1));
  const logins = async () =>
    (await readFile(`${ctx.selfSigned.dir}/dovecot.log`, "utf8")).split("\n").filter((line) => line.includes(`Login: user=<${login}>`)).length;
  const appended = await logins();
  const message = await failing(ctx, identity, /certificate/);
  assert.match(
    message,
    new RegExp(
      `^sync failed: IMAP server ${ctx.selfSigned.server}: not used: its TLS certificate is not trusted \\(self[- ]signed certificate\\); an operator may trust its CA \\(CALIOPEN_DESTINATION_CA\\) or admit it with \\+unverified-tls`,
    ),
    message,
  );
  assert.is((await messagesOf(ctx.store, identity)).length, 0);
  assert.is(await logins(), appended, "the server saw the test's own login only, not the worker's");
  await retire(ctx, identity);

  const excepted = await account(ctx, { inserver: ctx.selfSigned.extraServers[0] as string });
  await ctx.selfSigned.append(excepted.login, "secret", mail(2));
  publishFor(ctx.client, "imap_worker", "add_worker", excepted.identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", excepted.identity);
  await waitFor("synced over unverified TLS", async () => (await messagesOf(ctx.store, excepted.identity)).length === 1, 10_000);
  await retire(ctx, excepted.identity);
});

test("servers the policy refuses — loopback not admitted, NATS, private, link-local, localhost — are an error on the identity, the same whether a port is open or not; nothing stored is lost", async (ctx) => {
  const open = `127.0.0.1:${(ctx.unadmitted.address() as { port: number }).port}`;
  const closed = `127.0.0.1:${await freePort()}`;
  const nats = `127.0.0.1:${new URL(ctx.nats.url).port}`;
  const cases: [string, RegExp][] = [
    [open, /127\.0\.0\.1 is a loopback address/],
    [closed, /127\.0\.0\.1 is a loopback address/],
    [nats, /it is a NATS server of the platform/],
    ["10.1.2.3:143", /10\.1\.2\.3 is a private address/],
    ["169.254.169.254:993", /169\.254\.169\.254 is a link-local address/],
    [`localhost:${new URL(`http://${closed}`).port}`, /localhost resolves to a loopback address/],
  ];
  const seen: string[] = [];
  for (const [inserver, reason] of cases) {
    const { identity } = await account(ctx, { inserver });
    const message = await failing(ctx, identity, /not an allowed destination/);
    assert.match(message, reason, inserver);
    assert.match(message, new RegExp(`^sync failed: IMAP server ${inserver.replace(/\./g, "\\.")} is not an allowed destination: `), message);
    seen.push(message.replaceAll(inserver, "<server>"));
    // Nothing of the identity was dropped: its servers, its credentials, its status.
    const stored = await ctx.store.identities.get(ctx.userId, identity.identity_id);
    assert.is(stored?.infos.inserver, inserver);
    assert.is(stored?.status, "active");
    assert.equal(await ctx.store.identities.credentials(ctx.userId, identity.identity_id), { username: identity.identifier.split("@")[0], password: "secret" });
    await retire(ctx, identity);
  }
  assert.is(seen[0], seen[1], "an open port and a closed one get the same words");
});

test("remove_worker stops the worker and drops its state", async (ctx) => {
  const { identity } = await account(ctx);
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  await waitFor("worker up", () => worker(ctx, identity) !== undefined);
  publishFor(ctx.client, "imap_worker", "remove_worker", identity);
  await waitFor("worker gone", () => worker(ctx, identity) === undefined);
});

test.run();
