// Keeping OAuth 2.0 access tokens fresh, against a local authorization server speaking RFC 6749's refresh
// grant: a fresh token is used as is; one about to expire is refreshed and stored sealed; refreshes of
// one identity share one request, and two nodes refreshing at once with a provider that rotates refresh
// tokens end with one valid grant stored, not a broken account; a refused refresh token is the user's
// to mend; a hostile or broken token endpoint (huge, silent, garbage answers) is a bounded error that
// never carries a token or the client's secret.
import { Writable } from "node:stream";
import { Kvm } from "@nats-io/kv";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { AccessTokens, CredentialsRefused } from "../../../actors/oauth2/access-tokens.ts";
import { isOAuth2Credentials } from "../../../actors/oauth2/oauth2-credentials.ts";
import { type OAuth2Providers, OAuth2ProvidersError, parseOAuth2Providers } from "../../../actors/oauth2/oauth2-providers.ts";
import { TokenEndpointError } from "../../../actors/oauth2/token-endpoint.ts";
import type { Identity, OAuth2Grant } from "../../../actors/store/model.ts";
import { createLogger } from "../../../runtime/logger.ts";
import { type FakeOAuth2Provider, startFakeOAuth2Provider } from "../../helpers/oauth2-provider.ts";
import { type StoreFixture, startStore } from "../store/fixture.ts";

let f: StoreFixture;
let provider: FakeOAuth2Provider;
let rotating: FakeOAuth2Provider;
let providers: OAuth2Providers;
let logs = "";
const logger = createLogger({
  level: "debug",
  destination: new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  }),
});

test.before(async () => {
  f = await startStore();
  provider = await startFakeOAuth2Provider();
  rotating = await startFakeOAuth2Provider({ rotateRefreshTokens: true });
  providers = parseOAuth2Providers(
    JSON.stringify({
      plain: provider.providerEntry(),
      rotating: { ...rotating.providerEntry(), client_auth: "basic" },
    }),
  );
});

test.after(async () => {
  await provider.close();
  await rotating.close();
  await f.nc.close();
  await f.nats.stop();
});

async function accountWith(grant: OAuth2Grant): Promise<Identity> {
  return f.store.identities.create({
    user_id: crypto.randomUUID(),
    type: "remote",
    protocol: "imap",
    identifier: `user-${crypto.randomUUID().slice(0, 8)}@remote.test`,
    display_name: "oauth",
    infos: { inserver: "imap.remote.test:993" },
    credentials: { oauth2: grant },
  });
}

const grantOf = (issued: { access_token: string; refresh_token: string; expires_at: string }, name: string): OAuth2Grant => ({ provider: name, ...issued });

async function storedGrant(identity: Identity): Promise<OAuth2Grant> {
  const credentials = await f.store.identities.credentials(identity.user_id, identity.identity_id);
  assert.ok(isOAuth2Credentials(credentials), "still OAuth2 credentials");
  return credentials.oauth2;
}

test("a token with time left is used as it is: no request to the provider", async () => {
  const grant = grantOf(provider.grant("fresh"), "plain");
  const identity = await accountWith(grant);
  const before = provider.refreshes;
  const got = await new AccessTokens(f.store.identities, providers, logger).fresh(identity, grant);
  assert.equal(got, grant);
  assert.is(provider.refreshes, before);
});

test("a token about to expire is refreshed before use, and the new one is stored sealed (not readable in the bucket)", async () => {
  const grant = grantOf(provider.grant("expiring", { expiresInS: 60 }), "plain");
  const identity = await accountWith(grant);
  const before = provider.refreshes;
  const got = await new AccessTokens(f.store.identities, providers, logger).fresh(identity, grant);
  assert.is(provider.refreshes, before + 1);
  assert.is.not(got.access_token, grant.access_token);
  assert.is(got.refresh_token, grant.refresh_token, "a provider that does not rotate: the refresh token stays");
  assert.ok(Date.parse(got.expires_at ?? "") > Date.now() + 3000_000, "expires_in turned into a date an hour ahead");
  assert.equal(await storedGrant(identity), got);
  const kv = await new Kvm(f.nc).open("caliopen_identities");
  const raw = (await kv.get(`${identity.user_id}.${identity.identity_id}`))?.string() ?? "";
  assert.match(raw, /sealed_credentials/);
  assert.not.ok(raw.includes(got.access_token) || raw.includes(got.refresh_token), "the stored tokens are sealed");
});

test("a token the server refused is refreshed even with time left; an unknown expiry is used until refused", async () => {
  const issued = provider.grant("refused");
  const grant: OAuth2Grant = { ...grantOf(issued, "plain"), expires_at: null };
  const identity = await accountWith(grant);
  const tokens = new AccessTokens(f.store.identities, providers, logger);
  assert.equal(await tokens.fresh(identity, grant), grant, "no expiry known: used");
  const before = provider.refreshes;
  const got = await tokens.fresh(identity, grant, true);
  assert.is(provider.refreshes, before + 1);
  assert.is.not(got.access_token, grant.access_token);
});

