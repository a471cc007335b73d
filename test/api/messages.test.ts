// Drafts and SendDraft through the HTTP API. A draft is sent by asking (request/reply) the service of
// its identity (DECISIONS.md §2): local → outboundSMTP, remote mail account → outboundIMAP, Twitter →
// twitter_dm. The test plays that service: it answers on the subject, and the reply becomes the HTTP
// answer (ok 200, error 422, silence 504, nobody there 503).
import { createHash } from "node:crypto";
import type { Msg } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { sleep } from "../../scripts/local-servers/wait.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";

type TestUser = { user_id: string; token: string; identity_id: string | null; contact_id: string };
const test = suite<{ fx: ApiFixture; alice: TestUser; bob: TestUser }>("API: messages");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  ctx.alice = await ctx.fx.user("alice", { email: "Alice@Caliopen.test" });
  ctx.bob = await ctx.fx.user("bob", { email: "bob@caliopen.test" });
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});
test.before.each(({ fx }) => void fx.takeWire());

const SEND = { actions: ["send"] };

/** The discussion id as DECISIONS.md §4 defines it, computed here independently. */
function discussionOf(participants: { protocol: string; address: string }[]): string {
  const lines = [...new Set(participants.map((p) => `${p.protocol}:${p.address.toLowerCase()}`))].sort();
  return createHash("sha256").update(lines.join("\n"), "utf8").digest("hex");
}

function localIdentity(user: TestUser): string {
  assert.type(user.identity_id, "string");
  return user.identity_id as string;
}

async function draft(fx: ApiFixture, user: TestUser, identityId: string, fields: Record<string, unknown> = {}) {
  const created = await fx.call("POST", "/api/v2/messages", user.token, {
    identity_id: identityId,
    subject: "Hello",
    body_plain: "Hi there",
    participants: [{ type: "To", address: "friend@example.com" }],
    ...fields,
  });
  assert.is(created.status, 201, JSON.stringify(created.body));
  const { privacy: _privacy, ...stored } = created.body;
  return stored;
}

/** A draft as stored: what the API answers, less the `privacy` it works out for a draft read alone. */
function withoutPrivacy<T extends { privacy?: unknown }>({ privacy: _privacy, ...message }: T): Omit<T, "privacy"> {
  return message;
}

async function remoteIdentity(fx: ApiFixture, user: TestUser, body: Record<string, unknown>): Promise<string> {
  const created = await fx.call("POST", "/api/v2/identities/remotes", user.token, body);
  assert.is(created.status, 201, JSON.stringify(created.body));
  await fx.expectWire(1); // add_identity
  return created.body.identity_id;
}

/**
 * Plays the service on `subject`: records each request's payload, runs `onRequest`, then answers with
 * `reply` (or never, when null).
 */
async function serve(
  fx: ApiFixture,
  subject: string,
  reply: { error: boolean; message: string } | null,
  onRequest?: (payload: Record<string, unknown>) => Promise<void>,
) {
  const requests: Record<string, unknown>[] = [];
  const subscription = fx.nc.subscribe(subject, {
    callback: (_err, msg: Msg) => {
      void (async () => {
        const payload = msg.json<Record<string, unknown>>();
        requests.push(payload);
        await onRequest?.(payload);
        if (reply !== null) msg.respond(JSON.stringify(reply));
      })();
    },
  });
  await fx.nc.flush();
  return { requests, stop: () => subscription.unsubscribe() };
}

