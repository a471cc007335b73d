// How `new_message` notifications are gathered and published: a user's imports that follow each other are
// one notification (listing them up to the original's threshold of 20, only counting them above), sent
// once they stop for a moment or at the latest a bounded time after the first; 10,000 imports hold no
// more than the threshold's elements, and batches wait for a bounded number of users. The publisher
// (on a real nats-server with the notification stream) refuses a user id that cannot be a subject token,
// drops rather than queues past its bound of publishes in flight, and never throws when JetStream fails.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { NewMessageBatches } from "../../../actors/notifications/new-message-batches.ts";
import { NotificationPublisher, type NotificationSink } from "../../../actors/notifications/notification-publisher.ts";
import { DEFAULT_NOTIFICATION_HISTORY_LIMITS, notificationStreamName, openNotificationStream } from "../../../actors/notifications/notification-stream.ts";
import { notificationElement } from "../../../actors/notifications/notification-summary.ts";
import { type Message, SCHEMA_VERSION } from "../../../actors/store/model.ts";
import { NotificationFeed } from "../../../api/notification-feed.ts";
import { MAX_NOTIFICATION_ELEMENTS, MAX_SUMMARY_CHARS, type Notification, type NotificationElement } from "../../../contract/events-table.ts";
import { decodeJson } from "../../../runtime/json.ts";
import { silentLogger } from "../../../runtime/logger.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import { startTestNats } from "../../helpers/nats-server.ts";

const test = suite("notifications: batches and publishing");

function recorder(): NotificationSink & { published: Notification[] } {
  const published: Notification[] = [];
  return { published, publish: (notification) => void published.push(notification) };
}

const element = (n: number): NotificationElement => ({
  message_id: `m${n}`,
  discussion_id: "d",
  identity_id: "i",
  protocol: "email",
  is_received: true,
  is_unread: true,
  date: "2026-11-28T09:00:00.000Z",
});

function message(overrides: Partial<Message> = {}): Message {
  return {
    schema: SCHEMA_VERSION,
    user_id: "alice",
    message_id: "m1",
    discussion_id: "d1",
    raw_msg_id: "r1",
    subject: "Hello",
    body_plain: "Hi there",
    body_html: "",
    date: "2026-11-28T09:00:00.000Z",
    date_insert: "2026-11-28T09:00:01.000Z",
    is_draft: false,
    is_unread: true,
    is_received: true,
    is_answered: false,
    participants: [{ type: "From", address: "bob@elsewhere.test", label: "Bob", protocol: "email", contact_ids: [] }],
    external_references: { message_id: "x@y", parent_id: "", ancestors_ids: [] },
    attachments: [],
    tags: [],
    protocol: "email",
    user_identities: ["i1"],
    parent_id: null,
    ...overrides,
  };
}

test("imports following each other are one notification, sent once they stop for a moment", async () => {
  const sink = recorder();
  const batches = new NewMessageBatches(sink, { quietMs: 50, maxDelayMs: 5_000, maxUsers: 10 });
  for (let n = 1; n <= 3; n++) {
    batches.add("alice", element(n));
    await sleep(10);
  }
  batches.add("bob", element(9));
  assert.is(sink.published.length, 0, "nothing while the imports go on");
  await waitFor("the batches sent", () => sink.published.length === 2);
  const alice = sink.published.find((notification) => notification.user_id === "alice") as Notification;
  assert.is(alice.type, "new_message");
  assert.is(alice.size, 3);
  assert.equal(
    alice.elements?.map((entry) => entry.message_id),
    ["m1", "m2", "m3"],
  );
  assert.is(batches.waiting, 0);
});

test("a long run of imports is told as it goes: at the latest maxDelayMs after the batch's first", async () => {
  const sink = recorder();
  const batches = new NewMessageBatches(sink, { quietMs: 100, maxDelayMs: 150, maxUsers: 10 });
  const started = Date.now();
  while (Date.now() - started < 400) {
    batches.add("alice", element(1));
    await sleep(20);
  }
  assert.ok(sink.published.length >= 2, `${sink.published.length} notifications during 400 ms of imports`);
  batches.flushAll();
});

test("10,000 imports: one notification saying how many, without listing them (the original's threshold), and no more than the threshold held", () => {
  const sink = recorder();
  const batches = new NewMessageBatches(sink, { quietMs: 60_000, maxDelayMs: 60_000, maxUsers: 10 });
  for (let n = 0; n < 10_000; n++) batches.add("alice", element(n));
  // What the batch holds: its count and nothing listed (past the threshold nothing will be).
  assert.is(batches.held("alice"), 0);
  assert.is(batches.waiting, 1);
  batches.flushAll();
  assert.equal(sink.published.length, 1);
  assert.is(sink.published[0]?.size, 10_000);
  assert.is(sink.published[0]?.elements, undefined);

  for (let n = 0; n < MAX_NOTIFICATION_ELEMENTS; n++) batches.add("bob", element(n));
  batches.flushAll();
  assert.is(sink.published[1]?.elements?.length, MAX_NOTIFICATION_ELEMENTS, "at the threshold they are listed");
});

test("batches wait for at most maxUsers users: past it, the oldest goes early", () => {
  const sink = recorder();
  const batches = new NewMessageBatches(sink, { quietMs: 60_000, maxDelayMs: 60_000, maxUsers: 100 });
  for (let n = 0; n < 1_000; n++) batches.add(`user${n}`, element(n));
  assert.is(batches.waiting, 100);
  assert.is(sink.published.length, 900);
  assert.equal(
    sink.published.slice(0, 2).map((notification) => notification.user_id),
    ["user0", "user1"],
  );
  batches.flushAll();
  assert.is(sink.published.length, 1_000);
});

