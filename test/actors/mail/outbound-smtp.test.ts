// `deliver` against real SMTP peers: Postfix's smtp-sink as the platform relay (what ARRIVED there is
// read back from its dump files, envelope included), and smtp-server instances of the test's own for a
// remote identity's server (STARTTLS with a certificate of the test CA, AUTH), a refusing server and a
// slow one. A remote identity's server is the user's choice: the destination policy refuses loopback,
// the relay and servers it does not admit, and TLS is required and verified (a STARTTLS stripper in the
// middle, a self-signed certificate, a server without AUTH are not used) unless the operator excepts it.

import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Writable } from "node:stream";
import { type AddressObject, simpleParser } from "mailparser";
import { SMTPServer, type SMTPServerOptions } from "smtp-server";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { deliverDraft, type OutboundSmtpDeps } from "../../../actors/mail/outbound-smtp.ts";
import { type DraftFields, newDraft } from "../../../actors/messages/new-draft.ts";
import { SENDING_STALE_MS } from "../../../actors/messages/send-claim.ts";
import { parseAllowedDestinations } from "../../../actors/network/allowed-destinations.ts";
import { DestinationPolicy, type Resolver } from "../../../actors/network/destination-policy.ts";
import { parseHostPort } from "../../../actors/network/host-port.ts";
import type { Identity, Message } from "../../../actors/store/model.ts";
import { createLogger } from "../../../runtime/logger.ts";
import { freePort } from "../../../scripts/local-servers/free-port.ts";
import { makeTestCertificates, PROVIDER_NAME, type TestCertificates } from "../../../scripts/local-servers/tls-certs.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import { type SmtpSink, startSmtpSink } from "../../helpers/smtp-sink.ts";
import { startStarttlsStripper } from "../../helpers/starttls-stripper.ts";
import { newMessage, type StoreFixture, startStore } from "../store/fixture.ts";

const HOST = "mail.platform.test";
const PASSWORD = "pw-Zq8!never-in-logs";

let f: StoreFixture;
let sink: SmtpSink;
let certs: TestCertificates;
let caPem: string;
let logs = "";

/** The node's policy: exactly the servers given (`host:port[+marker]`), the test CA trusted, the relay protected. */
function admit(servers: string[], resolve?: Resolver): DestinationPolicy {
  return new DestinationPolicy({ allow: parseAllowedDestinations(servers.join(",")), ca: [caPem], ...(resolve && { resolve }) }, () => [
    { what: "the platform's SMTP relay (CALIOPEN_SMTP_RELAY)", host: sink.host, port: sink.port },
  ]);
}

function deps(fields: Partial<OutboundSmtpDeps> = {}): OutboundSmtpDeps {
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  return {
    store: f.store,
    relay: { host: sink.host, port: sink.port, ignoreTLS: true },
    destinations: admit([]),
    host: HOST,
    logger: createLogger({ level: "debug", destination }),
    timeouts: { connectionMs: 2_000, greetingMs: 2_000, socketMs: 5_000 },
    ...fields,
  };
}

test.before(async () => {
  [f, sink, certs] = await Promise.all([startStore(), startSmtpSink(), makeTestCertificates()]);
  caPem = await certs.caPem();
});

test.after(async () => {
  await Promise.all([f.nats.stop(), sink.stop(), certs.remove()]);
});

// ---- builders ------------------------------------------------------------------------------------

async function localIdentity(userId = randomUUID()): Promise<Identity> {
  return f.store.identities.create({
    user_id: userId,
    type: "local",
    protocol: "email",
    identifier: `bob.${randomUUID().slice(0, 8)}@platform.test`,
    display_name: "Bob Local",
  });
}

async function remoteIdentity(outserver: string, credentials: Record<string, string> | null = { username: "alice", password: PASSWORD }): Promise<Identity> {
  return f.store.identities.create({
    user_id: randomUUID(),
    type: "remote",
    protocol: "imap",
    identifier: `alice.${randomUUID().slice(0, 8)}@remote.test`,
    display_name: "Alice Remote",
    infos: { inserver: "127.0.0.1:1", outserver },
    credentials,
  });
}

const recipients: DraftFields["participants"] = [
  { type: "To", address: "to@dest.test", label: "To Person" },
  { type: "Cc", address: "cc@dest.test" },
  { type: "Bcc", address: "secret@hidden.test", label: "Secret" },
];