test("a draft is stored from the identity (From), to its recipients, with its discussion; nothing is emitted", async ({ fx, alice }) => {
  const identityId = localIdentity(alice);
  const created = await fx.call("POST", "/api/v2/messages", alice.token, {
    identity_id: identityId,
    subject: "Lunch?",
    body_plain: "Are you free on Friday?",
    participants: [
      { type: "To", address: "Friend@Example.com", label: "Friend" },
      { type: "Cc", address: "other@example.com" },
    ],
  });
  assert.is(created.status, 201, JSON.stringify(created.body));
  const message = created.body;
  assert.match(message.message_id, /^[0-9a-f-]{36}$/);
  assert.is(message.is_draft, true);
  assert.is(message.is_unread, false);
  assert.is(message.subject, "Lunch?");
  assert.is(message.body_plain, "Are you free on Friday?");
  assert.equal(message.user_identities, [identityId]);
  assert.equal(message.participants, [
    { type: "From", address: "alice@caliopen.test", label: "alice", protocol: "email", contact_ids: [] },
    { type: "To", address: "friend@example.com", label: "Friend", protocol: "email", contact_ids: [] },
    { type: "Cc", address: "other@example.com", label: "", protocol: "email", contact_ids: [] },
  ]);
  assert.is(message.discussion_id, discussionOf(message.participants));
  assert.is(message.privacy.mode, "clear", "no key for the recipients: it would go in clear");
  assert.equal(await fx.store.messages.get(alice.user_id, message.message_id), withoutPrivacy(message), "the response is what was stored");
  assert.equal(await fx.expectWire(0), [], "a draft is not an order");
});

test("ListMessages is newest first and paged, is_draft filters; GetMessage returns one", async ({ fx }) => {
  const carol = await fx.user("carol", { email: "carol@caliopen.test" });
  const ids: string[] = [];
  for (const subject of ["first", "second", "third"]) {
    ids.push((await draft(fx, carol, localIdentity(carol), { subject })).message_id);
    await sleep(5);
  }
  // "second" was sent meanwhile (a bridge flips a sent draft).
  await fx.store.messages.update(carol.user_id, ids[1] as string, (message) => ({ ...message, is_draft: false }));

  const all = await fx.call("GET", "/api/v2/messages", carol.token);
  assert.is(all.status, 200);
  assert.equal(
    all.body.items.map((m: { subject: string }) => m.subject),
    ["third", "second", "first"],
  );
  assert.equal([all.body.total, all.body.offset, all.body.limit], [3, 0, 50]);
  const drafts = await fx.call("GET", "/api/v2/messages?is_draft=true", carol.token);
  assert.is(drafts.status, 200, JSON.stringify(drafts.body));
  assert.equal(
    drafts.body.items.map((m: { subject: string }) => m.subject),
    ["third", "first"],
  );
  assert.is(drafts.body.total, 2);
  const sent = await fx.call("GET", "/api/v2/messages?is_draft=false", carol.token);
  assert.equal(
    sent.body.items.map((m: { subject: string }) => m.subject),
    ["second"],
  );
  const paged = await fx.call("GET", "/api/v2/messages?offset=1&limit=1", carol.token);
  assert.equal(
    paged.body.items.map((m: { subject: string }) => m.subject),
    ["second"],
  );
  assert.equal([paged.body.total, paged.body.offset, paged.body.limit], [3, 1, 1]);

  const one = await fx.call("GET", `/api/v2/messages/${ids[0]}`, carol.token);
  assert.is(one.status, 200);
  assert.equal(withoutPrivacy(one.body), await fx.store.messages.get(carol.user_id, ids[0] as string));
  assert.is((await fx.call("GET", "/api/v2/messages/00000000-0000-4000-8000-000000000000", carol.token)).status, 404);
  for (const query of ["is_draft=maybe", "limit=0", "limit=501", "offset=x", "folder=inbox"]) {
    const bad = await fx.call("GET", `/api/v2/messages?${query}`, carol.token);
    assert.is(bad.status, 400, query);
    assert.is(bad.body.field, query.split("=")[0], `${query}: ${JSON.stringify(bad.body)}`);
  }
  assert.equal(fx.takeWire(), []);
});

