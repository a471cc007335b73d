// Remote identities through the HTTP API: each operation stores the identity, then emits exactly the
// contract's order on identitiesWorker; bad input is a 400 naming the field and changes nothing. Servers
// at addresses the destination policy refuses (loopback, private, link-local, localhost, disguised) are
// such bad input, and so is a new server without the credentials (the stored password stays where it was).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseOAuth2Providers } from "../../actors/oauth2/oauth2-providers.ts";
import { KvDocuments } from "../../runtime/kv-documents.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";

const test = suite<{ fx: ApiFixture; alice: { user_id: string; token: string }; bob: { user_id: string; token: string } }>("API: remote identities");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture({
    oauth2Providers: parseOAuth2Providers(
      JSON.stringify({ google: { token_url: "https://oauth2.googleapis.com/token", client_id: "id", client_secret: "s" } }),
    ),
  });
  ctx.alice = await ctx.fx.user("alice");
  ctx.bob = await ctx.fx.user("bob");
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});
test.before.each(({ fx }) => void fx.takeWire());

const imapAccount = {
  protocol: "imap",
  identifier: "Alice@Example.COM",
  display_name: "Alice at example",
  credentials: { username: "alice", password: "s3cret-imap-password" },
  infos: { inserver: "imap.example.com:993", outserver: "smtp.example.com:465", poll_interval: "5" },
};

test("CreateUserIdentity stores the identity (credentials sealed, never returned) and emits add_identity", async ({ fx, alice }) => {
  const created = await fx.call("POST", "/api/v2/identities/remotes", alice.token, imapAccount);
  assert.is(created.status, 201, JSON.stringify(created.body));
  const identity = created.body;
  assert.is(identity.identifier, "alice@example.com");
  assert.is(identity.type, "remote");
  assert.is(identity.status, "active");
  assert.is(identity.infos.poll_interval, "5");
  assert.is(identity.has_credentials, true);
  assert.not.ok(JSON.stringify(created.body).includes("s3cret-imap-password"), "the password is not in the response");

  const stored = await fx.store.identities.get(alice.user_id, identity.identity_id);
  assert.is(stored?.infos.inserver, "imap.example.com:993");
  assert.equal(await fx.store.identities.credentials(alice.user_id, identity.identity_id), { username: "alice", password: "s3cret-imap-password" });
  const raw = await (await KvDocuments.open<unknown>(fx.nc, "caliopen_identities")).get(`${alice.user_id}.${identity.identity_id}`);
  assert.not.ok(JSON.stringify(raw?.value).includes("s3cret-imap-password"), "the password is sealed at rest");

  const wire = await fx.expectWire(1);
  assert.equal(wire, [{ subject: "identitiesWorker", payload: { order: "add_identity", identity_id: identity.identity_id, user_id: alice.user_id } }]);
});

test("the identity list shows sync status; another user sees none of it", async ({ fx, alice, bob }) => {
  const listed = await fx.call("GET", "/api/v2/identities/remotes", alice.token);
  assert.is(listed.status, 200);
  assert.ok(listed.body.identities.length >= 1);
  const [first] = listed.body.identities;
  assert.ok("infos" in first && "poll_interval" in first.infos);
  assert.not.ok(JSON.stringify(listed.body).includes("password"), "no credentials in listings");
  const bobs = await fx.call("GET", "/api/v2/identities/remotes", bob.token);
  assert.equal(bobs.body, { identities: [], total: 0 });
  const peek = await fx.call("GET", `/api/v2/identities/remotes/${first.identity_id}`, bob.token);
  assert.is(peek.status, 404);
  const patch = await fx.call("PATCH", `/api/v2/identities/remotes/${first.identity_id}`, bob.token, { display_name: "mine now" });
  assert.is(patch.status, 404);
  const del = await fx.call("DELETE", `/api/v2/identities/remotes/${first.identity_id}`, bob.token);
  assert.is(del.status, 404);
  assert.is((await fx.store.identities.get(alice.user_id, first.identity_id))?.display_name, "Alice at example");
  assert.equal(fx.takeWire(), [], "refused operations emit nothing");
});

