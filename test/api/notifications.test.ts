// The users' notifications of new mail, end to end on one node: mail arriving over SMTP (swaks, to the
// node's own inbound server) and by an IMAP sync (Dovecot), and a draft sent through the relay
// (Postfix's smtp-sink), each reach the user's open event stream (GET /api/v2/notifications/stream) and
// the history (GET /api/v2/notifications), never another user's. A reconnect with Last-Event-ID gets
// what was published meanwhile; a mail imported again is not notified again; an IMAP sync of several
// mails is one notification. Attacked: more streams than a token or the node may hold (429, opened all
// at once), a revoked token's stream, a reader that stops reading (what the node takes for it bounded,
// its connection closed), and imports with no notification stream at all (they still succeed).
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import { notificationStreamName } from "../../actors/notifications/notification-stream.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { DEFAULT_HTTP_SETTINGS } from "../../api/http-settings.ts";
import { MAX_SUMMARY_CHARS, type Notification, type NotificationElement } from "../../contract/events-table.ts";
import { encodeJson } from "../../runtime/json.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { PASSWORD, startTestDovecot, type TestDovecot } from "../../scripts/local-servers/dovecot.ts";
import { makeTestCertificates, type TestCertificates } from "../../scripts/local-servers/tls-certs.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { callApi } from "../helpers/api-client.ts";
import { type EventStreamClient, openEventStream, type StreamEvent } from "../helpers/event-stream-client.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { type SmtpSink, startSmtpSink } from "../helpers/smtp-sink.ts";
import { startTestNode, testCaliopenConfig, testDestinations } from "../helpers/test-node.ts";

interface Account {
  user_id: string;
  token: string;
  identity_id: string;
}

interface Context {
  nats: TestNats;
  certs: TestCertificates;
  dovecot: TestDovecot;
  sink: SmtpSink;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  apiUrl: string;
  smtpPort: number;
  alice: Account;
  bob: Account;
  /** Streams a test opened, closed after it. */
  open: EventStreamClient[];
}

const LIMITS = { maxStreams: 8, maxStreamsPerToken: 3, slowReaderMs: 1_000, recheckMs: 500 };

const test = suite<Context>("notifications of new mail");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.certs = await makeTestCertificates();
  ctx.dovecot = await startTestDovecot({ tls: { cert: ctx.certs.serverCert, key: ctx.certs.serverKey, ca: ctx.certs.ca } });
  ctx.sink = await startSmtpSink();
  const config = testCaliopenConfig({
    api: { host: "127.0.0.1", port: 0, http: { ...DEFAULT_HTTP_SETTINGS, rateLimits: { perToken: null, perIp: null }, notifications: LIMITS } },
    mail: {
      host: "platform.test",
      relay: { host: ctx.sink.host, port: ctx.sink.port },
      smtp: { host: "127.0.0.1", port: 0, maxSize: 1_000_000, maxRecipients: 10 },
    },
    destinations: testDestinations([ctx.dovecot.server, "127.0.0.1:1"], [await ctx.certs.caPem()]),
    notifications: { maxBytes: 256 * 1024 * 1024, maxMessages: 100_000, maxPerUser: 5_000 },
  });
  let apiUrl = "";
  let smtpPort = 0;
  ctx.node = await startTestNode(
    ctx.nats.endpoint,
    caliopenServices(config, { onApiStarted: (url) => (apiUrl = url), onSmtpStarted: (port) => (smtpPort = port) }),
    { nodeId: "notifications-node" },
  );
  ctx.apiUrl = apiUrl;
  ctx.smtpPort = smtpPort;
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  ctx.alice = await account(ctx, "alice");
  ctx.bob = await account(ctx, "bob");
  ctx.open = [];
});
test.after.each((ctx) => {
  for (const stream of ctx.open) stream.close();
  ctx.open = [];
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.sink.stop();
  await ctx.dovecot.stop();
  await ctx.certs.remove();
  await ctx.nats.stop();
});

async function account(ctx: Context, name: string): Promise<Account> {
  const created = await createUser(ctx.store, { name, email: `${name}@platform.test` });
  return { user_id: created.user.user_id, token: created.token, identity_id: created.identity?.identity_id ?? "" };
}