test("PatchDraft stores the change, keeps the From participant and follows the new discussion", async ({ fx, alice }) => {
  const message = await draft(fx, alice, localIdentity(alice));
  const patched = await fx.call("PATCH", `/api/v2/messages/${message.message_id}`, alice.token, {
    subject: "Hello again",
    participants: [
      { type: "To", address: "someone@else.example" },
      { type: "Bcc", address: "hidden@example.com" },
    ],
  });
  assert.is(patched.status, 200, JSON.stringify(patched.body));
  assert.is(patched.body.subject, "Hello again");
  assert.is(patched.body.body_plain, "Hi there", "the body is kept");
  assert.equal(
    patched.body.participants.map((p: { type: string; address: string }) => `${p.type} ${p.address}`),
    ["From alice@caliopen.test", "To someone@else.example", "Bcc hidden@example.com"],
  );
  assert.is(patched.body.discussion_id, discussionOf(patched.body.participants));
  assert.is.not(patched.body.discussion_id, message.discussion_id);
  assert.is(patched.body.is_draft, true);
  assert.equal(await fx.store.messages.get(alice.user_id, message.message_id), withoutPrivacy(patched.body));
  const bodyOnly = await fx.call("PATCH", `/api/v2/messages/${message.message_id}`, alice.token, { body_plain: "New text" });
  assert.equal(bodyOnly.body.participants, patched.body.participants, "recipients kept when not given");
  assert.equal(await fx.expectWire(0), []);
});

const routes: [string, (fx: ApiFixture, user: TestUser) => Promise<string>, string, string][] = [
  ["a local identity", async (_fx, user) => localIdentity(user), "outboundSMTP", "friend@example.com"],
  [
    "a remote IMAP account",
    (fx, user) =>
      remoteIdentity(fx, user, {
        protocol: "imap",
        identifier: "alice@imap.example",
        credentials: { username: "a", password: "p" },
        infos: { inserver: "imap.example:993", outserver: "smtp.example:465" },
      }),
    "outboundIMAP",
    "friend@example.com",
  ],
  [
    "a remote email account",
    (fx, user) =>
      remoteIdentity(fx, user, {
        protocol: "email",
        identifier: "alice@mail.example",
        credentials: { username: "a", password: "p" },
        infos: { inserver: "mail.example:993" },
      }),
    "outboundIMAP",
    "friend@example.com",
  ],
  [
    "a twitter account",
    (fx, user) => remoteIdentity(fx, user, { protocol: "twitter", identifier: "@Alice_Tw", credentials: { token: "t", secret: "s" } }),
    "twitter_dm",
    "@friend",
  ],
];

for (const [what, makeIdentity, subject, recipient] of routes) {
  test(`SendDraft from ${what} asks ${subject} to deliver it, and answers 200 with the sent message`, async ({ fx, alice }) => {
    const identityId = await makeIdentity(fx, alice);
    const message = await draft(fx, alice, identityId, { participants: [{ type: "To", address: recipient }] });
    // The service sends it and flips the draft, as a bridge does, before answering.
    const service = await serve(fx, subject, { error: false, message: "sent" }, async () => {
      await fx.store.messages.update(alice.user_id, message.message_id, (current) => ({ ...current, is_draft: false }));
    });
    try {
      const sent = await fx.call("POST", `/api/v2/messages/${message.message_id}/actions`, alice.token, SEND);
      assert.is(sent.status, 200, JSON.stringify(sent.body));
      assert.is(sent.body.message_id, message.message_id);
      assert.is(sent.body.is_draft, false, "the message as it is after sending");
      const expected = { order: "deliver", message_id: message.message_id, remote_id: identityId, user_id: alice.user_id };
      assert.equal(service.requests, [expected]);
      assert.equal(await fx.expectWire(1), [{ subject, payload: expected }], "one request, on that subject only");
    } finally {
      service.stop();
    }
  });
}

test("an error reply is a 422 with the service's message; the draft stays a draft", async ({ fx, alice }) => {
  const message = await draft(fx, alice, localIdentity(alice));
  const service = await serve(fx, "outboundSMTP", { error: true, message: "relay refused" });
  try {
    const refused = await fx.call("POST", `/api/v2/messages/${message.message_id}/actions`, alice.token, SEND);
    assert.is(refused.status, 422, JSON.stringify(refused.body));
    assert.is(refused.body.error, "unprocessable");
    assert.match(refused.body.message, "relay refused");
    assert.is(service.requests.length, 1);
    assert.is((await fx.store.messages.get(alice.user_id, message.message_id))?.is_draft, true);
  } finally {
    service.stop();
  }
});