test("PatchUserIdentity stores the change (new credentials sealed) and emits update_identity", async ({ fx, alice }) => {
  const created = (await fx.call("POST", "/api/v2/identities/remotes", alice.token, { ...imapAccount, identifier: "second@example.com" })).body;
  await fx.expectWire(1);
  const patched = await fx.call("PATCH", `/api/v2/identities/remotes/${created.identity_id}`, alice.token, {
    status: "inactive",
    credentials: { username: "alice2", password: "new-password" },
    infos: { poll_interval: "30" },
  });
  assert.is(patched.status, 200, JSON.stringify(patched.body));
  assert.is(patched.body.status, "inactive");
  assert.is(patched.body.infos.poll_interval, "30");
  assert.is(patched.body.infos.inserver, "imap.example.com:993", "other infos kept");
  assert.equal(await fx.store.identities.credentials(alice.user_id, created.identity_id), { username: "alice2", password: "new-password" });
  assert.equal(await fx.expectWire(1), [
    { subject: "identitiesWorker", payload: { order: "update_identity", identity_id: created.identity_id, user_id: alice.user_id } },
  ]);
});

test("a poll schedule is stored as given, and null goes back to the interval", async ({ fx, alice }) => {
  const created = await fx.call("POST", "/api/v2/identities/remotes", alice.token, {
    ...imapAccount,
    identifier: "scheduled@example.com",
    infos: { ...imapAccount.infos, poll_schedule: "*/15 7-20 * * 1-5" },
  });
  assert.is(created.status, 201, JSON.stringify(created.body));
  assert.is(created.body.infos.poll_schedule, "*/15 7-20 * * 1-5");
  await fx.expectWire(1);
  const path = `/api/v2/identities/remotes/${created.body.identity_id}`;
  const cleared = await fx.call("PATCH", path, alice.token, { infos: { poll_schedule: null } });
  assert.is(cleared.status, 200, JSON.stringify(cleared.body));
  assert.is(cleared.body.infos.poll_schedule, null);
  assert.is(cleared.body.infos.poll_interval, "5", "the interval is untouched");
  const refused = await fx.call("PATCH", path, alice.token, { infos: { poll_schedule: "61 * * * *" } });
  assert.is(refused.status, 400);
  assert.is(refused.body.field, "infos.poll_schedule");
  assert.is((await fx.store.identities.get(alice.user_id, created.body.identity_id))?.infos.poll_schedule, null, "a refused schedule changes nothing");
  await fx.expectWire(1);
});

test("DeleteUserIdentity marks it deleted, drops its credentials and emits delete_identity", async ({ fx, alice }) => {
  const created = (await fx.call("POST", "/api/v2/identities/remotes", alice.token, { ...imapAccount, identifier: "third@example.com" })).body;
  await fx.expectWire(1);
  const deleted = await fx.call("DELETE", `/api/v2/identities/remotes/${created.identity_id}`, alice.token);
  assert.is(deleted.status, 204);
  const stored = await fx.store.identities.get(alice.user_id, created.identity_id);
  assert.is(stored?.status, "deleted");
  assert.is(await fx.store.identities.credentials(alice.user_id, created.identity_id), null);
  assert.equal(await fx.expectWire(1), [
    { subject: "identitiesWorker", payload: { order: "delete_identity", identity_id: created.identity_id, user_id: alice.user_id } },
  ]);
  assert.is((await fx.call("GET", `/api/v2/identities/remotes/${created.identity_id}`, alice.token)).status, 404);
  assert.is((await fx.call("DELETE", `/api/v2/identities/remotes/${created.identity_id}`, alice.token)).status, 404);
  const again = await fx.call("POST", "/api/v2/identities/remotes", alice.token, { ...imapAccount, identifier: "third@example.com" });
  assert.is(again.status, 201, "the identifier is free again");
});

test("the same account twice is a 409 and emits nothing more", async ({ fx, alice }) => {
  await fx.call("POST", "/api/v2/identities/remotes", alice.token, { ...imapAccount, identifier: "twice@example.com" });
  await fx.expectWire(1);
  const twice = await fx.call("POST", "/api/v2/identities/remotes", alice.token, { ...imapAccount, identifier: "TWICE@example.com" });
  assert.is(twice.status, 409);
  assert.equal(fx.takeWire(), []);
});

