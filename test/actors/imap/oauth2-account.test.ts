// OAuth 2.0 mail accounts on a real node, against a real Dovecot whose `oauth2` passdb asks a local
// authorization server (RFC 7662 introspection) about every XOAUTH2/OAUTHBEARER login, and Dovecot's
// own submission server (same logins) relaying to Postfix's smtp-sink. An expired token is refreshed
// before the login and stored sealed; a token revoked before its expiry is refused by the server,
// refreshed and tried once more; a refused refresh token puts the worker in needsCredentials (visible,
// polls ignored, polling slowed) until new credentials arrive through update_identity. An account made
// without credentials waits the same way until the user consents at the provider (the API's consent
// flow, authorization code with PKCE) and then syncs.
import { readFile } from "node:fs/promises";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import type { ImapWorkerContext } from "../../../actors/imap/imap-worker-state.ts";
import { newDraft } from "../../../actors/messages/new-draft.ts";
import { isOAuth2Credentials } from "../../../actors/oauth2/oauth2-credentials.ts";
import { parseOAuth2Providers } from "../../../actors/oauth2/oauth2-providers.ts";
import type { Identity, OAuth2Grant } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { DEFAULT_HTTP_SETTINGS } from "../../../api/http-settings.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { startTestDovecot, type TestDovecot } from "../../../scripts/local-servers/dovecot.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { callApi } from "../../helpers/api-client.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { type FakeOAuth2Provider, startFakeOAuth2Provider } from "../../helpers/oauth2-provider.ts";
import { type SmtpSink, startSmtpSink } from "../../helpers/smtp-sink.ts";
import { startTestNode, testCaliopenConfig, testDestinations } from "../../helpers/test-node.ts";
import { type DeliverAnswer, deliverThroughWorker, messagesOf, publishFor } from "./worker-bus.ts";

interface Context {
  nats: TestNats;
  provider: FakeOAuth2Provider;
  sink: SmtpSink;
  dovecot: TestDovecot;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  userId: string;
  orders: Record<string, unknown>[];
  apiUrl: string;
}

/** The platform's callback as the operator registered it at the provider (the test follows the redirect itself). */
const REDIRECT_URI = "https://caliopen.test/api/v2/oauth2/callback";

const test = suite<Context>("OAuth2 mail accounts");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.provider = await startFakeOAuth2Provider();
  ctx.sink = await startSmtpSink();
  ctx.dovecot = await startTestDovecot({
    oauth2: { introspectionUrl: ctx.provider.introspectionUrl },
    submission: { relay: `${ctx.sink.host}:${ctx.sink.port}` },
  });
  const submission = ctx.dovecot.submissionServer ?? "";
  const config = testCaliopenConfig({
    // This Dovecot offers no TLS: the operator's +cleartext exception admits it.
    destinations: testDestinations([`${ctx.dovecot.server}+cleartext`, `${submission}+cleartext`]),
    imap: { push: false, retry: { initialMs: 200, maxMs: 400, factor: 2, jitter: 0 } },
    api: { host: "127.0.0.1", port: 0, http: { ...DEFAULT_HTTP_SETTINGS, rateLimits: { perToken: null, perIp: null } } },
    oauth2Providers: parseOAuth2Providers(JSON.stringify({ test: ctx.provider.providerEntry(REDIRECT_URI) })),
  });
  let apiUrl = "";
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config, { onApiStarted: (url) => (apiUrl = url) }), { nodeId: "oauth2-node" });
  ctx.apiUrl = apiUrl;
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  ctx.userId = (await createUser(ctx.store, { name: "olivia", email: "olivia@platform.test" })).user.user_id;
  ctx.orders = [];
  ctx.client.subscribe("identitiesWorker", {
    callback: (_err, msg) => {
      const decoded = decodeJson(msg.data);
      if (decoded.ok) ctx.orders.push(decoded.value as Record<string, unknown>);
    },
  });
  await ctx.client.flush();
});