test("a message's summary: sender, subject and the start of the body, cut, without controls; no excerpt of an encrypted one", () => {
  const summary = notificationElement(
    message({ subject: "Re:\u202E gnol\tsubject", body_plain: `Line one\r\n\r\n  line\u0007 two ${"x".repeat(1_000)}` }),
    "i1",
  );
  assert.is(summary.from, "Bob <bob@elsewhere.test>");
  assert.is(summary.subject, "Re: gnol subject");
  assert.ok(summary.excerpt?.startsWith("Line one line two xxx"), summary.excerpt);
  assert.is(summary.excerpt?.length, MAX_SUMMARY_CHARS);
  assert.is(summary.identity_id, "i1");

  const armored = notificationElement(message({ body_plain: "-----BEGIN PGP MESSAGE-----\n\nhQEMA..." }), "i1");
  assert.is(armored.excerpt, undefined);
  const decrypted = notificationElement(message({ is_encrypted: true, body_plain: "the secret plan" }), "i1");
  assert.is(decrypted.excerpt, undefined);
  const bare = notificationElement(message({ subject: "", body_plain: "", participants: [] }), "i1");
  assert.equal(Object.keys(bare).sort(), ["date", "discussion_id", "identity_id", "is_received", "is_unread", "message_id", "protocol"]);
});

test("the publisher: stored on notifications.<user_id>; a user id that is not a subject token is refused; past maxInFlight it drops; a JetStream failure is counted, never thrown", async () => {
  const nats = await startTestNats();
  try {
    const nc = await nats.connect();
    const subjects = new Subjects("");
    await openNotificationStream(nc, subjects, DEFAULT_NOTIFICATION_HISTORY_LIMITS, 1);
    const seen: { subject: string; notification: Notification }[] = [];
    nc.subscribe("notifications.>", {
      callback: (_err, msg) => {
        const decoded = decodeJson(msg.data);
        if (decoded.ok) seen.push({ subject: msg.subject, notification: decoded.value as Notification });
      },
    });
    const js = jetstream(nc);
    const notification = (userId: string): Notification => ({
      type: "new_message",
      user_id: userId,
      size: 1,
      emitted_at: new Date().toISOString(),
      elements: [element(1)],
    });

    const publisher = new NotificationPublisher(js, subjects, silentLogger(), null, { maxInFlight: 4, timeoutMs: 2_000, warnEveryMs: 10_000 });
    publisher.publish(notification("alice"));
    publisher.publish(notification("alice.>"));
    publisher.publish(notification("bob *"));
    await publisher.settle(2_000);
    await waitFor("alice's notification", () => seen.length === 1);
    assert.is(seen[0]?.subject, "notifications.alice");
    assert.is(publisher.outcomeCounts.published, 1);
    assert.is(publisher.outcomeCounts.invalid, 2);

    // A sent draft's notification carries a message id: JetStream keeps one.
    publisher.publish(notification("alice"), "sent.alice.m1");
    await publisher.settle(2_000);
    publisher.publish(notification("alice"), "sent.alice.m1");
    await publisher.settle(2_000);
    assert.is(publisher.outcomeCounts.duplicate, 1);

    // 100 at once: 4 in flight at most, the others dropped and counted, none queued.
    for (let n = 0; n < 100; n++) publisher.publish(notification("carol"));
    assert.is(publisher.outcomeCounts.dropped, 96);
    await publisher.settle(2_000);
    assert.is(publisher.outcomeCounts.published, 6);

    // No stream: JetStream cannot store it; the caller never knows.
    await (await jetstreamManager(nc)).streams.delete(notificationStreamName(subjects));
    assert.not.throws(() => publisher.publish(notification("alice")));
    await publisher.settle(3_000);
    assert.is(publisher.outcomeCounts.failed, 1);
  } finally {
    await nats.stop();
  }
});

test("behind a deployment namespace: the stream, the subject and the reading are the namespace's", async () => {
  const nats = await startTestNats();
  try {
    const nc = await nats.connect();
    const prod = new Subjects("prod");
    const stream = await openNotificationStream(nc, prod, DEFAULT_NOTIFICATION_HISTORY_LIMITS, 1);
    assert.is(stream, "prod_caliopen_notifications");
    const publisher = new NotificationPublisher(jetstream(nc), prod, silentLogger(), null);
    publisher.publish({ type: "new_message", user_id: "alice", size: 1, emitted_at: new Date().toISOString(), elements: [element(1)] });
    await publisher.settle(2_000);
    assert.is(publisher.outcomeCounts.published, 1);
    const stored = await (await jetstreamManager(nc)).streams.getMessage(stream, { last_by_subj: "prod.notifications.alice" });
    assert.ok(stored !== null);
    const feed = await NotificationFeed.open(nc, prod, stream);
    const page = await feed.since("alice", 0, 10);
    assert.equal(
      page.items.map((item) => item.elements?.[0]?.message_id),
      ["m1"],
    );
    assert.equal((await feed.newest("alice", null, 10)).items.length, 1);
    assert.equal((await feed.newest("bob", null, 10)).items, []);
  } finally {
    await nats.stop();
  }
});

test.run();
