// Connecting a mail account through its OAuth 2.0 provider's consent page (authorization code with PKCE)
// over the HTTP API, against a local authorization server: the consent page's address says what the
// platform asks for and nothing secret; the callback stores the grant sealed and emits update_identity;
// a state is good once and only for the code its own request brought back; a refusal, a forged or
// replayed callback, a provider that fails, another user's identity and a user starting too many are
// each a clear error that stores nothing and shows no code, token or secret.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { isOAuth2Credentials } from "../../actors/oauth2/oauth2-credentials.ts";
import { parseOAuth2Providers } from "../../actors/oauth2/oauth2-providers.ts";
import { MAX_AUTHORIZATIONS_PER_USER } from "../../actors/store/oauth2-authorizations.ts";
import { KvDocuments } from "../../runtime/kv-documents.ts";
import type { HttpResult } from "../helpers/api-client.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";
import { type FakeOAuth2Provider, startFakeOAuth2Provider } from "../helpers/oauth2-provider.ts";

interface Account {
  user_id: string;
  token: string;
}

interface Context {
  fx: ApiFixture;
  provider: FakeOAuth2Provider;
  alice: Account;
  bob: Account;
}

const REDIRECT_URI = "https://caliopen.test/api/v2/oauth2/callback";
const CALLBACK = "/api/v2/oauth2/callback";

const test = suite<Context>("API: OAuth2 authorization");

test.before(async (ctx) => {
  ctx.provider = await startFakeOAuth2Provider();
  ctx.fx = await startApiFixture({
    oauth2Providers: parseOAuth2Providers(
      JSON.stringify({
        test: {
          ...ctx.provider.providerEntry(REDIRECT_URI),
          authorization_url: `${ctx.provider.authorizationUrl}?tenant=common`,
          scope: "https://mail.test/ offline_access",
          authorization_params: { access_type: "offline", prompt: "consent" },
        },
        grants_only: { token_url: "https://oauth2.example.com/token", client_id: "id", client_secret: "grants-only-secret" },
      }),
    ),
  });
  ctx.alice = await ctx.fx.user("alice");
  ctx.bob = await ctx.fx.user("bob");
});
test.after(async (ctx) => {
  await ctx.fx.stop();
  await ctx.provider.close();
});
test.before.each(({ fx }) => void fx.takeWire());

let accounts = 0;

/** A remote IMAP identity of `who`, made without credentials. */
async function identityOf(ctx: Context, who: Account, protocol = "imap"): Promise<string> {
  const n = ++accounts;
  const created = await ctx.fx.call("POST", "/api/v2/identities/remotes", who.token, {
    protocol,
    identifier: protocol === "twitter" ? `@account${n}` : `account${n}@mail.test`,
    ...(protocol !== "twitter" && { infos: { inserver: "imap.mail.test:993", outserver: "smtp.mail.test:465" } }),
  });
  assert.is(created.status, 201, JSON.stringify(created.body));
  assert.is(created.body.has_credentials, false);
  return created.body.identity_id;
}

const authorize = (ctx: Context, who: Account, identityId: string, body: Record<string, unknown> = { provider: "test" }) =>
  ctx.fx.call("POST", `/api/v2/identities/remotes/${identityId}/oauth2`, who.token, body);

/** Visits the consent page as a browser would, as `consenting` (null: refuses), and returns where the provider sends it back. */
async function consent(ctx: Context, authorizationUrl: string, consenting: string | null): Promise<URL> {
  ctx.provider.consentAs(consenting);
  const page = await fetch(authorizationUrl, { redirect: "manual" });
  assert.is(page.status, 302);
  const back = new URL(page.headers.get("location") ?? "");
  assert.is(`${back.origin}${back.pathname}`, REDIRECT_URI);
  return back;
}

const callback = (ctx: Context, query: string): Promise<HttpResult> => ctx.fx.call("GET", `${CALLBACK}${query}`, null);

function assertNothingSecret(ctx: Context, ...answers: HttpResult[]): void {
  const text = JSON.stringify(answers.map((answer) => answer.body));
  assert.not.ok(text.includes(ctx.provider.clientSecret), "no client secret");
  assert.not.ok(text.includes("grants-only-secret"), "no client secret");
  assert.not.ok(/\bat-|\brt-|code-/.test(text), `no token or code in ${text}`);
}