test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.dovecot.stop();
  await ctx.sink.stop();
  await ctx.provider.close();
  await ctx.client.close();
  await ctx.nats.stop();
});

let accounts = 0;

/** A Dovecot user and its identity, logging in with a grant of the local provider (expiring in `expiresInS`). */
async function account(ctx: Context, expiresInS: number): Promise<{ login: string; identity: Identity; grant: OAuth2Grant }> {
  const login = `oauth${++accounts}`;
  const grant: OAuth2Grant = { provider: "test", ...ctx.provider.grant(login, { expiresInS }) };
  const identity = await ctx.store.identities.create({
    user_id: ctx.userId,
    type: "remote",
    protocol: "imap",
    identifier: `${login}@remote.test`,
    display_name: login,
    infos: { inserver: ctx.dovecot.server, outserver: ctx.dovecot.submissionServer ?? "", poll_interval: "15" },
    credentials: { username: login, oauth2: grant },
  });
  return { login, identity, grant };
}

function mail(n: number): string {
  return `From: Sender <sender${n}@elsewhere.test>\r\nTo: someone@remote.test\r\nSubject: oauth message ${n}\r\nMessage-ID: <o${n}-${Date.now()}-${Math.random()}@elsewhere.test>\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\nbody ${n}\r\n`;
}

const worker = (ctx: Context, identity: Identity) => ctx.node.host.get("imap", identity.identity_id);
const workerState = (ctx: Context, identity: Identity) => JSON.stringify(worker(ctx, identity)?.summary().state ?? "");
const workerContext = (ctx: Context, identity: Identity) => (worker(ctx, identity)?.inspect().context ?? {}) as Partial<ImapWorkerContext>;

async function storedGrant(ctx: Context, identity: Identity): Promise<OAuth2Grant> {
  const credentials = await ctx.store.identities.credentials(identity.user_id, identity.identity_id);
  assert.ok(isOAuth2Credentials(credentials));
  return credentials.oauth2;
}

/** Dovecot's log lines of `login`'s successful logins. */
async function dovecotLogins(ctx: Context, login: string): Promise<string[]> {
  return (await readFile(`${ctx.dovecot.dir}/dovecot.log`, "utf8")).split("\n").filter((line) => line.includes(`Login: user=<${login}>`));
}

test("an expired access token is refreshed before the login: mail imported over XOAUTH2, the new token stored", async (ctx) => {
  const { login, identity, grant } = await account(ctx, -30);
  const direct = await ctx.dovecot.client(login, "secret");
  await direct.append("INBOX", mail(1));
  await direct.append("INBOX", mail(2));
  await direct.logout();
  const before = ctx.provider.refreshes;
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("2 messages imported", async () => (await messagesOf(ctx.store, identity)).length === 2, 15_000);
  assert.is(ctx.provider.refreshes, before + 1, "one refresh");
  const stored = await storedGrant(ctx, identity);
  assert.is.not(stored.access_token, grant.access_token);
  assert.ok(Date.parse(stored.expires_at ?? "") > Date.now(), "the stored token has time left");
  const logins = await dovecotLogins(ctx, login);
  assert.ok(
    logins.some((line) => /method=(XOAUTH2|OAUTHBEARER)/.test(line)),
    logins.join("\n"),
  );
  const debug = JSON.stringify(worker(ctx, identity)?.inspect());
  assert.not.ok(debug.includes(stored.access_token) || debug.includes(stored.refresh_token), "no token in debug output");
});

test("a token revoked before its expiry: the server refuses it, it is refreshed, and the sync goes on", async (ctx) => {
  const { login, identity, grant } = await account(ctx, 3600);
  const direct = await ctx.dovecot.client(login, "secret");
  await direct.append("INBOX", mail(3));
  await direct.logout();
  ctx.provider.revokeAccess(grant.access_token);
  const before = ctx.provider.refreshes;
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("imported", async () => (await messagesOf(ctx.store, identity)).length === 1, 15_000);
  assert.is(ctx.provider.refreshes, before + 1);
  assert.is.not((await storedGrant(ctx, identity)).access_token, grant.access_token);
  assert.is(workerContext(ctx, identity).failures, 0, "no failed sync");
});