/** A mail to `to` through the node's inbound SMTP server; resolves once swaks is done (the mail accepted). */
function swaks(ctx: Context, to: string, subject: string, body: string, headers: string[] = []): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = ["--server", "127.0.0.1", "--port", String(ctx.smtpPort), "--from", "carol@elsewhere.test", "--to", to];
    for (const header of [`Subject: ${subject}`, ...headers]) args.push("--header", header);
    const child = spawn("swaks", [...args, "--body", body], { stdio: ["ignore", "pipe", "pipe"] });
    let transcript = "";
    child.stdout.on("data", (chunk: Buffer) => (transcript += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (transcript += chunk.toString()));
    child.once("close", (code) => (code === 0 ? resolve() : reject(new Error(`swaks failed (${code}): ${transcript}`))));
  });
}

/** The user's event stream, once it is ready (its `ready` event came). */
async function stream(ctx: Context, who: Account, lastEventId?: string): Promise<EventStreamClient> {
  const headers: Record<string, string> = lastEventId === undefined ? {} : { "last-event-id": lastEventId };
  const client = await openEventStream(`${ctx.apiUrl}/api/v2/notifications/stream`, who.token, undefined, headers);
  ctx.open.push(client);
  assert.is(client.status, 200, JSON.stringify(await (client.status === 200 ? null : client.refusal)));
  await waitFor("the stream's ready event", () => client.events.some((event) => event.event === "ready"));
  return client;
}

const notifications = (client: EventStreamClient): StreamEvent[] => client.events.filter((event) => event.event === "notification");
const elementsOf = (client: EventStreamClient): NotificationElement[] =>
  notifications(client).flatMap((event) => (event.data.elements as NotificationElement[] | undefined) ?? []);
const subjectsOf = (client: EventStreamClient) => elementsOf(client).map((element) => element.subject);

test("a mail arriving over SMTP reaches its user's open stream, with a short summary, and no other user's", async (ctx) => {
  const alice = await stream(ctx, ctx.alice);
  const bob = await stream(ctx, ctx.bob);
  const long = `Shall we meet tomorrow?\n\n${"and talk at length ".repeat(40)}`;
  await swaks(ctx, "alice@platform.test", "lunch tomorrow", long);
  await waitFor("alice's notification", () => subjectsOf(alice).includes("lunch tomorrow"), 10_000);
  const event = notifications(alice).find((candidate) => (candidate.data.elements as NotificationElement[])[0]?.subject === "lunch tomorrow") as StreamEvent;
  assert.is(event.id, String(event.data.seq), "the event's id is its stream sequence");
  assert.is(event.data.type, "new_message");
  assert.is(event.data.user_id, ctx.alice.user_id);
  assert.is(event.data.size, 1);
  const element = (event.data.elements as NotificationElement[])[0] as NotificationElement;
  assert.is(element.identity_id, ctx.alice.identity_id);
  assert.is(element.from, "carol@elsewhere.test");
  assert.is(element.is_received, true);
  assert.is(element.is_unread, true);
  assert.ok((element.excerpt as string).startsWith("Shall we meet tomorrow? and talk at length"), element.excerpt);
  assert.ok((element.excerpt as string).length <= MAX_SUMMARY_CHARS);
  const stored = await callApi(ctx.apiUrl, ctx.alice.token, "GET", `/api/v2/messages/${element.message_id}`);
  assert.is(stored.status, 200);
  assert.is(stored.body.discussion_id, element.discussion_id);

  // Bob's own mail reaches him, and alice's never did.
  await swaks(ctx, "bob@platform.test", "for bob", "hi Bob");
  await waitFor("bob's notification", () => subjectsOf(bob).includes("for bob"), 10_000);
  await sleep(300);
  assert.equal(subjectsOf(bob), ["for bob"]);
  assert.not.ok(subjectsOf(alice).includes("for bob"));
});

test("a mail imported again is not notified again", async (ctx) => {
  const alice = await stream(ctx, ctx.alice);
  const headers = ["Message-Id: <twice-2026@elsewhere.test>"];
  await swaks(ctx, "alice@platform.test", "sent twice", "the same mail", headers);
  await waitFor("the first notification", () => subjectsOf(alice).includes("sent twice"), 10_000);
  await swaks(ctx, "alice@platform.test", "sent twice", "the same mail", headers);
  await swaks(ctx, "alice@platform.test", "after the repeat", "another mail");
  await waitFor("the next mail's notification", () => subjectsOf(alice).includes("after the repeat"), 10_000);
  await sleep(400);
  assert.is(subjectsOf(alice).filter((subject) => subject === "sent twice").length, 1);
});