const badCreations: [string, unknown, string][] = [
  ["no protocol", { ...imapAccount, protocol: undefined }, "protocol"],
  ["an unknown protocol", { ...imapAccount, protocol: "pigeon" }, "protocol"],
  ["no identifier", { ...imapAccount, identifier: undefined }, "identifier"],
  ["an empty identifier", { ...imapAccount, identifier: "" }, "identifier"],
  ["a password that is not a string", { ...imapAccount, credentials: { username: "a", password: 42 } }, "credentials.password"],
  ["mail credentials without a password", { ...imapAccount, credentials: { username: "a" } }, "credentials"],
  ["an IMAP account without a server", { ...imapAccount, infos: {} }, "infos.inserver"],
  ["a server without a port", { ...imapAccount, infos: { inserver: "imap.example.com" } }, "infos.inserver"],
  ["a poll interval that is not a number", { ...imapAccount, infos: { ...imapAccount.infos, poll_interval: "often" } }, "infos.poll_interval"],
  ["a poll schedule that is not a cron pattern", { ...imapAccount, infos: { ...imapAccount.infos, poll_schedule: "every morning" } }, "infos.poll_schedule"],
  ["a poll schedule with an hour 25", { ...imapAccount, infos: { ...imapAccount.infos, poll_schedule: "0 25 * * *" } }, "infos.poll_schedule"],
  ["a poll schedule that never fires (February 30)", { ...imapAccount, infos: { ...imapAccount.infos, poll_schedule: "0 0 30 2 *" } }, "infos.poll_schedule"],
  ["a poll schedule with a year field", { ...imapAccount, infos: { ...imapAccount.infos, poll_schedule: "0 0 0 1 1 * 2030" } }, "infos.poll_schedule"],
  ["an oversized poll schedule", { ...imapAccount, infos: { ...imapAccount.infos, poll_schedule: `0 ${"1,".repeat(200)}1 * * *` } }, "infos.poll_schedule"],
  ["an unknown field", { ...imapAccount, colour: "blue" }, "colour"],
  ["a twitter account without tokens", { protocol: "twitter", identifier: "@alice", credentials: { password: "x" } }, "credentials"],
  ["a loopback IMAP server", { ...imapAccount, infos: { ...imapAccount.infos, inserver: "127.0.0.1:143" } }, "infos.inserver"],
  ["the cloud metadata address as IMAP server", { ...imapAccount, infos: { ...imapAccount.infos, inserver: "169.254.169.254:993" } }, "infos.inserver"],
  ["a loopback address in disguise", { ...imapAccount, infos: { ...imapAccount.infos, inserver: "2130706433:993" } }, "infos.inserver"],
  ["a private SMTP server", { ...imapAccount, infos: { ...imapAccount.infos, outserver: "10.1.2.3:587" } }, "infos.outserver"],
  ["localhost as SMTP server", { ...imapAccount, infos: { ...imapAccount.infos, outserver: "localhost:25" } }, "infos.outserver"],
  ["an IPv6 loopback server", { ...imapAccount, infos: { ...imapAccount.infos, inserver: "[::1]:143" } }, "infos.inserver"],
];

for (const [what, body, field] of badCreations) {
  test(`CreateUserIdentity with ${what} is a 400 naming ${field}, and nothing is stored or emitted`, async ({ fx, alice }) => {
    const before = (await fx.store.identities.list(alice.user_id, { includeDeleted: true })).length;
    const response = await fx.call("POST", "/api/v2/identities/remotes", alice.token, body);
    assert.is(response.status, 400, JSON.stringify(response.body));
    assert.is(response.body.field, field, JSON.stringify(response.body));
    assert.is(response.body.error, "bad_request");
    assert.type(response.body.message, "string");
    assert.is((await fx.store.identities.list(alice.user_id, { includeDeleted: true })).length, before);
    assert.equal(fx.takeWire(), []);
  });
}