test("refreshes of one identity on one node share one request", async () => {
  const grant = grantOf(provider.grant("shared", { expiresInS: -10 }), "plain");
  const identity = await accountWith(grant);
  const tokens = new AccessTokens(f.store.identities, providers, logger);
  const before = provider.refreshes;
  const got = await Promise.all([1, 2, 3, 4, 5].map(() => tokens.fresh(identity, grant)));
  assert.is(provider.refreshes, before + 1);
  assert.ok(got.every((one) => one.access_token === got[0]?.access_token));
});

test("two nodes refreshing at once with a provider that rotates refresh tokens: one refresh wins, the other takes its grant, and the account keeps working", async () => {
  const grant = grantOf(rotating.grant("raced", { expiresInS: -10 }), "rotating");
  const identity = await accountWith(grant);
  const other = await f.openAnother();
  const nodeA = new AccessTokens(f.store.identities, providers, logger);
  const nodeB = new AccessTokens(other.identities, providers, logger);
  const before = { refreshes: rotating.refreshes, refusals: rotating.refusals };
  const [a, b] = await Promise.all([nodeA.fresh(identity, grant), nodeB.fresh(identity, grant)]);
  assert.is(rotating.refreshes, before.refreshes + 1, "one refresh redeemed the token");
  assert.is(rotating.refusals, before.refusals + 1, "the other was refused: the token had just been rotated");
  assert.equal(a, b, "both use the grant that was stored");
  const stored = await storedGrant(identity);
  assert.equal(stored, a);
  assert.is.not(stored.refresh_token, grant.refresh_token, "the rotated refresh token is the one kept");
  // The kept refresh token works: the account is not broken.
  const again = await nodeA.fresh(identity, stored, true);
  assert.is.not(again.access_token, stored.access_token);
});

test("a refresh token the provider refuses (revoked) is CredentialsRefused, without a token in its words", async () => {
  const issued = provider.grant("revoked", { expiresInS: -10 });
  provider.revokeRefresh(issued.refresh_token);
  const grant = grantOf(issued, "plain");
  const identity = await accountWith(grant);
  const err = await new AccessTokens(f.store.identities, providers, logger).fresh(identity, grant).catch((e: Error) => e);
  assert.instance(err, CredentialsRefused);
  assert.match((err as Error).message, /invalid_grant/);
  assert.not.ok((err as Error).message.includes(issued.refresh_token));
  assert.equal(await storedGrant(identity), grant, "nothing stored");
});

test("a hostile or broken token endpoint is a bounded TokenEndpointError: huge, silent, 500, garbage, no access_token, a wrong client", async () => {
  const tokens = new AccessTokens(f.store.identities, providers, logger, { timeoutMs: 1_500 });
  const cases: { how: Parameters<FakeOAuth2Provider["misbehave"]>[0]; expect: RegExp }[] = [
    { how: { kind: "huge", bytes: 8 * 1024 * 1024 }, expect: /larger than 65536 bytes/ },
    { how: { kind: "silent" }, expect: /no answer within 1500 ms/ },
    { how: { kind: "status", status: 500, body: "<html>oops</html>" }, expect: /answered 500/ },
    { how: { kind: "status", status: 200, body: "not json" }, expect: /without a usable access_token/ },
    { how: { kind: "status", status: 200, body: JSON.stringify({ access_token: "x".repeat(20_000) }) }, expect: /without a usable access_token/ },
    { how: { kind: "status", status: 200, body: JSON.stringify({ access_token: "ok", refresh_token: 42 }) }, expect: /unusable refresh_token/ },
    { how: { kind: "status", status: 401, body: JSON.stringify({ error: "invalid_client" }) }, expect: /check its client_id and client_secret/ },
    { how: { kind: "status", status: 400, body: JSON.stringify({ error: "<script>" }) }, expect: /answered 400$/ },
  ];
  for (const { how, expect } of cases) {
    const grant = grantOf(provider.grant("hostile", { expiresInS: -10 }), "plain");
    const identity = await accountWith(grant);
    provider.misbehave(how);
    const started = Date.now();
    const err = await tokens.fresh(identity, grant).catch((e: Error) => e);
    assert.instance(err, TokenEndpointError, how.kind);
    assert.match((err as Error).message, expect);
    assert.ok(Date.now() - started < 5_000, `${how.kind}: ended within the timeout`);
    for (const secret of [provider.clientSecret, grant.refresh_token, grant.access_token]) assert.not.ok((err as Error).message.includes(secret));
    assert.equal(await storedGrant(identity), grant, "nothing stored");
  }
});