async function draftFrom(identity: Identity, fields: DraftFields = {}, extra: Partial<Message> = {}): Promise<Message> {
  const draft = newDraft(identity, {
    subject: "Hello there",
    body_plain: "the plain body\n",
    body_html: "<b>the html body</b>",
    participants: recipients,
    ...fields,
  });
  return f.store.messages.create({ ...draft, ...extra });
}

const order = (draft: Message, identity: Identity) => ({
  order: "deliver" as const,
  message_id: draft.message_id,
  remote_id: identity.identity_id,
  user_id: draft.user_id,
});
const lf = (text: string) => text.replace(/\r\n/g, "\n");
const addressesOf = (field: AddressObject | AddressObject[] | undefined) =>
  (Array.isArray(field) ? field : field ? [field] : []).flatMap((a) => a.value.map((v) => v.address));

/** An smtp-server of the test's own: records every message with its envelope and bytes. */
interface Peer {
  port: number;
  /** `127.0.0.1:<port>`, as an identity's outserver. */
  server: string;
  received: { from: string; to: string[]; user: string | undefined; secure: boolean; raw: Buffer }[];
  close(): Promise<void>;
}

/** A provider's submission server: STARTTLS with `cert` (the test CA's loopback certificate by default), AUTH as alice. */
async function startProvider(options: { cert?: string; key?: string } & Partial<SMTPServerOptions> = {}): Promise<Peer> {
  const { cert = certs.serverCert, key = certs.serverKey, ...rest } = options;
  return startPeer({
    disabledCommands: [],
    key: await readFile(key),
    cert: await readFile(cert),
    authOptional: false,
    // Also over a connection that stayed in clear: what a client accepts is what these tests look at.
    allowInsecureAuth: true,
    onAuth(auth, _session, callback) {
      if (auth.username === "alice" && auth.password === PASSWORD) return callback(null, { user: "alice" });
      return callback(Object.assign(new Error("5.7.8 bad credentials"), { responseCode: 535 }));
    },
    ...rest,
  });
}