test("the provider refuses the refresh token: needsCredentials (visible, polls ignored, polling slowed), until new credentials come with update_identity", async (ctx) => {
  const { login, identity, grant } = await account(ctx, -30);
  ctx.provider.revokeRefresh(grant.refresh_token);
  const direct = await ctx.dovecot.client(login, "secret");
  await direct.append("INBOX", mail(4));
  await direct.logout();
  // The poller (add_identity) is what reloads the worker when the identity changes.
  ctx.client.publish("identitiesWorker", encodeJson({ order: "add_identity", identity_id: identity.identity_id, user_id: ctx.userId }));
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("needsCredentials", () => workerState(ctx, identity).includes("needsCredentials"), 15_000);
  const lastError = String(workerContext(ctx, identity).last_error?.message);
  assert.match(lastError, /invalid_grant/);
  assert.match(lastError, /waiting for new credentials/);
  await waitFor("the error on the identity", async () =>
    /waiting for new credentials/.test(String((await ctx.store.identities.get(ctx.userId, identity.identity_id))?.infos.last_error?.message)),
  );
  const slower = await waitFor("update_interval", () => ctx.orders.find((o) => o.order === "update_interval" && o.identity_id === identity.identity_id), 5_000);
  assert.is(slower.poll_intervall, "30", "polling slowed at once");
  assert.not.ok(worker(ctx, identity)?.summary().deadlines["retry.due"], "no retry: only new credentials can help");
  const debug = JSON.stringify(worker(ctx, identity)?.inspect());
  assert.not.ok(debug.includes(grant.refresh_token) || debug.includes(grant.access_token), "no token in debug output");

  // Polls meanwhile try nothing.
  const refusals = ctx.provider.refusals;
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.is(ctx.provider.refusals, refusals, "no refresh attempted by a poll");
  assert.ok(workerState(ctx, identity).includes("needsCredentials"));

  // The user grants access again: the identity's credentials change and the worker is reloaded.
  const renewed: OAuth2Grant = { provider: "test", ...ctx.provider.grant(login) };
  await ctx.store.identities.update(ctx.userId, identity.identity_id, () => ({ credentials: { username: login, oauth2: renewed } }));
  ctx.client.publish("identitiesWorker", encodeJson({ order: "update_identity", identity_id: identity.identity_id, user_id: ctx.userId }));
  await waitFor("imported after new credentials", async () => (await messagesOf(ctx.store, identity)).length === 1, 15_000);
  await waitFor("idle again", () => workerState(ctx, identity).includes('"sync":"idle"'));
  assert.is(workerContext(ctx, identity).failures, 0);
});

test("deliver from an OAuth2 account: the token is refreshed, the mail goes through Dovecot's submission server (XOAUTH2) to the relay, and is filed in Sent", async (ctx) => {
  const { login, identity, grant } = await account(ctx, -30);
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  await waitFor("worker up", () => worker(ctx, identity) !== undefined);
  const before = { refreshes: ctx.provider.refreshes, sunk: (await ctx.sink.messages()).length };
  const reply = await deliver(ctx, identity, "sent with a token");
  assert.is(reply.error, false, reply.message);
  const sunk = await ctx.sink.waitForMessages(before.sunk + 1);
  assert.is(sunk.length, before.sunk + 1, "one message relayed");
  assert.match(sunk.at(-1)?.content ?? "", /Subject: sent with a token/);
  assert.is(ctx.provider.refreshes, before.refreshes + 1, "one refresh served the send and the Sent copy");
  assert.is.not((await storedGrant(ctx, identity)).access_token, grant.access_token);
  const submissions = (await readFile(`${ctx.dovecot.dir}/dovecot.log`, "utf8"))
    .split("\n")
    .filter((line) => line.includes(`submission-login: Info: Login: user=<${login}>, method=XOAUTH2`));
  assert.ok(submissions.length > 0, "logged in to the submission server");
});