test("the providers are listed by name, with whether the platform leads users through their consent page; nothing secret", async (ctx) => {
  const listed = await ctx.fx.call("GET", "/api/v2/oauth2/providers", ctx.alice.token);
  assert.is(listed.status, 200);
  assert.equal(listed.body.providers, [
    { name: "test", authorization: true },
    { name: "grants_only", authorization: false },
  ]);
  assertNothingSecret(ctx, listed);
  assert.is((await ctx.fx.call("GET", "/api/v2/oauth2/providers", null)).status, 401, "a user's token is needed");
});

test("consent, then the callback: the grant is stored sealed on the identity, update_identity emitted, and the state is good once", async (ctx) => {
  const identityId = await identityOf(ctx, ctx.alice);
  ctx.fx.takeWire();
  const started = await authorize(ctx, ctx.alice, identityId, { provider: "test", username: "alice-login" });
  assert.is(started.status, 201, JSON.stringify(started.body));
  assert.ok(Date.parse(started.body.expires_at) > Date.now());
  const asked = new URL(started.body.authorization_url);
  assert.is(`${asked.origin}${asked.pathname}`, ctx.provider.authorizationUrl);
  const query = Object.fromEntries(asked.searchParams);
  assert.is(query.tenant, "common", "the operator's own query kept");
  assert.is(query.response_type, "code");
  assert.is(query.client_id, ctx.provider.clientId);
  assert.is(query.redirect_uri, REDIRECT_URI);
  assert.is(query.scope, "https://mail.test/ offline_access");
  assert.is(query.access_type, "offline");
  assert.is(query.prompt, "consent");
  assert.is(query.code_challenge_method, "S256");
  assert.match(query.code_challenge ?? "", /^[A-Za-z0-9_-]{43}$/);
  assert.match(query.state ?? "", /^[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$/);
  assert.match(query.login_hint ?? "", /^account\d+@mail\.test$/);
  assert.not.ok(asked.href.includes(ctx.provider.clientSecret), "the client secret stays on the server");

  const back = await consent(ctx, started.body.authorization_url, "alice-login");
  const connected = await callback(ctx, back.search);
  assert.is(connected.status, 200, JSON.stringify(connected.body));
  assert.equal(connected.body, { identity_id: identityId, provider: "test", connected: true });
  assert.is(ctx.provider.codesRedeemed, 1);

  const credentials = await ctx.fx.store.identities.credentials(ctx.alice.user_id, identityId);
  assert.ok(isOAuth2Credentials(credentials));
  assert.is(credentials.username, "alice-login");
  assert.is(credentials.oauth2.provider, "test");
  assert.match(credentials.oauth2.access_token, /^at-/);
  assert.match(credentials.oauth2.refresh_token, /^rt-/);
  assert.ok(Date.parse(credentials.oauth2.expires_at ?? "") > Date.now());
  const raw = await (await KvDocuments.open<unknown>(ctx.fx.nc, "caliopen_identities")).get(`${ctx.alice.user_id}.${identityId}`);
  assert.not.ok(JSON.stringify(raw?.value).includes(credentials.oauth2.refresh_token), "sealed at rest");
  assert.is((await ctx.fx.call("GET", `/api/v2/identities/remotes/${identityId}`, ctx.alice.token)).body.has_credentials, true);
  assert.equal(await ctx.fx.expectWire(1), [
    { subject: "identitiesWorker", payload: { order: "update_identity", identity_id: identityId, user_id: ctx.alice.user_id } },
  ]);

  const replayed = await callback(ctx, back.search);
  assert.is(replayed.status, 400);
  assert.is(replayed.body.field, "state");
  assert.is(ctx.provider.codesRedeemed, 1, "the code was not sent again");
  assertNothingSecret(ctx, started, connected, replayed);
});

test("the user refuses at the provider: a 400 that says so, no credentials, and that state is spent", async (ctx) => {
  const identityId = await identityOf(ctx, ctx.alice);
  const started = await authorize(ctx, ctx.alice, identityId);
  const back = await consent(ctx, started.body.authorization_url, null);
  assert.is(back.searchParams.get("error"), "access_denied");
  const refused = await callback(ctx, back.search);
  assert.is(refused.status, 400);
  assert.match(refused.body.message, /did not grant access \(access_denied\)/);
  assert.is(await ctx.fx.store.identities.credentials(ctx.alice.user_id, identityId), null);
  assert.is((await callback(ctx, back.search)).status, 400, "spent");
});

test("a code brought back for another authorization, a forged, unknown or missing state, and an overlong code are refused", async (ctx) => {
  const identityId = await identityOf(ctx, ctx.alice);
  const first = await authorize(ctx, ctx.alice, identityId);
  const second = await authorize(ctx, ctx.alice, identityId);
  const firstBack = await consent(ctx, first.body.authorization_url, "alice-login");
  const secondState = new URL(second.body.authorization_url).searchParams.get("state") ?? "";
  // The first consent's code with the second request's state: its PKCE verifier does not match.
  const swapped = await callback(ctx, `?state=${encodeURIComponent(secondState)}&code=${encodeURIComponent(firstBack.searchParams.get("code") ?? "")}`);
  assert.is(swapped.status, 400);
  assert.match(swapped.body.message, /refused the authorization code \(invalid_grant\)/);
  assert.is(await ctx.fx.store.identities.credentials(ctx.alice.user_id, identityId), null, "nothing stored");

  const third = await authorize(ctx, ctx.alice, identityId);
  const thirdBack = await consent(ctx, third.body.authorization_url, "alice-login");
  const thirdState = thirdBack.searchParams.get("state") ?? "";
  const forged = `${thirdState.slice(0, 33)}${"A".repeat(43)}`;
  const answers = [
    await callback(ctx, `?state=${encodeURIComponent(forged)}&code=x`),
    await callback(ctx, "?code=x"),
    await callback(ctx, "?state=..%2F..%2Fusers&code=x"),
    await callback(ctx, `?state=${encodeURIComponent(thirdState)}&code=${"c".repeat(5_000)}`),
  ];
  assert.equal(
    answers.map((answer) => answer.status),
    [400, 400, 400, 400],
  );
  for (const answer of answers.slice(0, 3)) assert.is(answer.body.field, "state");
  // The overlong code was refused before its state was looked at: that consent still completes.
  const completed = await callback(ctx, thirdBack.search);
  assert.is(completed.status, 200, JSON.stringify(completed.body));
  assertNothingSecret(ctx, swapped, ...answers, completed);
});

test("a provider whose token endpoint fails: a 502 naming the provider, nothing stored, nothing secret", async (ctx) => {
  const identityId = await identityOf(ctx, ctx.alice);
  const started = await authorize(ctx, ctx.alice, identityId);
  const back = await consent(ctx, started.body.authorization_url, "alice-login");
  ctx.provider.misbehave({ kind: "status", status: 500, body: `{"error":"server_error","error_description":"${ctx.provider.clientSecret}"}` });
  const failed = await callback(ctx, back.search);
  assert.is(failed.status, 502);
  assert.match(failed.body.message, /OAuth2 provider test answered 500 \(server_error\)/);
  assert.is(await ctx.fx.store.identities.credentials(ctx.alice.user_id, identityId), null);
  assertNothingSecret(ctx, failed);
});

test("only the user's own mail identity, a provider with a consent page, and a few authorizations at once", async (ctx) => {
  const identityId = await identityOf(ctx, ctx.alice);
  assert.is((await authorize(ctx, ctx.bob, identityId)).status, 404, "another user's identity");
  const unknown = await authorize(ctx, ctx.alice, identityId, { provider: "nowhere" });
  assert.equal([unknown.status, unknown.body.field], [400, "provider"]);
  const grantsOnly = await authorize(ctx, ctx.alice, identityId, { provider: "grants_only" });
  assert.equal([grantsOnly.status, grantsOnly.body.field], [400, "provider"]);
  assert.is((await authorize(ctx, ctx.alice, identityId, { provider: "test", extra: 1 })).status, 400, "no other field");
  const twitter = await authorize(ctx, ctx.alice, await identityOf(ctx, ctx.alice, "twitter"));
  assert.is(twitter.status, 400);

  // Bob has none in progress yet: he may start as many as the limit, then no more.
  const bobs = await identityOf(ctx, ctx.bob);
  for (let n = 0; n < MAX_AUTHORIZATIONS_PER_USER; n++) assert.is((await authorize(ctx, ctx.bob, bobs)).status, 201);
  const over = await authorize(ctx, ctx.bob, bobs);
  assert.is(over.status, 409);
  assert.match(over.body.message, /already in progress/);
  assert.is((await authorize(ctx, ctx.alice, identityId)).status, 201, "another user's limit is their own");
});

test.run();