async function startPeer(options: Partial<SMTPServerOptions> = {}): Promise<Peer> {
  const received: Peer["received"] = [];
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS"],
    authOptional: true,
    logger: false,
    disableReverseLookup: true,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          user: session.user as string | undefined,
          secure: session.secure,
          raw: Buffer.concat(chunks),
        });
        callback();
      });
    },
    ...options,
  });
  const port = await freePort();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return { port, server: `127.0.0.1:${port}`, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

// ---- sending through the relay -------------------------------------------------------------------

test("a local identity's draft arrives at the relay: headers, bodies, envelope with the Bcc, no Bcc header", async () => {
  const identity = await localIdentity();
  const draft = await draftFrom(identity);
  const before = (await sink.messages()).length;
  const reply = await deliverDraft(deps(), order(draft, identity));
  assert.equal(reply, { error: false, message: `message ${draft.message_id} has been sent`, message_id: draft.message_id });

  const arrived = (await sink.waitForMessages(before + 1)).find((m) => m.content.includes("Hello there"));
  assert.ok(arrived, "the message is in smtp-sink's dump");
  assert.is(arrived.mailFrom, identity.identifier, "MAIL FROM is the identity");
  assert.equal([...arrived.rcptTo].sort(), ["cc@dest.test", "secret@hidden.test", "to@dest.test"], "RCPT TO: To, Cc and Bcc");
  assert.is(arrived.helo, HOST, "EHLO with the platform's mail host");
  const mail = await simpleParser(arrived.content);
  assert.is(mail.subject, "Hello there");
  assert.equal(addressesOf(mail.from), [identity.identifier]);
  assert.equal(addressesOf(mail.to), ["to@dest.test"]);
  assert.equal(addressesOf(mail.cc), ["cc@dest.test"]);
  assert.is(mail.bcc, undefined);
  assert.not.match(arrived.content, /secret@hidden\.test/, "the Bcc address is nowhere in what arrived");
  assert.is(mail.text, "the plain body\n");
  assert.is(mail.html, "<b>the html body</b>");
  assert.match(String(mail.messageId), /^<[0-9a-f-]{36}@mail\.platform\.test>$/);
});

test("after sending, the draft is a sent message and the sent raw is stored, identical to what arrived", async () => {
  const identity = await localIdentity();
  const parent = await f.store.messages.create(
    newMessage(identity.user_id, { external_references: { message_id: "<orig-1@dest.test>", parent_id: "", ancestors_ids: ["root@dest.test"] } }),
  );
  const draft = await draftFrom(identity, { parent_id: parent.message_id });
  const started = Date.now();
  const reply = await deliverDraft(deps(), order(draft, identity));
  assert.is(reply.error, false, reply.message);

  const sent = await f.store.messages.get(draft.user_id, draft.message_id);
  assert.ok(sent);
  assert.is(sent.is_draft, false);
  assert.is(sent.is_unread, false);
  assert.is(sent.parent_id, parent.message_id);
  assert.is(sent.sending_since, null);
  assert.ok(Date.parse(sent.date) >= started - 1_000 && Date.parse(sent.date) <= Date.now() + 1_000, "date is the time of sending");
  assert.ok(sent.raw_msg_id, "the sent raw is linked");
  const raw = await f.store.raws.get(sent.raw_msg_id);
  assert.ok(raw);
  assert.is(raw.user_id, draft.user_id);
  assert.is(raw.delivered, true);

  const bytes = Buffer.from((await f.store.raws.read(sent.raw_msg_id)) ?? []);
  const arrived = (await sink.messages()).find((m) => m.content.includes(sent.external_references.message_id));
  assert.ok(arrived, "found at the sink by its Message-ID");
  assert.is(lf(bytes.toString("utf8")), arrived.content, "the stored raw is what the relay received");

  const mail = await simpleParser(bytes);
  assert.is(mail.messageId, `<${sent.external_references.message_id}>`);
  assert.not.match(sent.external_references.message_id, /[<>]/, "stored without angle brackets");
  assert.is(mail.inReplyTo, "<orig-1@dest.test>");
  assert.equal(mail.references, ["<root@dest.test>", "<orig-1@dest.test>"]);
  assert.equal(sent.external_references, {
    message_id: sent.external_references.message_id,
    parent_id: "orig-1@dest.test",
    ancestors_ids: ["root@dest.test", "orig-1@dest.test"],
  });
  assert.is(mail.date?.toISOString(), new Date(sent.date).toISOString().replace(/\.\d{3}Z$/, ".000Z"), "the Date header is the stored date (to the second)");
  assert.is((await f.store.messages.get(parent.user_id, parent.message_id))?.is_answered, true, "the parent is marked answered");
});

test("a draft with two uploaded files: both arrive at the relay (smtp-sink) and parse back with their names, types and bytes", async () => {
  const identity = await localIdentity();
  const pdf = Buffer.concat([Buffer.from("%PDF-1.4\n"), Buffer.alloc(300_000, 7)]);
  const notes = Buffer.from("line one\r\nline two, ünïcode\r\n", "utf8");
  const stored = await Promise.all([f.store.raws.put(identity.user_id, pdf), f.store.raws.put(identity.user_id, notes)]);
  const draft = await draftFrom(
    identity,
    {},
    {
      attachments: [
        {
          attachment_id: "0",
          content_type: "application/pdf",
          file_name: "report 2026.pdf",
          size: pdf.length,
          is_inline: false,
          content_raw_id: stored[0].raw_msg_id,
        },
        { attachment_id: "1", content_type: "text/plain", file_name: "notes.txt", size: notes.length, is_inline: false, content_raw_id: stored[1].raw_msg_id },
      ],
    },
  );
  const reply = await deliverDraft(deps(), order(draft, identity));
  assert.is(reply.error, false, reply.message);
  const sent = await f.store.messages.get(draft.user_id, draft.message_id);
  const arrived = (await sink.messages()).find((m) => m.content.includes(sent?.external_references.message_id ?? "?"));
  assert.ok(arrived, "at the sink");
  const mail = await simpleParser(Buffer.from(arrived.content.replace(/\n/g, "\r\n"), "utf8"));
  assert.is(mail.text?.trim(), "the plain body");
  assert.equal(
    mail.attachments.map((attachment) => [attachment.filename, attachment.contentType, attachment.size]),
    [
      ["report 2026.pdf", "application/pdf", pdf.length],
      ["notes.txt", "text/plain", notes.length],
    ],
  );
  assert.ok(mail.attachments[0]?.content.equals(pdf), "the PDF's bytes");
  assert.ok(mail.attachments[1]?.content.equals(notes), "the text's bytes, line ends included");
  assert.equal(
    sent?.attachments.map((attachment) => attachment.content_raw_id),
    [stored[0].raw_msg_id, stored[1].raw_msg_id],
    "the sent message keeps its files",
  );
});

test("a draft whose uploaded file is gone is not sent, and stays a draft", async () => {
  const identity = await localIdentity();
  const draft = await draftFrom(
    identity,
    {},
    { attachments: [{ attachment_id: "0", content_type: "text/plain", file_name: "gone.txt", size: 3, is_inline: false, content_raw_id: randomUUID() }] },
  );
  const before = (await sink.messages()).length;
  const reply = await deliverDraft(deps(), order(draft, identity));
  assert.is(reply.error, true);
  assert.match(reply.message, /attachment 0 \(gone\.txt\) is gone/);
  assert.is((await f.store.messages.get(draft.user_id, draft.message_id))?.is_draft, true);
  assert.is((await sink.messages()).length, before, "nothing sent");
});

test("a retried deliver does not send twice: the second reply says it was already sent", async () => {
  const identity = await localIdentity();
  const draft = await draftFrom(identity, { subject: `retry ${randomUUID()}` });
  const first = await deliverDraft(deps(), order(draft, identity));
  assert.is(first.error, false, first.message);
  const count = (await sink.messages()).length;
  const second = await deliverDraft(deps(), order(draft, identity));
  assert.equal(second, { error: false, message: `message ${draft.message_id} was already sent`, message_id: draft.message_id });
  const all = await sink.messages();
  assert.is(all.length, count, "nothing more arrived");
  assert.is(all.filter((m) => m.content.includes(draft.subject)).length, 1);
});

test("two concurrent delivers of one draft: the second is refused while the first is sending; exactly one message arrives", async () => {
  let releaseData: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (releaseData = resolve));
  let dataStarted = false;
  const slow = await startPeer({
    onData(stream, _session, callback) {
      dataStarted = true;
      stream.resume();
      stream.on("end", () => void gate.then(() => callback()));
    },
  });
  try {
    const identity = await localIdentity();
    const draft = await draftFrom(identity);
    const d = deps({ relay: { host: "127.0.0.1", port: slow.port, ignoreTLS: true } });
    const first = deliverDraft(d, order(draft, identity));
    await waitFor("the first send to reach DATA", () => dataStarted);
    const marked = await f.store.messages.get(draft.user_id, draft.message_id);
    assert.ok(marked?.sending_since, "the draft is marked as being sent");
    const second = await deliverDraft(d, order(draft, identity));
    assert.is(second.error, true);
    assert.match(second.message, /already being sent/);
    releaseData();
    const firstReply = await first;
    assert.is(firstReply.error, false, firstReply.message);
    const third = await deliverDraft(d, order(draft, identity));
    assert.match(third.message, /already sent/);
  } finally {
    releaseData();
    await slow.close();
  }
});