test("PatchUserIdentity and DeleteUserIdentity with bad input are 400s that change nothing", async ({ fx, alice }) => {
  const created = (await fx.call("POST", "/api/v2/identities/remotes", alice.token, { ...imapAccount, identifier: "patchme@example.com" })).body;
  await fx.expectWire(1);
  const cases: [string, string, unknown, string][] = [
    ["PATCH", `/api/v2/identities/remotes/${created.identity_id}`, {}, "body"],
    ["PATCH", `/api/v2/identities/remotes/${created.identity_id}`, { status: "deleted" }, "status"],
    ["PATCH", `/api/v2/identities/remotes/${created.identity_id}`, { protocol: "twitter" }, "protocol"],
    ["PATCH", `/api/v2/identities/remotes/${created.identity_id}`, { infos: { poll_interval: -3 } }, "infos.poll_interval"],
    ["PATCH", "/api/v2/identities/remotes/not-a-uuid", { display_name: "x" }, "identity_id"],
    ["DELETE", "/api/v2/identities/remotes/not-a-uuid", undefined, "identity_id"],
  ];
  for (const [method, path, body, field] of cases) {
    const response = await fx.call(method, path, alice.token, body);
    assert.is(response.status, 400, `${method} ${JSON.stringify(body)}: ${JSON.stringify(response.body)}`);
    assert.is(response.body.field, field, JSON.stringify(response.body));
  }
  const malformed = await fx.call("PATCH", `/api/v2/identities/remotes/${created.identity_id}`, alice.token, "{not json");
  assert.is(malformed.status, 400);
  const stored = await fx.store.identities.get(alice.user_id, created.identity_id);
  assert.is(stored?.status, "active");
  assert.is(stored?.date_update, created.date_update);
  assert.equal(fx.takeWire(), []);
});

test("a refused server address is a 400 that says why, naming the field, on POST and PATCH; nothing changes", async ({ fx, alice }) => {
  const posted = await fx.call("POST", "/api/v2/identities/remotes", alice.token, {
    ...imapAccount,
    identifier: "scan@example.com",
    infos: { inserver: "127.0.0.1:22" },
  });
  assert.is(posted.status, 400);
  assert.equal(posted.body, {
    error: "bad_request",
    message:
      "infos.inserver 127.0.0.1:22 is not an allowed destination: 127.0.0.1 is a loopback address (an operator may admit it in CALIOPEN_ALLOWED_DESTINATIONS)",
    field: "infos.inserver",
  });
  const created = (await fx.call("POST", "/api/v2/identities/remotes", alice.token, { ...imapAccount, identifier: "patch-servers@example.com" })).body;
  await fx.expectWire(1);
  const patched = await fx.call("PATCH", `/api/v2/identities/remotes/${created.identity_id}`, alice.token, {
    credentials: { username: "alice", password: "s3cret-imap-password" },
    infos: { outserver: "169.254.169.254:25" },
  });
  assert.is(patched.status, 400);
  assert.is(patched.body.field, "infos.outserver");
  assert.match(patched.body.message, /169\.254\.169\.254 is a link-local address/);
  const stored = await fx.store.identities.get(alice.user_id, created.identity_id);
  assert.equal(stored?.infos, created.infos);
  assert.equal(fx.takeWire(), []);
});

test("a new inserver or outserver needs the credentials in the same PATCH (400 naming the field); the same server, or new credentials with it, is fine", async ({
  fx,
  alice,
}) => {
  const created = (
    await fx.call("POST", "/api/v2/identities/remotes", alice.token, {
      ...imapAccount,
      identifier: "moving@example.com",
      infos: { inserver: "imap.example.com:993" },
    })
  ).body;
  await fx.expectWire(1);
  const path = `/api/v2/identities/remotes/${created.identity_id}`;
  const cases: [unknown, string][] = [
    [{ infos: { inserver: "imap.attacker.example:993" } }, "infos.inserver"],
    [{ infos: { inserver: "imap.example.com:143" } }, "infos.inserver"],
    // No outserver yet: adding one is sending the password somewhere new too.
    [{ infos: { outserver: "smtp.attacker.example:465" } }, "infos.outserver"],
    [{ display_name: "moved", infos: { poll_interval: "30", outserver: "smtp.attacker.example:587" } }, "infos.outserver"],
  ];
  for (const [body, field] of cases) {
    const response = await fx.call("PATCH", path, alice.token, body);
    assert.is(response.status, 400, JSON.stringify(body));
    assert.is(response.body.field, field);
    assert.match(response.body.message, new RegExp(`^changing ${field} needs the account's credentials in the same request`));
  }
  const unchanged = await fx.store.identities.get(alice.user_id, created.identity_id);
  assert.is(unchanged?.infos.inserver, "imap.example.com:993");
  assert.is(unchanged?.infos.outserver, undefined);
  assert.is(unchanged?.display_name, created.display_name);
  assert.equal(await fx.store.identities.credentials(alice.user_id, created.identity_id), imapAccount.credentials, "the stored password stays");
  assert.equal(fx.takeWire(), [], "nothing emitted");

  const same = await fx.call("PATCH", path, alice.token, { infos: { inserver: "IMAP.Example.com:993", poll_interval: "20" } });
  assert.is(same.status, 200, JSON.stringify(same.body));
  const moved = await fx.call("PATCH", path, alice.token, {
    credentials: { username: "alice", password: "new-pass" },
    infos: { inserver: "imap.elsewhere.example:993", outserver: "smtp.elsewhere.example:465" },
  });
  assert.is(moved.status, 200, JSON.stringify(moved.body));
  assert.is(moved.body.infos.inserver, "imap.elsewhere.example:993");
  assert.equal(await fx.store.identities.credentials(alice.user_id, created.identity_id), { username: "alice", password: "new-pass" });
  await fx.expectWire(2);
});