test("a client reconnecting with Last-Event-ID gets what was published while it was away, and nothing before", async (ctx) => {
  const first = await stream(ctx, ctx.alice);
  await swaks(ctx, "alice@platform.test", "before the break", "one");
  await waitFor("the first notification", () => subjectsOf(first).includes("before the break"), 10_000);
  const lastSeen = notifications(first).at(-1)?.id as string;
  first.close();

  await swaks(ctx, "alice@platform.test", "while away 1", "two");
  await swaks(ctx, "alice@platform.test", "while away 2", "three");
  // Both imported and notified (the history has them) before the client comes back.
  await waitFor(
    "both notifications in the history",
    async () => {
      const page = await callApi(ctx.apiUrl, ctx.alice.token, "GET", `/api/v2/notifications?since=${lastSeen}`);
      const subjects = (page.body.items as Notification[]).flatMap((item) => item.elements ?? []).map((element) => element.subject);
      return subjects.includes("while away 1") && subjects.includes("while away 2");
    },
    10_000,
  );

  const again = await stream(ctx, ctx.alice, lastSeen);
  await waitFor("what was missed", () => subjectsOf(again).includes("while away 2"), 5_000);
  assert.equal(subjectsOf(again), ["while away 1", "while away 2"], "the missed mail, once each, in order, and not the one seen before");
  assert.is((again.events[0] as StreamEvent).event, "ready");
  assert.is((again.events[0] as StreamEvent).data.after, Number(lastSeen));
  assert.ok(notifications(again).every((event) => Number(event.id) > Number(lastSeen)));

  // A Last-Event-ID that is not of this history says notifications may have been missed.
  const unknown = await stream(ctx, ctx.alice, "999999999");
  assert.match(String((unknown.events[0] as StreamEvent).data.gap), /may have been missed/);
  const bad = await openEventStream(`${ctx.apiUrl}/api/v2/notifications/stream`, ctx.alice.token, undefined, { "last-event-id": "12; rm" });
  ctx.open.push(bad);
  assert.is(bad.status, 400);
});

test("GET /api/v2/notifications: the newest first, or those after `since`, each user's own only", async (ctx) => {
  await swaks(ctx, "alice@platform.test", "paged 1", "p1");
  await swaks(ctx, "alice@platform.test", "paged 2", "p2");
  await waitFor(
    "the history",
    async () => {
      const page = await callApi(ctx.apiUrl, ctx.alice.token, "GET", "/api/v2/notifications?limit=100");
      return (page.body.items as Notification[]).some((item) => item.elements?.some((element) => element.subject === "paged 2"));
    },
    10_000,
  );
  const all = (await callApi(ctx.apiUrl, ctx.alice.token, "GET", "/api/v2/notifications?limit=100")).body;
  const seqs = (all.items as (Notification & { seq: number })[]).map((item) => item.seq);
  assert.ok(seqs.length >= 3);
  assert.equal(
    seqs,
    [...seqs].sort((a, b) => b - a),
    "newest first",
  );
  assert.is(all.next, null);
  assert.ok((all.items as Notification[]).every((item) => item.user_id === ctx.alice.user_id));

  const newest = (await callApi(ctx.apiUrl, ctx.alice.token, "GET", "/api/v2/notifications?limit=2")).body;
  assert.equal(
    newest.items.map((item: { seq: number }) => item.seq),
    seqs.slice(0, 2),
  );
  assert.is(newest.next, seqs[1]);
  const older = (await callApi(ctx.apiUrl, ctx.alice.token, "GET", `/api/v2/notifications?limit=2&before=${newest.next}`)).body;
  assert.equal(
    older.items.map((item: { seq: number }) => item.seq),
    seqs.slice(2, 4),
  );

  const oldest = seqs.at(-1) as number;
  const after = (await callApi(ctx.apiUrl, ctx.alice.token, "GET", `/api/v2/notifications?since=${oldest}&limit=2`)).body;
  assert.equal(
    after.items.map((item: { seq: number }) => item.seq),
    [...seqs].reverse().slice(1, 3),
    "oldest first after since",
  );
  assert.is(after.next, after.items.at(-1).seq);

  const bobs = (await callApi(ctx.apiUrl, ctx.bob.token, "GET", "/api/v2/notifications?limit=100")).body;
  assert.ok((bobs.items as Notification[]).every((item) => item.user_id === ctx.bob.user_id));
  assert.not.ok((bobs.items as (Notification & { seq: number })[]).some((item) => seqs.includes(item.seq)));

  assert.is((await callApi(ctx.apiUrl, ctx.alice.token, "GET", "/api/v2/notifications?since=1&before=5")).status, 400);
  assert.is((await callApi(ctx.apiUrl, ctx.alice.token, "GET", "/api/v2/notifications?limit=101")).status, 400);
  assert.is((await callApi(ctx.apiUrl, null, "GET", "/api/v2/notifications")).status, 401);
});