test("a stale sending mark (older than the limit) does not block a send", async () => {
  const identity = await localIdentity();
  const stale = new Date(Date.now() - SENDING_STALE_MS - 5_000).toISOString();
  const draft = await draftFrom(identity, {}, { sending_since: stale });
  const reply = await deliverDraft(deps(), order(draft, identity));
  assert.is(reply.error, false, reply.message);
  const fresh = await draftFrom(identity, {}, { sending_since: new Date(Date.now() - 10_000).toISOString() });
  const refused = await deliverDraft(deps(), order(fresh, identity));
  assert.is(refused.error, true);
  assert.match(refused.message, /already being sent/);
});

// ---- a remote identity's own server ---------------------------------------------------------------

test("a remote identity sends through its own server, over STARTTLS with AUTH; the stored raw is byte-identical to what it received", async () => {
  const auths: { user: string; secure: boolean }[] = [];
  const own = await startProvider({
    onAuth(auth, session, callback) {
      auths.push({ user: auth.username ?? "", secure: session.secure });
      if (auth.username === "alice" && auth.password === PASSWORD) return callback(null, { user: "alice" });
      return callback(Object.assign(new Error("5.7.8 bad credentials"), { responseCode: 535 }));
    },
  });
  try {
    const identity = await remoteIdentity(own.server);
    const draft = await draftFrom(identity);
    const relayBefore = (await sink.messages()).length;
    const reply = await deliverDraft(deps({ destinations: admit([own.server]) }), order(draft, identity));
    assert.is(reply.error, false, reply.message);
    assert.equal(auths, [{ user: "alice", secure: true }], "logged in once, after STARTTLS");
    assert.is(own.received.length, 1);
    const got = own.received[0]!;
    assert.is(got.user, "alice", "sent on the authenticated session");
    assert.is(got.secure, true, "sent over TLS");
    assert.is(got.from, identity.identifier);
    assert.equal([...got.to].sort(), ["cc@dest.test", "secret@hidden.test", "to@dest.test"]);
    const sent = await f.store.messages.get(draft.user_id, draft.message_id);
    assert.ok(sent?.raw_msg_id);
    const stored = Buffer.from((await f.store.raws.read(sent.raw_msg_id)) ?? []);
    assert.ok(stored.equals(got.raw), "stored raw == bytes received by the server");
    assert.is((await sink.messages()).length, relayBefore, "nothing went through the relay");
  } finally {
    await own.close();
  }
});

