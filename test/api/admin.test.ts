// SendEmailAdminToUser through the HTTP API: only an admin may; the mail is a draft of the admin's,
// from the admin's local identity to the user's recovery address, delivered by asking outboundSMTP
// (the test plays the SMTP bridge). Refusals emit nothing.
import type { Msg } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";

type TestUser = { user_id: string; token: string; identity_id: string | null; contact_id: string };
const test = suite<{ fx: ApiFixture; root: TestUser; alice: TestUser; bob: TestUser }>("API: admin");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  ctx.root = await ctx.fx.user("root", { admin: true, email: "admin@platform.test" });
  ctx.alice = await ctx.fx.user("alice", { email: "alice@platform.test", recovery_email: "Alice.Home@Example.com" });
  ctx.bob = await ctx.fx.user("bob");
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});
test.before.each(({ fx }) => void fx.takeWire());

const notice = { subject: "Maintenance tonight", body: "The platform will be down from 22:00 to 23:00 UTC." };
const notifyPath = (userId: string) => `/api/v2/admin/users/${userId}/notify`;

/** Plays the SMTP bridge: records each request, answers with `reply` (never, when null). */
async function smtpBridge(fx: ApiFixture, reply: { error: boolean; message: string } | null) {
  const requests: Record<string, unknown>[] = [];
  const subscription = fx.nc.subscribe("outboundSMTP", {
    callback: (_err, msg: Msg) => {
      requests.push(msg.json<Record<string, unknown>>());
      if (reply !== null) msg.respond(JSON.stringify(reply));
    },
  });
  await fx.nc.flush();
  return { requests, stop: () => subscription.unsubscribe() };
}

async function adminDrafts(fx: ApiFixture, root: TestUser): Promise<number> {
  return (await fx.store.messages.list(root.user_id)).total;
}

test("an admin's notice is a draft of the admin's to the recovery address, delivered through outboundSMTP", async ({ fx, root, alice }) => {
  const bridge = await smtpBridge(fx, { error: false, message: "sent" });
  try {
    const sent = await fx.call("POST", notifyPath(alice.user_id), root.token, notice);
    assert.is(sent.status, 200, JSON.stringify(sent.body));
    const message = sent.body;
    assert.is(message.user_id, root.user_id, "owned by the admin");
    assert.is(message.subject, notice.subject);
    assert.is(message.body_plain, notice.body);
    assert.equal(message.user_identities, [root.identity_id]);
    assert.equal(
      message.participants.map((p: { type: string; address: string; label: string }) => [p.type, p.address, p.label]),
      [
        ["From", "admin@platform.test", "root"],
        ["To", "alice.home@example.com", "alice"],
      ],
    );
    assert.equal(await fx.store.messages.get(root.user_id, message.message_id), message, "stored with the admin's messages");
    assert.is(await fx.store.messages.get(alice.user_id, message.message_id), null, "not the user's");

    const expected = { order: "deliver", message_id: message.message_id, remote_id: root.identity_id, user_id: root.user_id };
    assert.equal(bridge.requests, [expected]);
    assert.equal(await fx.expectWire(1), [{ subject: "outboundSMTP", payload: expected }]);
  } finally {
    bridge.stop();
  }
});

test("a refusal by the bridge is a 422 with its message, silence a 504", async ({ fx, root, alice }) => {
  const refusing = await smtpBridge(fx, { error: true, message: "relay refused" });
  try {
    const refused = await fx.call("POST", notifyPath(alice.user_id), root.token, notice);
    assert.is(refused.status, 422, JSON.stringify(refused.body));
    assert.match(refused.body.message, "relay refused");
    assert.is(refusing.requests.length, 1);
  } finally {
    refusing.stop();
  }
  const silent = await smtpBridge(fx, null);
  try {
    const unanswered = await fx.call("POST", notifyPath(alice.user_id), root.token, notice);
    assert.is(unanswered.status, 504, JSON.stringify(unanswered.body));
    assert.is(silent.requests.length, 1);
  } finally {
    silent.stop();
  }
});

test("a user who is not an admin gets a 403, and nothing is written or emitted", async ({ fx, root, alice, bob }) => {
  const bridge = await smtpBridge(fx, { error: false, message: "sent" });
  try {
    const before = await adminDrafts(fx, root);
    for (const caller of [alice, bob]) {
      const forbidden = await fx.call("POST", notifyPath(bob.user_id), caller.token, notice);
      assert.is(forbidden.status, 403, JSON.stringify(forbidden.body));
      assert.is(forbidden.body.error, "forbidden");
    }
    assert.is((await fx.store.messages.list(alice.user_id)).total, 0);
    assert.is(await adminDrafts(fx, root), before);
    assert.equal(bridge.requests, []);
    assert.equal(await fx.expectWire(0), []);
  } finally {
    bridge.stop();
  }
});

test("a user without a recovery address is a 422; an unknown user a 404; neither sends anything", async ({ fx, root, bob }) => {
  const bridge = await smtpBridge(fx, { error: false, message: "sent" });
  try {
    const before = await adminDrafts(fx, root);
    const nowhere = await fx.call("POST", notifyPath(bob.user_id), root.token, notice);
    assert.is(nowhere.status, 422, JSON.stringify(nowhere.body));
    assert.match(nowhere.body.message, "recovery");
    const unknown = await fx.call("POST", notifyPath("00000000-0000-4000-8000-000000000000"), root.token, notice);
    assert.is(unknown.status, 404, JSON.stringify(unknown.body));
    assert.is(await adminDrafts(fx, root), before);
    assert.equal(bridge.requests, []);
    assert.equal(await fx.expectWire(0), []);
  } finally {
    bridge.stop();
  }
});

test("an admin without a local identity to send from gets a 422", async ({ fx, alice }) => {
  const bare = await fx.user("bare-admin", { admin: true });
  const response = await fx.call("POST", notifyPath(alice.user_id), bare.token, notice);
  assert.is(response.status, 422, JSON.stringify(response.body));
  assert.is((await fx.store.messages.list(bare.user_id)).total, 0);
  assert.equal(await fx.expectWire(0), []);
});

const badNotices: [string, string | null, unknown, string][] = [
  ["no subject", null, { body: "text" }, "subject"],
  ["an empty subject", null, { subject: "", body: "text" }, "subject"],
  ["no body", null, { subject: "x" }, "body"],
  ["a body that is not a string", null, { subject: "x", body: ["text"] }, "body"],
  ["an unknown field", null, { ...notice, to: "someone@else.example" }, "to"],
  ["nothing at all", null, {}, "subject"],
  ["a user id that is not a uuid", "not-a-uuid", notice, "user_id"],
];

for (const [what, userId, body, field] of badNotices) {
  test(`SendEmailAdminToUser with ${what} is a 400 naming ${field}`, async ({ fx, root, alice }) => {
    const before = await adminDrafts(fx, root);
    const response = await fx.call("POST", notifyPath(userId ?? alice.user_id), root.token, body);
    assert.is(response.status, 400, JSON.stringify(response.body));
    assert.is(response.body.field, field, JSON.stringify(response.body));
    assert.is(response.body.error, "bad_request");
    assert.is(await adminDrafts(fx, root), before);
    assert.equal(fx.takeWire(), []);
  });
}

test("without a token it is a 401", async ({ fx, alice }) => {
  assert.is((await fx.call("POST", notifyPath(alice.user_id), null, notice)).status, 401);
  assert.equal(fx.takeWire(), []);
});

test.run();