test("deliver with a token revoked before its expiry: the submission server refuses it (535), it is refreshed and the mail sent once", async (ctx) => {
  const { identity, grant } = await account(ctx, 3600);
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  await waitFor("worker up", () => worker(ctx, identity) !== undefined);
  ctx.provider.revokeAccess(grant.access_token);
  const before = { refreshes: ctx.provider.refreshes, sunk: (await ctx.sink.messages()).length };
  const reply = await deliver(ctx, identity, "sent after a refusal");
  assert.is(reply.error, false, reply.message);
  assert.is(ctx.provider.refreshes, before.refreshes + 1);
  await ctx.sink.waitForMessages(before.sunk + 1);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.is((await ctx.sink.messages()).length, before.sunk + 1, "sent exactly once");
});

test("an account created without credentials waits in needsCredentials, then is connected through the provider's consent page and syncs", async (ctx) => {
  const login = `oauth${++accounts}`;
  const direct = await ctx.dovecot.client(login, "secret");
  await direct.append("INBOX", mail(5));
  await direct.logout();
  const { token } = await createUser(ctx.store, { name: login, email: `${login}@platform.test` });
  const created = await callApi(ctx.apiUrl, token, "POST", "/api/v2/identities/remotes", {
    protocol: "imap",
    identifier: `${login}@remote.test`,
    infos: { inserver: ctx.dovecot.server, outserver: ctx.dovecot.submissionServer ?? "", poll_interval: "15" },
  });
  assert.is(created.status, 201, JSON.stringify(created.body));
  assert.is(created.body.has_credentials, false);
  const identity = created.body as Identity;
  await waitFor("needsCredentials", () => workerState(ctx, identity).includes("needsCredentials"), 15_000);
  assert.match(String(workerContext(ctx, identity).last_error?.message), /no IMAP credentials yet/);

  const started = await callApi(ctx.apiUrl, token, "POST", `/api/v2/identities/remotes/${identity.identity_id}/oauth2`, { provider: "test", username: login });
  assert.is(started.status, 201, JSON.stringify(started.body));
  ctx.provider.consentAs(login);
  const consent = await fetch(started.body.authorization_url, { redirect: "manual" });
  assert.is(consent.status, 302);
  const back = new URL(consent.headers.get("location") ?? "");
  assert.is(`${back.origin}${back.pathname}`, REDIRECT_URI);
  const connected = await callApi(ctx.apiUrl, null, "GET", `${back.pathname}${back.search}`);
  assert.is(connected.status, 200, JSON.stringify(connected.body));
  assert.equal(connected.body, { identity_id: identity.identity_id, provider: "test", connected: true });

  await waitFor("imported once connected", async () => (await messagesOf(ctx.store, identity)).length === 1, 15_000);
  assert.is((await storedGrant(ctx, identity)).provider, "test");
  const credentials = await ctx.store.identities.credentials(identity.user_id, identity.identity_id);
  assert.is(isOAuth2Credentials(credentials) ? credentials.username : null, login);
  const logins = await dovecotLogins(ctx, login);
  assert.ok(
    logins.some((line) => /method=(XOAUTH2|OAUTHBEARER)/.test(line)),
    logins.join("\n"),
  );
  await waitFor("idle again", () => workerState(ctx, identity).includes('"sync":"idle"'));
});

async function deliver(ctx: Context, identity: Identity, subject: string): Promise<DeliverAnswer> {
  const draft = await ctx.store.messages.create(
    newDraft(identity, { subject, body_plain: "hello", participants: [{ type: "To", address: "friend@elsewhere.test" }] }),
  );
  return deliverThroughWorker(ctx.client, identity, draft.message_id);
}

test.run();