test("outusername/outpassword win over username/password; a wrong password is a failure carrying 535, never the password", async () => {
  const own = await startProvider({
    onAuth(auth, _session, callback) {
      if (auth.username === "smtp-user" && auth.password === PASSWORD) return callback(null, { user: "smtp-user" });
      return callback(Object.assign(new Error("Authentication credentials invalid"), { responseCode: 535 }));
    },
  });
  try {
    const d = deps({ destinations: admit([own.server]) });
    const good = await remoteIdentity(own.server, { username: "imap-user", password: "imap-pass", outusername: "smtp-user", outpassword: PASSWORD });
    const okReply = await deliverDraft(d, order(await draftFrom(good), good));
    assert.is(okReply.error, false, okReply.message);

    const bad = await remoteIdentity(own.server, { username: "smtp-user", password: `${PASSWORD}-wrong` });
    const draft = await draftFrom(bad);
    const reply = await deliverDraft(d, order(draft, bad));
    assert.is(reply.error, true);
    assert.match(reply.message, /535/);
    assert.match(reply.message, new RegExp(`127\\.0\\.0\\.1:${own.port}`), "names the server");
    assert.not.ok(reply.message.includes(PASSWORD), "no password in the reply");
    const after = await f.store.messages.get(draft.user_id, draft.message_id);
    assert.is(after?.is_draft, true, "still a draft");
    assert.is(after?.sending_since, null, "the sending mark is cleared after a failure");
  } finally {
    await own.close();
  }
});

test("credentials never appear in the logs (which did record the sends)", async () => {
  assert.match(logs, /draft sent/, "the log capture works");
  assert.match(logs, /sending the draft failed/);
  assert.not.ok(logs.includes(PASSWORD), "the password is not logged");
  assert.not.ok(logs.includes("imap-pass"));
});

test("a remote identity without SMTP credentials or outserver is a failure, nothing is sent", async () => {
  const own = await startProvider();
  try {
    const noCredentials = await remoteIdentity(own.server, null);
    const a = await deliverDraft(deps({ destinations: admit([own.server]) }), order(await draftFrom(noCredentials), noCredentials));
    assert.is(a.error, true);
    assert.match(a.message, /no SMTP credentials/);
    const noServer = await remoteIdentity("not a server");
    const b = await deliverDraft(deps(), order(await draftFrom(noServer), noServer));
    assert.is(b.error, true);
    assert.match(b.message, /outgoing server/);
    assert.is(own.received.length, 0);
  } finally {
    await own.close();
  }
});

// ---- the destination policy and TLS for a remote identity's server --------------------------------

/** A draft of a fresh remote identity sending through `server`, sent under `destinations`; the reply and the draft afterwards. */
async function sendThrough(
  server: string,
  destinations: DestinationPolicy,
): Promise<{ reply: { error: boolean; message: string }; draft: Message | null; id: string }> {
  const identity = await remoteIdentity(server);
  const draft = await draftFrom(identity);
  const reply = await deliverDraft(deps({ destinations }), order(draft, identity));
  return { reply, draft: await f.store.messages.get(draft.user_id, draft.message_id), id: draft.message_id };
}