test("no reply in time is a 504", async ({ fx, alice }) => {
  const message = await draft(fx, alice, localIdentity(alice));
  const service = await serve(fx, "outboundSMTP", null);
  try {
    const started = Date.now();
    const silent = await fx.call("POST", `/api/v2/messages/${message.message_id}/actions`, alice.token, SEND);
    assert.is(silent.status, 504, JSON.stringify(silent.body));
    assert.is(silent.body.error, "timeout");
    assert.ok(Date.now() - started >= 900, "it waited for the deliver timeout");
    assert.is(service.requests.length, 1);
  } finally {
    service.stop();
  }
});

test("nobody listening on the subject is a 503", async () => {
  // A fixture of its own whose recording connection (which listens on every subject) is closed.
  const quiet = await startApiFixture();
  try {
    await quiet.nc.close();
    const dave = await quiet.user("dave", { email: "dave@caliopen.test" });
    const message = await draft(quiet, dave, localIdentity(dave));
    const unheard = await quiet.call("POST", `/api/v2/messages/${message.message_id}/actions`, dave.token, SEND);
    assert.is(unheard.status, 503, JSON.stringify(unheard.body));
    assert.is(unheard.body.error, "unavailable");
    assert.match(unheard.body.message, "outboundSMTP");
  } finally {
    await quiet.stop();
  }
});

test("sending what cannot be sent is a 422 that asks no service", async ({ fx, alice }) => {
  const service = await serve(fx, "outboundSMTP", { error: false, message: "sent" });
  try {
    const sentAlready = await draft(fx, alice, localIdentity(alice));
    await fx.store.messages.update(alice.user_id, sentAlready.message_id, (message) => ({ ...message, is_draft: false }));
    const again = await fx.call("POST", `/api/v2/messages/${sentAlready.message_id}/actions`, alice.token, SEND);
    assert.is(again.status, 422, JSON.stringify(again.body));
    assert.match(again.body.message, "not a draft");

    const nobody = await draft(fx, alice, localIdentity(alice), { participants: [] });
    const unaddressed = await fx.call("POST", `/api/v2/messages/${nobody.message_id}/actions`, alice.token, SEND);
    assert.is(unaddressed.status, 422, JSON.stringify(unaddressed.body));

    const identityId = await remoteIdentity(fx, alice, {
      protocol: "imap",
      identifier: "gone@imap.example",
      credentials: { username: "a", password: "p" },
      infos: { inserver: "imap.example:993" },
    });
    const orphan = await draft(fx, alice, identityId);
    assert.is((await fx.call("DELETE", `/api/v2/identities/remotes/${identityId}`, alice.token)).status, 204);
    await fx.expectWire(1); // delete_identity
    const fromNowhere = await fx.call("POST", `/api/v2/messages/${orphan.message_id}/actions`, alice.token, SEND);
    assert.is(fromNowhere.status, 422, JSON.stringify(fromNowhere.body));

    assert.equal(service.requests, []);
    assert.equal(await fx.expectWire(0), []);
  } finally {
    service.stop();
  }
});

test("PatchDraft of a message that is no longer a draft is a 409 that changes nothing", async ({ fx, alice }) => {
  const message = await draft(fx, alice, localIdentity(alice));
  const sent = await fx.store.messages.update(alice.user_id, message.message_id, (current) => ({ ...current, is_draft: false }));
  const patched = await fx.call("PATCH", `/api/v2/messages/${message.message_id}`, alice.token, { subject: "too late" });
  assert.is(patched.status, 409, JSON.stringify(patched.body));
  assert.equal(await fx.store.messages.get(alice.user_id, message.message_id), sent);
});

