// The whole mail chain on one node, driven as a client would: an account added through the API points at
// Dovecot → mail dropped into Dovecot becomes a stored message → a reply draft is sent → it arrives at
// the account's SMTP server (threaded on the original) and in its Sent box. Both servers speak STARTTLS
// with certificates of a test CA the node trusts, and the node admits exactly these two servers. And
// mail delivered over SMTP by swaks to a local address becomes a stored message too.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { PASSWORD, startTestDovecot, type TestDovecot } from "../../scripts/local-servers/dovecot.ts";
import { makeTestCertificates, type TestCertificates } from "../../scripts/local-servers/tls-certs.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { callApi } from "../helpers/api-client.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig, testDestinations } from "../helpers/test-node.ts";

interface Received {
  user: string;
  secure: boolean;
  to: string[];
  data: string;
}

interface Context {
  nats: TestNats;
  certs: TestCertificates;
  dovecot: TestDovecot;
  node: RunningNode;
  client: NatsConnection;
  apiUrl: string;
  smtpPort: number;
  token: string;
  peer: SMTPServer;
  peerPort: number;
  received: Received[];
  store: Store;
  /** Alice's local identity. */
  identityId: string;
}

const test = suite<Context>("mail chain");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.certs = await makeTestCertificates();
  ctx.dovecot = await startTestDovecot({ tls: { cert: ctx.certs.serverCert, key: ctx.certs.serverKey, ca: ctx.certs.ca } });
  ctx.received = [];
  // The account's own SMTP server: STARTTLS, and it wants the account's login.
  ctx.peer = new SMTPServer({
    key: await readFile(ctx.certs.serverKey),
    cert: await readFile(ctx.certs.serverCert),
    logger: false,
    onAuth: (auth, _session, callback) => (auth.password === PASSWORD ? callback(null, { user: auth.username }) : callback(new Error("bad login"))),
    onData: (stream, session, callback) => {
      let data = "";
      stream.on("data", (chunk: Buffer) => (data += chunk.toString()));
      stream.on("end", () => {
        ctx.received.push({ user: String(session.user), secure: session.secure, to: session.envelope.rcptTo.map((r) => r.address), data });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => ctx.peer.listen(0, "127.0.0.1", resolve));
  ctx.peerPort = (ctx.peer.server.address() as { port: number }).port;

  const config = testCaliopenConfig({
    mail: { host: "platform.test", relay: { host: "127.0.0.1", port: 1 }, smtp: { host: "127.0.0.1", port: 0, maxSize: 1_000_000, maxRecipients: 10 } },
    destinations: testDestinations([ctx.dovecot.server, `127.0.0.1:${ctx.peerPort}`], [await ctx.certs.caPem()]),
  });
  let apiUrl = "";
  let smtpPort = 0;
  ctx.node = await startTestNode(
    ctx.nats.endpoint,
    caliopenServices(config, { onApiStarted: (url) => (apiUrl = url), onSmtpStarted: (port) => (smtpPort = port) }),
    { nodeId: "mail-node" },
  );
  ctx.apiUrl = apiUrl;
  ctx.smtpPort = smtpPort;
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  const alice = await createUser(ctx.store, { name: "alice", email: "alice@platform.test" });
  ctx.token = alice.token;
  ctx.identityId = alice.identity?.identity_id ?? "";
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await new Promise<void>((resolve) => ctx.peer.close(() => resolve()));
  await ctx.dovecot.stop();
  await ctx.certs.remove();
  await ctx.nats.stop();
});

const call = (ctx: Context, method: string, path: string, body?: unknown) => callApi(ctx.apiUrl, ctx.token, method, path, body);

test("an IMAP account added through the API: its mail is stored, a reply is sent through its server and filed in its Sent box", async (ctx) => {
  const created = await call(ctx, "POST", "/api/v2/identities/remotes", {
    protocol: "imap",
    identifier: "alice@provider.test",
    display_name: "Alice",
    credentials: { username: "alice-at-provider", password: PASSWORD },
    infos: { inserver: ctx.dovecot.server, outserver: `127.0.0.1:${ctx.peerPort}`, poll_interval: "15" },
  });
  assert.is(created.status, 201, JSON.stringify(created.body));
  const identityId = created.body.identity_id as string;

  // The poller's first sync reaches the worker, which then watches the mailbox.
  await waitFor(
    "IMAP worker watching",
    () => JSON.stringify(ctx.node.host.get("imap", identityId)?.summary().state ?? "").includes('"push":"watching"'),
    15_000,
  );
  await ctx.dovecot.append(
    "alice-at-provider",
    PASSWORD,
    "From: Bob <bob@elsewhere.test>\r\nTo: Alice <alice@provider.test>\r\nSubject: lunch?\r\nMessage-ID: <lunch-1@elsewhere.test>\r\nDate: Sat, 28 Nov 2026 09:00:00 +0000\r\n\r\nShall we have lunch?\r\n",
  );
  const original = await waitFor(
    "the mail as a stored message",
    async () => ((await call(ctx, "GET", "/api/v2/messages?is_draft=false")).body.items as { subject: string }[]).find((m) => m.subject === "lunch?"),
    10_000,
  );
  const received = original as unknown as { message_id: string; is_unread: boolean; participants: { type: string; address: string }[] };
  assert.is(received.is_unread, true);
  assert.ok(received.participants.some((p) => p.type === "From" && p.address === "bob@elsewhere.test"));

  const draft = await call(ctx, "POST", "/api/v2/messages", {
    identity_id: identityId,
    parent_id: received.message_id,
    subject: "Re: lunch?",
    body_plain: "Yes, at noon.",
    participants: [{ type: "To", address: "bob@elsewhere.test" }],
  });
  assert.is(draft.status, 201, JSON.stringify(draft.body));
  const sent = await call(ctx, "POST", `/api/v2/messages/${draft.body.message_id}/actions`, { actions: ["send"] });
  assert.is(sent.status, 200, JSON.stringify(sent.body));
  assert.is(sent.body.is_draft, false);

  assert.is(ctx.received.length, 1);
  const delivered = ctx.received[0] as Received;
  assert.is(delivered.user, "alice-at-provider", "sent through the account's own server with its login");
  assert.is(delivered.secure, true, "over TLS");
  assert.equal(delivered.to, ["bob@elsewhere.test"]);
  const parsed = await simpleParser(delivered.data);
  assert.is(parsed.subject, "Re: lunch?");
  assert.is(parsed.inReplyTo, "<lunch-1@elsewhere.test>");
  assert.match(parsed.from?.text ?? "", /alice@provider\.test/);

  const imap = await ctx.dovecot.client("alice-at-provider", PASSWORD);
  const lock = await imap.getMailboxLock("Sent");
  try {
    const copies = [];
    for await (const message of imap.fetch("1:*", { envelope: true, flags: true })) copies.push(message);
    assert.equal(
      copies.map((m) => m.envelope?.subject),
      ["Re: lunch?"],
    );
    assert.ok(copies[0]?.flags?.has("\\Seen"));
  } finally {
    lock.release();
    await imap.logout();
  }
});

test("mail delivered over SMTP to a local address is stored for its user; an unknown recipient is refused", async (ctx) => {
  const swaks = (to: string) =>
    new Promise<{ code: number | null; transcript: string }>((resolve) => {
      const child = spawn(
        "swaks",
        [
          "--server",
          "127.0.0.1",
          "--port",
          String(ctx.smtpPort),
          "--from",
          "carol@elsewhere.test",
          "--to",
          to,
          "--header",
          "Subject: over smtp",
          "--body",
          "hello Alice",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let transcript = "";
      child.stdout.on("data", (chunk: Buffer) => (transcript += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (transcript += chunk.toString()));
      child.once("close", (code) => resolve({ code, transcript }));
    });
  const accepted = await swaks("alice@platform.test");
  assert.is(accepted.code, 0, accepted.transcript);
  const stored = await waitFor(
    "stored",
    async () => ((await call(ctx, "GET", "/api/v2/messages")).body.items as { subject: string }[]).find((m) => m.subject === "over smtp"),
    10_000,
  );
  assert.ok(stored);
  const refused = await swaks("nobody@platform.test");
  assert.is.not(refused.code, 0);
  assert.match(refused.transcript, /550/);
});

test("a forged first copy under a mail's Message-ID: one message, the API lists the genuine mail as a conflicting copy, its raw kept", async (ctx) => {
  const send = (body: string) =>
    new Promise<{ code: number | null; transcript: string }>((resolve) => {
      const child = spawn(
        "swaks",
        [
          "--server",
          "127.0.0.1",
          "--port",
          String(ctx.smtpPort),
          "--from",
          "bank@bank.test",
          "--to",
          "alice@platform.test",
          "--header",
          "Subject: IBAN",
          "--header",
          "Message-Id: <iban-2026@bank.test>",
          "--body",
          body,
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let transcript = "";
      child.stdout.on("data", (chunk: Buffer) => (transcript += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (transcript += chunk.toString()));
      child.once("close", (code) => resolve({ code, transcript }));
    });
  const forged = await send("Wire it to XX00 EVIL");
  assert.is(forged.code, 0, forged.transcript);
  const genuine = await send("Your IBAN is unchanged");
  assert.is(genuine.code, 0, genuine.transcript);
  const items = (await call(ctx, "GET", "/api/v2/messages")).body.items as { message_id: string; subject: string; body_plain: string }[];
  const [message, ...others] = items.filter((m) => m.subject === "IBAN");
  assert.ok(message);
  assert.is(others.length, 0, "one message per Message-ID");
  assert.ok(message.body_plain.includes("EVIL"));
  const one = await call(ctx, "GET", `/api/v2/messages/${message.message_id}`);
  assert.is(one.status, 200);
  const conflicts = one.body.message_id_conflicts as { raw_id: string; content_sha256: string; identity_id: string; received_at: string }[];
  assert.is(conflicts.length, 1);
  assert.is(conflicts[0]?.identity_id, ctx.identityId);
  assert.match(conflicts[0]?.content_sha256 ?? "", /^[0-9a-f]{64}$/);
  assert.ok(!Number.isNaN(Date.parse(conflicts[0]?.received_at ?? "")));
  const raw = Buffer.from((await ctx.store.raws.read(conflicts[0]?.raw_id ?? "")) ?? []).toString();
  assert.match(raw, /Your IBAN is unchanged/);
});

test.run();