/** Whether `text` holds alice's password, as sent by AUTH LOGIN, AUTH PLAIN or in clear. */
function holdsPassword(text: string): boolean {
  const forms = [PASSWORD, Buffer.from(PASSWORD).toString("base64"), Buffer.from(`\0alice\0${PASSWORD}`).toString("base64")];
  return forms.some((form) => text.includes(form));
}

test("the default policy refuses loopback, private, link-local addresses and localhost before the draft is claimed, in words that do not tell whether anything listens there", async () => {
  const open = await startProvider();
  const closed = await freePort();
  try {
    const messages: string[] = [];
    for (const server of [open.server, `127.0.0.1:${closed}`, "10.1.2.3:587", "169.254.169.254:25", "[::1]:587", "localhost:587"]) {
      const { reply, draft, id } = await sendThrough(server, admit([]));
      assert.is(reply.error, true, server);
      assert.match(
        reply.message,
        new RegExp(`^cannot send message ${id}: SMTP server .+ is not an allowed destination: .+ (a loopback|a private|a link-local) address`),
        reply.message,
      );
      assert.is(draft?.is_draft, true, server);
      assert.is(draft?.sending_since ?? null, null, "never claimed");
      messages.push(reply.message.replace(id, "<id>"));
    }
    assert.is(
      messages[0]?.replaceAll(String(open.port), "<port>"),
      messages[1]?.replaceAll(String(closed), "<port>"),
      "an open port and a closed one get the same words",
    );
    assert.is(open.received.length, 0);
  } finally {
    await open.close();
  }
});