test("another user's message is a 404 to read, change or send, and nothing happens", async ({ fx, alice, bob }) => {
  const message = await draft(fx, alice, localIdentity(alice));
  const service = await serve(fx, "outboundSMTP", { error: false, message: "sent" });
  try {
    const path = `/api/v2/messages/${message.message_id}`;
    assert.is((await fx.call("GET", path, bob.token)).status, 404);
    assert.is((await fx.call("PATCH", path, bob.token, { subject: "mine" })).status, 404);
    assert.is((await fx.call("POST", `${path}/actions`, bob.token, SEND)).status, 404);
    const bobs = await fx.call("GET", "/api/v2/messages", bob.token);
    assert.is(bobs.body.total, 0);
    assert.equal(await fx.store.messages.get(alice.user_id, message.message_id), message);
    assert.equal(service.requests, []);
    assert.equal(await fx.expectWire(0), []);
  } finally {
    service.stop();
  }
});

test("a draft from another user's identity is a 400 on identity_id", async ({ fx, alice, bob }) => {
  const response = await fx.call("POST", "/api/v2/messages", bob.token, {
    identity_id: localIdentity(alice),
    participants: [{ type: "To", address: "x@example.com" }],
  });
  assert.is(response.status, 400, JSON.stringify(response.body));
  assert.is(response.body.field, "identity_id");
  assert.is((await fx.store.messages.list(bob.user_id)).total, 0);
});

const badDrafts: [string, (alice: TestUser) => unknown, string][] = [
  ["no identity", () => ({ subject: "x" }), "identity_id"],
  ["an unknown identity", () => ({ identity_id: "00000000-0000-4000-8000-000000000000" }), "identity_id"],
  ["an identity id that is not a string", () => ({ identity_id: 7 }), "identity_id"],
  ["a From participant", (alice) => ({ identity_id: alice.identity_id, participants: [{ type: "From", address: "me@example.com" }] }), "participants.0.type"],
  ["a participant without address", (alice) => ({ identity_id: alice.identity_id, participants: [{ type: "To" }] }), "participants.0.address"],
  ["an empty participant address", (alice) => ({ identity_id: alice.identity_id, participants: [{ type: "To", address: "" }] }), "participants.0.address"],
  ["participants that are not a list", (alice) => ({ identity_id: alice.identity_id, participants: { type: "To", address: "a@b.c" } }), "participants"],
  ["a subject that is not a string", (alice) => ({ identity_id: alice.identity_id, subject: 42 }), "subject"],
  ["an unknown parent", (alice) => ({ identity_id: alice.identity_id, parent_id: "00000000-0000-4000-8000-000000000000" }), "parent_id"],
  ["an unknown field", (alice) => ({ identity_id: alice.identity_id, is_draft: false }), "is_draft"],
];

for (const [what, body, field] of badDrafts) {
  test(`CreateDraft with ${what} is a 400 naming ${field}; nothing is stored`, async ({ fx, alice }) => {
    const before = (await fx.store.messages.list(alice.user_id)).total;
    const response = await fx.call("POST", "/api/v2/messages", alice.token, body(alice));
    assert.is(response.status, 400, JSON.stringify(response.body));
    assert.is(response.body.field, field, JSON.stringify(response.body));
    assert.is(response.body.error, "bad_request");
    assert.is((await fx.store.messages.list(alice.user_id)).total, before);
    assert.equal(fx.takeWire(), []);
  });
}

test("ListMessages pages by cursor: next leads to the page after (filters kept), null on the last; a bad cursor is a 400 naming after", async ({ fx }) => {
  const dan = await fx.user("dan", { email: "dan@caliopen.test" });
  const subjects = ["one", "two", "three", "four", "five"];
  for (const subject of subjects) {
    await draft(fx, dan, localIdentity(dan), { subject });
    await sleep(5);
  }
  const seen: string[] = [];
  let path = "/api/v2/messages?limit=2&is_draft=true";
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 5);
    const page = await fx.call("GET", path, dan.token);
    assert.is(page.status, 200, JSON.stringify(page.body));
    assert.is(page.body.total, 5);
    seen.push(...page.body.items.map((m: { subject: string }) => m.subject));
    if (page.body.next === null) break;
    assert.type(page.body.next, "string");
    path = `/api/v2/messages?limit=2&is_draft=true&after=${encodeURIComponent(page.body.next)}`;
  }
  assert.equal(seen, [...subjects].reverse());

  for (const after of ["not-one", "%7B%7D", "A".repeat(2_000), "A".repeat(9_000), Buffer.from(JSON.stringify(["x", 1])).toString("base64url")]) {
    const refused = await fx.call("GET", `/api/v2/messages?after=${after}`, dan.token);
    assert.is(refused.status, 400, `${after.slice(0, 20)}: ${JSON.stringify(refused.body)}`);
    assert.is(refused.body.field, "after");
  }
});