test("a draft sent notifies its user once (message_sent); sending it again says nothing", async (ctx) => {
  const alice = await stream(ctx, ctx.alice);
  const draft = await callApi(ctx.apiUrl, ctx.alice.token, "POST", "/api/v2/messages", {
    identity_id: ctx.alice.identity_id,
    subject: "a reply",
    body_plain: "Sent from here.",
    participants: [{ type: "To", address: "dave@elsewhere.test" }],
  });
  assert.is(draft.status, 201, JSON.stringify(draft.body));
  const sent = await callApi(ctx.apiUrl, ctx.alice.token, "POST", `/api/v2/messages/${draft.body.message_id}/actions`, { actions: ["send"] });
  assert.is(sent.status, 200, JSON.stringify(sent.body));
  await ctx.sink.waitForMessages(1);
  const event = await waitFor("the sent notification", () => notifications(alice).find((candidate) => candidate.data.type === "message_sent"), 10_000);
  const element = (event.data.elements as NotificationElement[])[0] as NotificationElement;
  assert.is(element.message_id, draft.body.message_id);
  assert.is(element.identity_id, ctx.alice.identity_id);
  assert.is(element.is_received, false);
  assert.is(element.subject, "a reply");

  const again = await callApi(ctx.apiUrl, ctx.alice.token, "POST", `/api/v2/messages/${draft.body.message_id}/actions`, { actions: ["send"] });
  assert.ok(again.status < 500, JSON.stringify(again.body));
  await sleep(500);
  assert.is(notifications(alice).filter((candidate) => candidate.data.type === "message_sent").length, 1);
});

test("an IMAP sync of several mails is one notification listing them", async (ctx) => {
  for (const n of [1, 2, 3]) {
    await ctx.dovecot.append(
      "alice-at-provider",
      PASSWORD,
      `From: Erin <erin@elsewhere.test>\r\nTo: alice@provider.test\r\nSubject: synced ${n}\r\nMessage-ID: <synced-${n}@elsewhere.test>\r\nDate: Sat, 28 Nov 2026 09:0${n}:00 +0000\r\n\r\nMail number ${n}.\r\n`,
    );
  }
  const alice = await stream(ctx, ctx.alice);
  const created = await callApi(ctx.apiUrl, ctx.alice.token, "POST", "/api/v2/identities/remotes", {
    protocol: "imap",
    identifier: "alice@provider.test",
    credentials: { username: "alice-at-provider", password: PASSWORD },
    infos: { inserver: ctx.dovecot.server, outserver: "127.0.0.1:1", poll_interval: "15" },
  });
  assert.is(created.status, 201, JSON.stringify(created.body));
  const identityId = created.body.identity_id as string;
  await waitFor("the sync's notification", () => ["synced 1", "synced 2", "synced 3"].every((subject) => subjectsOf(alice).includes(subject)), 20_000);
  await sleep(500);
  const fromSync = notifications(alice).filter((event) => (event.data.elements as NotificationElement[]).some((element) => element.identity_id === identityId));
  assert.is(fromSync.length, 1, JSON.stringify(fromSync.map((event) => event.data)));
  assert.is((fromSync[0] as StreamEvent).data.size, 3);
  assert.equal(((fromSync[0] as StreamEvent).data.elements as NotificationElement[]).map((element) => element.subject).sort(), [
    "synced 1",
    "synced 2",
    "synced 3",
  ]);
});

test("more streams than a token, or the node, may hold are refused with 429; closed ones free their place", async (ctx) => {
  const url = `${ctx.apiUrl}/api/v2/notifications/stream`;
  // Opened all at once: the bound holds while their feeds are being opened.
  const burst = await Promise.all(Array.from({ length: LIMITS.maxStreamsPerToken + 2 }, () => openEventStream(url, ctx.alice.token)));
  ctx.open.push(...burst);
  assert.is(burst.filter((client) => client.status === 200).length, LIMITS.maxStreamsPerToken);
  const refused = burst.filter((client) => client.status === 429);
  assert.is(refused.length, 2);
  assert.is((refused[0] as EventStreamClient).headers["retry-after"], "10");
  assert.match(String((await (refused[0] as EventStreamClient).refusal)?.message), /token .* holds 3 notification streams/);
  for (const client of burst) client.close();
  await waitFor("a place again", async () => {
    const client = await openEventStream(url, ctx.alice.token);
    client.close();
    return client.status === 200;
  });

  const others = await Promise.all([1, 2, 3].map((n) => account(ctx, `crowd${n}`)));
  const crowd = await Promise.all([...others, ...others, ...others].slice(0, LIMITS.maxStreams + 1).map((who) => openEventStream(url, who.token)));
  ctx.open.push(...crowd);
  assert.is(crowd.filter((client) => client.status === 200).length, LIMITS.maxStreams);
  const overNode = crowd.find((client) => client.status === 429) as EventStreamClient;
  assert.match(String((await overNode.refusal)?.message), /at most 8 notification streams at once/);
});