test("the platform's relay is never a user's outserver, even when the allow list admits loopback or names the relay itself", async () => {
  const before = (await sink.messages()).length;
  for (const allow of ["127.0.0.0/8+cleartext+unverified-tls", `${sink.host}:${sink.port}+cleartext`]) {
    const { reply, draft } = await sendThrough(`${sink.host}:${sink.port}`, admit([allow]));
    assert.is(reply.error, true, allow);
    assert.match(reply.message, /is not an allowed destination: it is the platform's SMTP relay \(CALIOPEN_SMTP_RELAY\)$/, allow);
    assert.is(draft?.is_draft, true);
  }
  assert.is((await sink.messages()).length, before, "nothing reached the relay");
});

test("a STARTTLS stripper in the middle: the password is never sent; only the operator's +cleartext exception lets it through, and then the man in the middle reads it", async () => {
  const own = await startProvider();
  const mitm = await startStarttlsStripper("smtp", { host: "127.0.0.1", port: own.port });
  try {
    const refused = await sendThrough(mitm.server, admit([mitm.server]));
    assert.is(refused.reply.error, true);
    assert.match(
      refused.reply.message,
      new RegExp(
        `SMTP server ${mitm.server}: not used: it does not offer STARTTLS, so the password would cross the network in clear; an operator may admit it with \\+cleartext`,
      ),
    );
    assert.match(mitm.intercepted(), /^EHLO /m, "the client did talk to it");
    assert.not.match(mitm.intercepted(), /^AUTH /m, "but never tried to log in");
    assert.not.ok(holdsPassword(mitm.intercepted()));
    assert.is(own.received.length, 0);
    assert.is(refused.draft?.is_draft, true);

    const excepted = await sendThrough(mitm.server, admit([`${mitm.server}+cleartext`]));
    assert.is(excepted.reply.error, false, excepted.reply.message);
    assert.is(own.received[0]?.secure, false, "it went in clear");
    assert.ok(holdsPassword(mitm.intercepted()), "and the password with it: why this is an exception of the operator's only");
  } finally {
    await mitm.stop();
    await own.close();
  }
});

test("a self-signed certificate is not trusted unless the operator excepts that server with +unverified-tls; the password is not sent to it", async () => {
  let logins = 0;
  const selfSigned = await startProvider({
    cert: certs.selfSignedCert,
    key: certs.selfSignedKey,
    onAuth(auth, _session, callback) {
      logins++;
      return callback(null, { user: auth.username ?? "" });
    },
  });
  try {
    const refused = await sendThrough(selfSigned.server, admit([selfSigned.server]));
    assert.is(refused.reply.error, true);
    assert.match(
      refused.reply.message,
      /not used: its TLS certificate is not trusted \(self[- ]signed certificate\); an operator may trust its CA \(CALIOPEN_DESTINATION_CA\) or admit it with \+unverified-tls/,
    );
    assert.is(logins, 0, "no login");
    assert.is(selfSigned.received.length, 0);
    const excepted = await sendThrough(selfSigned.server, admit([`${selfSigned.server}+unverified-tls`]));
    assert.is(excepted.reply.error, false, excepted.reply.message);
    assert.is(selfSigned.received[0]?.secure, true, "still over TLS");
  } finally {
    await selfSigned.close();
  }
});

test("the connection goes to the checked address while TLS checks the certificate against the name the user gave", async () => {
  const provider = await startProvider({ cert: certs.namedCert, key: certs.namedKey });
  const resolve: Resolver = async (host) =>
    host === PROVIDER_NAME ? ["127.0.0.1"] : Promise.reject(Object.assign(new Error(`ENOTFOUND ${host}`), { code: "ENOTFOUND" }));
  try {
    const byName = await sendThrough(`${PROVIDER_NAME}:${provider.port}`, admit([`${PROVIDER_NAME}:${provider.port}`], resolve));
    assert.is(byName.reply.error, false, byName.reply.message);
    assert.is(provider.received[0]?.secure, true);
    // The same server by its address: its certificate does not name 127.0.0.1.
    const byAddress = await sendThrough(provider.server, admit([provider.server], resolve));
    assert.is(byAddress.reply.error, true);
    assert.match(byAddress.reply.message, /its TLS certificate is not trusted .*127\.0\.0\.1/);
    assert.is(provider.received.length, 1);
  } finally {
    await provider.close();
  }
});

test("a server that offers no AUTH is not used for a remote identity: the user must log in, not ride on a trust it gives everyone", async () => {
  const open = await startProvider({ authOptional: true, disabledCommands: ["AUTH"] });
  try {
    const { reply, draft } = await sendThrough(open.server, admit([open.server]));
    assert.is(reply.error, true);
    assert.match(reply.message, new RegExp(`SMTP server ${open.server}: .*AUTH`, "i"));
    assert.is(open.received.length, 0, "nothing was accepted");
    assert.is(draft?.is_draft, true);
  } finally {
    await open.close();
  }
});

// ---- refusals and failures ------------------------------------------------------------------------

test("a server refusing the recipients: failure reply carrying its 550, the draft stays a draft", async () => {
  const refusing = await startPeer({
    onRcptTo(address, _session, callback) {
      callback(Object.assign(new Error(`unknown user ${address.address}`), { responseCode: 550 }));
    },
  });
  try {
    const identity = await localIdentity();
    const draft = await draftFrom(identity);
    const reply = await deliverDraft(deps({ relay: { host: "127.0.0.1", port: refusing.port, ignoreTLS: true } }), order(draft, identity));
    assert.is(reply.error, true);
    assert.match(reply.message, /550 unknown user secret@hidden\.test/);
    assert.match(reply.message, new RegExp(`failed to send message ${draft.message_id}`));
    const after = await f.store.messages.get(draft.user_id, draft.message_id);
    assert.is(after?.is_draft, true);
    assert.is(after?.raw_msg_id, null);
    assert.is(after?.sending_since, null);
    assert.is(refusing.received.length, 0);
  } finally {
    await refusing.close();
  }
});

test("one recipient refused, others accepted: sent (it cannot be unsent), the refusal reported", async () => {
  const partial = await startPeer({
    onRcptTo(address, _session, callback) {
      if (address.address === "cc@dest.test") return callback(Object.assign(new Error("no such mailbox"), { responseCode: 550 }));
      callback();
    },
  });
  try {
    const identity = await localIdentity();
    const draft = await draftFrom(identity);
    const reply = await deliverDraft(deps({ relay: { host: "127.0.0.1", port: partial.port, ignoreTLS: true } }), order(draft, identity));
    assert.is(reply.error, false, reply.message);
    assert.match(reply.message, /cc@dest\.test: 550 no such mailbox/);
    assert.equal(reply.rejected, [{ address: "cc@dest.test", response: "550 no such mailbox" }]);
    assert.equal([...(partial.received[0]?.to ?? [])].sort(), ["secret@hidden.test", "to@dest.test"]);
    assert.is((await f.store.messages.get(draft.user_id, draft.message_id))?.is_draft, false);
  } finally {
    await partial.close();
  }
});

test("an unreachable server: failure naming it, and the draft can be sent later", async () => {
  const identity = await localIdentity();
  const draft = await draftFrom(identity);
  const port = await freePort();
  const reply = await deliverDraft(deps({ relay: { host: "127.0.0.1", port, ignoreTLS: true } }), order(draft, identity));
  assert.is(reply.error, true);
  assert.match(reply.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.match(reply.message, /ECONNREFUSED|connect/i);
  const after = await f.store.messages.get(draft.user_id, draft.message_id);
  assert.is(after?.is_draft, true);
  assert.is(after?.sending_since, null);
  const later = await deliverDraft(deps(), order(draft, identity));
  assert.is(later.error, false, later.message);
});

test("refused orders: unknown draft, a received message, no recipient, another user's identity, a deleted identity, a twitter identity", async () => {
  const identity = await localIdentity();
  const d = deps();
  const before = (await sink.messages()).length;

  const unknown = randomUUID();
  assert.equal(await deliverDraft(d, { order: "deliver", message_id: unknown, remote_id: identity.identity_id, user_id: identity.user_id }), {
    error: true,
    message: `draft ${unknown} not found`,
  });

  const received = await f.store.messages.create(newMessage(identity.user_id, { user_identities: [identity.identity_id] }));
  const notDraft = await deliverDraft(d, order(received, identity));
  assert.equal(notDraft, { error: true, message: `message ${received.message_id} is not a draft` });

  const lonely = await draftFrom(identity, { participants: [] });
  assert.equal(await deliverDraft(d, order(lonely, identity)), { error: true, message: `draft ${lonely.message_id} has no recipient` });

  const stranger = await localIdentity();
  const draft = await draftFrom(identity);
  const foreign = await deliverDraft(d, { ...order(draft, identity), remote_id: stranger.identity_id });
  assert.is(foreign.error, true);
  assert.match(foreign.message, /not sent from identity/);
  // Even a draft claiming that identity: the identity is looked up under the draft's user.
  const claimed = await draftFrom(identity, {}, { user_identities: [stranger.identity_id] });
  const foreign2 = await deliverDraft(d, { ...order(claimed, identity), remote_id: stranger.identity_id });
  assert.equal(foreign2, { error: true, message: `identity ${stranger.identity_id} of user ${identity.user_id} not found` });

  const doomed = await localIdentity();
  const orphan = await draftFrom(doomed);
  await f.store.identities.markDeleted(doomed.user_id, doomed.identity_id);
  const deleted = await deliverDraft(d, order(orphan, doomed));
  assert.is(deleted.error, true);
  assert.match(deleted.message, /not found/);

  const twitter = await f.store.identities.create({
    user_id: randomUUID(),
    type: "remote",
    protocol: "twitter",
    identifier: `tw${Date.now()}`,
    credentials: { token: "t" },
  });
  const tweet = await deliverDraft(d, order(await draftFrom(twitter), twitter));
  assert.is(tweet.error, true);
  assert.match(tweet.message, /twitter identity/);

  assert.is((await sink.messages()).length, before, "none of them sent anything");
  assert.is((await f.store.messages.get(lonely.user_id, lonely.message_id))?.sending_since ?? null, null, "a refused draft is not marked");
});

test("a store failure is a failure reply, never a throw", async () => {
  const identity = await localIdentity();
  const broken = {
    ...f.store,
    messages: { ...f.store.messages, get: async () => Promise.reject(new Error("KV unavailable")) },
  } as unknown as OutboundSmtpDeps["store"];
  const reply = await deliverDraft(deps({ store: broken }), {
    order: "deliver",
    message_id: randomUUID(),
    remote_id: identity.identity_id,
    user_id: identity.user_id,
  });
  assert.is(reply.error, true);
  assert.match(reply.message, /KV unavailable/);
});

test("outserver parsing", () => {
  assert.equal(parseHostPort("smtp.example.com:587"), { host: "smtp.example.com", port: 587 });
  assert.equal(parseHostPort("[::1]:25"), { host: "::1", port: 25 });
  assert.is(parseHostPort("smtp.example.com"), null);
  assert.is(parseHostPort("host:99999"), null);
  assert.is(parseHostPort("host:0"), null);
  assert.is(parseHostPort("::1:25"), null, "an IPv6 address needs its brackets");
  assert.is(parseHostPort(undefined), null);
});

test.run();