test("SendDraft and PatchDraft with bad input are 400s that send and change nothing", async ({ fx, alice }) => {
  const message = await draft(fx, alice, localIdentity(alice));
  const service = await serve(fx, "outboundSMTP", { error: false, message: "sent" });
  try {
    const path = `/api/v2/messages/${message.message_id}`;
    const cases: [string, string, unknown, string][] = [
      ["POST", `${path}/actions`, {}, "actions"],
      ["POST", `${path}/actions`, { actions: [] }, "actions"],
      ["POST", `${path}/actions`, { actions: "send" }, "actions"],
      ["POST", `${path}/actions`, { actions: ["delete"] }, "actions.0"],
      ["POST", `${path}/actions`, { actions: ["send", "send"] }, "actions"],
      ["POST", `${path}/actions`, { actions: ["send"], when: "now" }, "when"],
      ["POST", "/api/v2/messages/not-a-uuid/actions", SEND, "message_id"],
      ["PATCH", path, {}, "body"],
      ["PATCH", path, { participants: [{ type: "From", address: "me@example.com" }] }, "participants.0.type"],
      ["PATCH", path, { identity_id: localIdentity(alice) }, "identity_id"],
      ["PATCH", path, { body_html: false }, "body_html"],
      ["PATCH", "/api/v2/messages/not-a-uuid", { subject: "x" }, "message_id"],
      ["GET", "/api/v2/messages/not-a-uuid", undefined, "message_id"],
    ];
    for (const [method, target, body, field] of cases) {
      const response = await fx.call(method, target, alice.token, body);
      assert.is(response.status, 400, `${method} ${target} ${JSON.stringify(body)}: ${JSON.stringify(response.body)}`);
      assert.is(response.body.field, field, `${method} ${target} ${JSON.stringify(body)}: ${JSON.stringify(response.body)}`);
    }
    assert.equal(await fx.store.messages.get(alice.user_id, message.message_id), message, "unchanged");
    assert.equal(service.requests, []);
    assert.equal(await fx.expectWire(0), []);
  } finally {
    service.stop();
  }
});

test("without a valid bearer token the message routes are 401s", async ({ fx, alice }) => {
  assert.is((await fx.call("GET", "/api/v2/messages", null)).status, 401);
  assert.is((await fx.call("POST", "/api/v2/messages", "cal_nope", { identity_id: localIdentity(alice) })).status, 401);
  assert.is((await fx.call("POST", "/api/v2/messages/00000000-0000-4000-8000-000000000000/actions", null, SEND)).status, 401);
});

/** A received message of the user, stored as an import would, with copies on `located` accounts. */
async function received(fx: ApiFixture, user: TestUser, located: string[]) {
  const message = await fx.store.messages.create({
    ...(await draft(fx, user, localIdentity(user))),
    message_id: crypto.randomUUID(),
    is_draft: false,
    is_received: true,
    is_unread: true,
    tags: ["$label1"],
    locations: located.map((identity_id, uid) => ({ identity_id, mailbox: "INBOX", folder_id: "f1", uidvalidity: "7", uid: uid + 1 })),
  });
  await fx.takeWire();
  return message;
}