test("a grant naming a provider this node does not know is an error that says so", async () => {
  const grant: OAuth2Grant = { provider: "elsewhere", access_token: "a", refresh_token: "r", expires_at: new Date(0).toISOString() };
  const identity = await accountWith(grant);
  const err = await new AccessTokens(f.store.identities, providers, logger).fresh(identity, grant).catch((e: Error) => e);
  assert.instance(err, TokenEndpointError);
  assert.match((err as Error).message, /"elsewhere" is not configured on this node \(CALIOPEN_OAUTH2_PROVIDERS\)/);
});

test("the log tells of refreshes and refusals, never a token or the client's secret", () => {
  assert.match(logs, /OAuth2 access token refreshed/);
  assert.match(logs, /refresh token refused/);
  for (const secret of [provider.clientSecret, rotating.clientSecret, "at-", "rt-"]) assert.not.ok(logs.includes(secret), secret);
});

const GOOGLE = { token_url: "https://oauth2.googleapis.com/token", client_id: "id", client_secret: "s" };

test("the providers file: names, https token URLs (http only on loopback), no credentials in the URL, client_auth, consent pages", () => {
  const good = parseOAuth2Providers(JSON.stringify({ google: { token_url: "https://oauth2.googleapis.com/token", client_id: "id", client_secret: "s" } }));
  assert.is(good.get("google")?.clientAuth, "body");
  assert.is(good.get("google")?.authorization, null);
  const consenting = parseOAuth2Providers(
    JSON.stringify({
      google: {
        ...GOOGLE,
        authorization_url: "https://accounts.google.com/o/oauth2/v2/auth",
        redirect_uri: "https://mail.example.org/api/v2/oauth2/callback",
        scope: "https://mail.google.com/",
        authorization_params: { access_type: "offline", prompt: "consent" },
      },
    }),
  ).get("google")?.authorization;
  assert.is(consenting?.url.href, "https://accounts.google.com/o/oauth2/v2/auth");
  assert.is(consenting?.redirectUri.href, "https://mail.example.org/api/v2/oauth2/callback");
  assert.is(consenting?.scope, "https://mail.google.com/");
  assert.equal(consenting?.params, { access_type: "offline", prompt: "consent" });
  const consent = { authorization_url: "https://accounts.example.com/auth", redirect_uri: "https://mail.example.org/api/v2/oauth2/callback" };
  const refused: [unknown, RegExp][] = [
    [{ p: { ...GOOGLE, authorization_url: consent.authorization_url } }, /authorization_url and redirect_uri go together/],
    [{ p: { ...GOOGLE, scope: "mail" } }, /p\.scope: goes with authorization_url/],
    [{ p: { ...GOOGLE, ...consent, redirect_uri: "http://mail.example.org/cb" } }, /p\.redirect_uri: must be https/],
    [{ p: { ...GOOGLE, ...consent, authorization_url: "https://u:pw@accounts.example.com/auth" } }, /not in the URL/],
    [{ p: { ...GOOGLE, ...consent, authorization_params: { redirect_uri: "https://evil.example/" } } }, /redirect_uri is set by the platform/],
    [{ p: { ...GOOGLE, ...consent, authorization_params: { state: "x" } } }, /state is set by the platform/],
    [{ p: { ...GOOGLE, ...consent, authorization_params: { access_type: 1 } } }, /authorization_params/],
    [{ p: { ...GOOGLE, ...consent, authorization_params: ["a"] } }, /authorization_params/],
    ["[]", /JSON object/],
    ["{", /not JSON/],
    [{ "bad name": {} }, /not a provider name/],
    [{ p: { token_url: "http://oauth.example.com/token", client_id: "i", client_secret: "s" } }, /must be https/],
    [{ p: { token_url: "https://u:pw@oauth.example.com/token", client_id: "i", client_secret: "s" } }, /not in the URL/],
    [{ p: { token_url: "https://oauth.example.com/token", client_id: "i" } }, /p\.client_secret/],
    [{ p: { token_url: "https://oauth.example.com/token", client_id: "i", client_secret: "s", client_auth: "jwt" } }, /client_auth/],
    [{ p: { token_url: "not a url", client_id: "i", client_secret: "s" } }, /not a URL/],
  ];
  for (const [file, expect] of refused) {
    const text = typeof file === "string" ? file : JSON.stringify(file);
    assert.throws(
      () => parseOAuth2Providers(text),
      (err: Error) => err instanceof OAuth2ProvidersError && expect.test(err.message),
      text,
    );
  }
  assert.ok(parseOAuth2Providers(JSON.stringify({ local: { token_url: "http://127.0.0.1:9/token", client_id: "i", client_secret: "s" } })).has("local"));
});

test.run();