test("an OAuth2 mail account: the grant is stored sealed (expiry in one form), never returned; a provider not configured, a grant beside a password, a malformed one are 400s", async ({
  fx,
  alice,
}) => {
  const grant = {
    provider: "google",
    access_token: "ya29.access-NEVER-SHOWN",
    refresh_token: "1//refresh-NEVER-SHOWN",
    expires_at: "2026-12-01T10:00:00+01:00",
  };
  const account = { ...imapAccount, identifier: "oauth@gmail.example", credentials: { oauth2: grant } };
  const created = await fx.call("POST", "/api/v2/identities/remotes", alice.token, account);
  assert.is(created.status, 201, JSON.stringify(created.body));
  assert.is(created.body.has_credentials, true);
  assert.not.ok(JSON.stringify(created.body).includes("NEVER-SHOWN"), "no token in the answer");
  assert.equal(await fx.store.identities.credentials(alice.user_id, created.body.identity_id), {
    oauth2: { ...grant, expires_at: "2026-12-01T09:00:00.000Z" },
  });
  const raw = await (await KvDocuments.open<unknown>(fx.nc, "caliopen_identities")).get(`${alice.user_id}.${created.body.identity_id}`);
  assert.not.ok(JSON.stringify(raw?.value).includes("NEVER-SHOWN"), "sealed at rest");
  const listed = await fx.call("GET", "/api/v2/identities/remotes", alice.token);
  assert.not.ok(JSON.stringify(listed.body).includes("NEVER-SHOWN"));
  await fx.expectWire(1);

  const refused: [unknown, RegExp][] = [
    [{ oauth2: { ...grant, provider: "microsoft" } }, /no OAuth2 provider \\"microsoft\\" is configured here \(known: google\)/],
    [{ oauth2: grant, password: "pw" }, /goes with username alone, not password/],
    [{ oauth2: { ...grant, refresh_token: undefined } }, /refresh_token/],
    [{ oauth2: { ...grant, expires_at: "tomorrow" } }, /expires_at/],
    [{ oauth2: { ...grant, access_token: "has space" } }, /access_token/],
    [{ oauth2: { ...grant, provider: "../etc" } }, /provider/],
    [{ oauth2: { ...grant, scope: "mail" } }, /credentials.oauth2.scope.{1,2} is not a known field/],
  ];
  for (const [credentials, expect] of refused) {
    const answer = await fx.call("POST", "/api/v2/identities/remotes", alice.token, {
      ...account,
      identifier: `other-${Math.random()}@gmail.example`,
      credentials,
    });
    assert.is(answer.status, 400, JSON.stringify(credentials));
    assert.match(JSON.stringify(answer.body), expect, JSON.stringify(answer.body));
    assert.not.ok(JSON.stringify(answer.body).includes("NEVER-SHOWN"), "the error does not echo a token");
  }
  const twitter = await fx.call("POST", "/api/v2/identities/remotes", alice.token, {
    protocol: "twitter",
    identifier: "oauthbird",
    credentials: { oauth2: grant },
  });
  assert.is(twitter.status, 400);
  assert.is((await fx.takeWire()).length, 0, "nothing emitted for refused requests");
});

test("without a valid bearer token every route is a 401", async ({ fx }) => {
  assert.is((await fx.call("GET", "/api/v2/identities/remotes", null)).status, 401);
  assert.is((await fx.call("GET", "/api/v2/identities/remotes", "cal_not-a-token")).status, 401);
  assert.is((await fx.call("POST", "/api/v2/identities/remotes", null, imapAccount)).status, 401);
  assert.equal(fx.takeWire(), []);
});

test.run();