test("PatchMessage marks a received message read and flagged and sets its tags; a synced one's account is told (store_flags), another is not", async ({
  fx,
  alice,
}) => {
  const account = await remoteIdentity(fx, alice, {
    protocol: "imap",
    identifier: "alice@remote.test",
    credentials: { username: "alice", password: "secret" },
    infos: { inserver: "imap.example:993" },
  });
  const synced = await received(fx, alice, [account]);
  const patched = await fx.call("PATCH", `/api/v2/messages/${synced.message_id}`, alice.token, {
    is_unread: false,
    is_flagged: true,
    tags: ["Work", "$label1"],
  });
  assert.is(patched.status, 200, JSON.stringify(patched.body));
  assert.equal([patched.body.is_unread, patched.body.is_flagged, patched.body.tags], [false, true, ["Work", "$label1", "flagged"]]);
  assert.equal(await fx.expectWire(1), [
    { subject: "IMAPfetcher", payload: { order: "store_flags", remote_id: account, user_id: alice.user_id, message_id: synced.message_id } },
  ]);
  const unflagged = await fx.call("PATCH", `/api/v2/messages/${synced.message_id}`, alice.token, { is_flagged: false });
  assert.equal([unflagged.body.is_flagged, unflagged.body.tags], [false, ["Work", "$label1"]], "the tag `flagged` follows");
  await fx.expectWire(1);

  const local = await received(fx, alice, []);
  const read = await fx.call("PATCH", `/api/v2/messages/${local.message_id}`, alice.token, { is_unread: false });
  assert.is(read.body.is_unread, false);
  await sleep(200);
  assert.equal(fx.takeWire(), [], "a message on no account: nothing to tell");
});

test("PatchMessage refuses a draft's fields on a received message and bad flags, changing nothing", async ({ fx, alice, bob }) => {
  const message = await received(fx, alice, []);
  const path = `/api/v2/messages/${message.message_id}`;
  assert.is((await fx.call("PATCH", path, alice.token, { subject: "rewritten" })).status, 409);
  assert.is((await fx.call("PATCH", path, alice.token, { is_unread: "no" })).status, 400);
  assert.is((await fx.call("PATCH", path, alice.token, { tags: Array.from({ length: 101 }, (_, n) => `t${n}`) })).status, 400);
  assert.is((await fx.call("PATCH", path, alice.token, { tags: ["x".repeat(101)] })).status, 400);
  assert.is((await fx.call("PATCH", path, alice.token, { tags: ["same", "same"] })).status, 400);
  assert.is((await fx.call("PATCH", path, bob.token, { is_unread: false })).status, 404);
  assert.equal(await fx.store.messages.get(alice.user_id, message.message_id), message);
});

test("DeleteMessage: a message on no account is deleted at once (204); a synced one goes to its account's Trash first (202, move_to_trash)", async ({
  fx,
  alice,
  bob,
}) => {
  const local = await received(fx, alice, []);
  assert.is((await fx.call("DELETE", `/api/v2/messages/${local.message_id}`, bob.token)).status, 404, "someone else's");
  assert.ok(await fx.store.messages.get(alice.user_id, local.message_id));
  assert.is((await fx.call("DELETE", `/api/v2/messages/${local.message_id}`, alice.token)).status, 204);
  assert.is(await fx.store.messages.get(alice.user_id, local.message_id), null);
  assert.is((await fx.call("DELETE", `/api/v2/messages/${local.message_id}`, alice.token)).status, 404);

  const account = await remoteIdentity(fx, alice, {
    protocol: "imap",
    identifier: "alice2@remote.test",
    credentials: { username: "alice2", password: "secret" },
    infos: { inserver: "imap.example:993" },
  });
  const synced = await received(fx, alice, [account]);
  const deleted = await fx.call("DELETE", `/api/v2/messages/${synced.message_id}`, alice.token);
  assert.is(deleted.status, 202, JSON.stringify(deleted.body));
  assert.equal(deleted.body.identities, [account]);
  assert.equal(await fx.expectWire(1), [
    { subject: "IMAPfetcher", payload: { order: "move_to_trash", remote_id: account, user_id: alice.user_id, message_id: synced.message_id } },
  ]);
  assert.ok(await fx.store.messages.get(alice.user_id, synced.message_id), "deleted here by the imap worker once moved");
});

test.run();