test("a stream ends soon after its token is revoked", async (ctx) => {
  const erin = await account(ctx, "erin");
  const client = await stream(ctx, erin);
  await ctx.store.tokens.revokeAll(erin.user_id);
  await waitFor("the stream ended", () => client.ended, LIMITS.recheckMs * 4 + 2_000);
});

test("a reader that stops reading holds a bounded part of the feed, and is disconnected", async (ctx) => {
  const dave = await account(ctx, "dave");
  const url = new URL(`${ctx.apiUrl}/api/v2/notifications/stream`);
  const socket = connect({ host: url.hostname, port: Number(url.port) });
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  let closed = false;
  let received = 0;
  socket.on("close", () => (closed = true));
  socket.on("error", () => undefined);
  socket.once("data", (chunk: Buffer) => {
    received += chunk.length;
    // The answer's head came: from now on the client reads nothing.
    socket.pause();
  });
  socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${dave.token}\r\n\r\n`);
  await waitFor("the answer's head", () => received > 0);

  // 3,000 notifications of about 14 KB each (42 MB): far more than the socket's buffers.
  const js = jetstream(ctx.client);
  const element = (n: number): NotificationElement => ({
    message_id: `m${n}`,
    discussion_id: "d",
    identity_id: "i",
    protocol: "email",
    is_received: true,
    is_unread: true,
    date: new Date().toISOString(),
    from: "f".repeat(MAX_SUMMARY_CHARS),
    subject: "s".repeat(MAX_SUMMARY_CHARS),
    excerpt: "e".repeat(MAX_SUMMARY_CHARS),
  });
  const TOTAL = 3_000;
  // What the node takes from JetStream for it (its consumer's deliveries) stays what the socket's
  // buffers hold and a few ahead; past slowReaderMs without progress, the node gives up on it.
  const jsm = await jetstreamManager(ctx.client);
  let delivered = 0;
  const gaveUp = waitFor(
    "the node gave up on the reader",
    async () => {
      const consumers = await jsm.consumers.list(notificationStreamName(new Subjects(""))).next();
      const hers = consumers.filter((info) => info.config.filter_subject === `notifications.${dave.user_id}`);
      for (const info of hers) delivered = Math.max(delivered, info.delivered.consumer_seq);
      return delivered > 0 && hers.length === 0;
    },
    LIMITS.slowReaderMs + 30_000,
    100,
  );
  for (let n = 0; n < TOTAL; n += 100) {
    await Promise.all(
      Array.from({ length: 100 }, (_, k) => {
        const notification: Notification = {
          type: "new_message",
          user_id: dave.user_id,
          size: 20,
          emitted_at: new Date().toISOString(),
          elements: Array.from({ length: 20 }, (_, e) => element(n + k + e)),
        };
        return js.publish(`notifications.${dave.user_id}`, encodeJson(notification));
      }),
    );
  }
  await gaveUp;
  assert.ok(delivered > 0, "the stream was fed");
  assert.ok(delivered < TOTAL / 4, `${delivered} of ${TOTAL} notifications taken for a reader that reads nothing`);
  // Reading again, the client finds its connection closed once it has read what was in flight.
  socket.resume();
  await waitFor("the connection closed", () => closed, 10_000);
  socket.destroy();
});

test("imports go on when notifications cannot be stored (the stream gone): the mail is stored all the same", async (ctx) => {
  const jsm = await jetstreamManager(ctx.client);
  await jsm.streams.delete(notificationStreamName(new Subjects("")));
  await swaks(ctx, "alice@platform.test", "no stream", "still stored");
  const stored = await waitFor(
    "the mail stored",
    async () =>
      ((await callApi(ctx.apiUrl, ctx.alice.token, "GET", "/api/v2/messages")).body.items as { subject: string }[]).find((m) => m.subject === "no stream"),
    10_000,
  );
  assert.ok(stored);
  const admin = await createUser(ctx.store, { name: "root", admin: true });
  await waitFor(
    "the failure counted",
    async () => {
      const metrics = await fetch(`${ctx.apiUrl}/metrics`, { headers: { authorization: `Bearer ${admin.token}` } }).then((response) => response.text());
      return /caliopen_notifications_total\{outcome="failed"\} [1-9]/.test(metrics);
    },
    10_000,
  );
});

test.run();
