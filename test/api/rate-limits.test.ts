// Rate limits at the API's door: a token over its budget is refused (429, Retry-After, the API's error
// body) while other tokens work; requests without a valid token are counted per client address, and
// an address over its budget is refused whatever token it sends; X-Forwarded-For is believed only
// from a trusted proxy. Each test gets its own API (counters are per node), on loopback addresses
// 127.0.0.x to play several clients.

import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createLogger } from "../../runtime/logger.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";
import { type RawAnswer, rawRequest } from "../helpers/http-request.ts";

const test = suite<{ fx: ApiFixture }>("API: rate limits");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

const wrongToken = () => `cal_${randomBytes(24).toString("base64url")}`;

function assertRefused(answer: RawAnswer, why: RegExp): void {
  assert.is(answer.status, 429, JSON.stringify(answer.body));
  assert.is(answer.body.error, "too_many_requests");
  assert.match(answer.body.message, why);
  const retryAfter = Number(answer.headers["retry-after"]);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After is seconds within the minute: ${answer.headers["retry-after"]}`);
  assert.match(answer.body.message, new RegExp(`retry in ${retryAfter} s`));
}

test("a token over its budget gets 429 with Retry-After, while another token, and the same token on another node, still work", async ({ fx }) => {
  const api = await fx.another({ rateLimits: { perToken: 3, perIp: 100 } });
  const alice = await fx.user("alice");
  const bob = await fx.user("bob");
  const [aliceToken] = await fx.store.tokens.list(alice.user_id);
  const me = (token: string, url = api.url) => rawRequest(`${url}/api/v2/me`, { token });

  const remaining: string[] = [];
  for (let i = 0; i < 3; i++) {
    const answer = await me(alice.token);
    assert.is(answer.status, 200);
    remaining.push(String(answer.headers["x-ratelimit-remaining"]));
  }
  assert.equal(remaining, ["2", "1", "0"], "each answer says what is left");
  const refused = await me(alice.token);
  assertRefused(refused, new RegExp(`token ${aliceToken?.token_id} made more than 3 requests this minute`));
  assert.not.ok(JSON.stringify(refused.body).includes(alice.token.slice(4)), "the token's secret is not echoed");
  assert.is(refused.headers["x-ratelimit-remaining"], "0");

  assert.is((await me(bob.token)).status, 200, "another token has its own budget");
  assert.is((await me(alice.token, fx.api.url)).status, 200, "another node counts on its own");
});

test("failed authentications are counted per address, never against a real token's budget; an address over its budget is refused whatever it sends", async ({
  fx,
}) => {
  const api = await fx.another({ rateLimits: { perToken: 3, perIp: 4 } });
  const carol = await fx.user("carol");
  const me = (token: string | undefined, localAddress = "127.0.0.1") =>
    rawRequest(`${api.url}/api/v2/me`, { ...(token !== undefined && { token }), localAddress });

  assert.is((await me(wrongToken())).status, 401);
  assert.is((await me(undefined)).status, 401, "no token at all counts too");
  assert.is((await me(wrongToken())).status, 401);
  const own = await me(carol.token);
  assert.is(own.status, 200);
  assert.is(own.headers["x-ratelimit-remaining"], "2", "three failures from her address spent none of carol's budget");
  assert.is((await me(wrongToken())).status, 401, "the address's fourth failure is still answered");

  assertRefused(await me(wrongToken()), /too many requests without a valid token from 127\.0\.0\.1 \(at most 4 a minute\)/);
  // A right guess must not show: once over budget, the address is refused before its token is looked up.
  assertRefused(await me(carol.token), /from 127\.0\.0\.1/);
  // Another address is another client.
  assert.is((await me(carol.token, "127.0.0.2")).status, 200);
  assert.is((await me(wrongToken(), "127.0.0.2")).status, 401);
});

test("requests that need no token (the OpenAPI document, unknown paths) are counted per address", async ({ fx }) => {
  const api = await fx.another({ rateLimits: { perToken: 100, perIp: 3 } });
  assert.is((await rawRequest(`${api.url}/api/v2/openapi.json`)).status, 200);
  assert.is((await rawRequest(`${api.url}/api/v2/openapi.json`)).status, 200);
  assert.is((await rawRequest(`${api.url}/nothing-here`)).status, 404);
  assertRefused(await rawRequest(`${api.url}/api/v2/openapi.json`), /from 127\.0\.0\.1/);
});

test("without a trusted proxy, X-Forwarded-For is ignored: a client cannot pick the address it is counted under", async ({ fx }) => {
  const api = await fx.another({ rateLimits: { perToken: 100, perIp: 2 } });
  const claiming = (address: string) => rawRequest(`${api.url}/api/v2/me`, { token: wrongToken(), headers: { "x-forwarded-for": address } });
  assert.is((await claiming("203.0.113.1")).status, 401);
  assert.is((await claiming("203.0.113.2")).status, 401);
  assertRefused(await claiming("203.0.113.3"), /from 127\.0\.0\.1 /);
});

test("a node that sees X-Forwarded-For without a trusted proxy says so in its log, once", async ({ fx }) => {
  const lines: string[] = [];
  const destination = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      lines.push(chunk.toString());
      done();
    },
  });
  const api = await fx.another({}, { logger: createLogger({ level: "warn", destination }) });
  for (const client of ["203.0.113.1", "203.0.113.2"]) await rawRequest(`${api.url}/api/v2/openapi.json`, { headers: { "x-forwarded-for": client } });
  await rawRequest(`${api.url}/api/v2/openapi.json`);
  const warnings = lines.filter((line) => line.includes("X-Forwarded-For"));
  assert.is(warnings.length, 1, lines.join(""));
  assert.match(warnings[0] ?? "", /CALIOPEN_HTTP_TRUST_PROXY is off/);
  assert.match(warnings[0] ?? "", /"from":"127\.0\.0\.1"/);
});

test("with a trusted proxy, each forwarded client has its own budget; X-Forwarded-For from any other address is ignored", async ({ fx }) => {
  const api = await fx.another({ rateLimits: { perToken: 100, perIp: 2 }, trustedProxies: ["127.0.0.1"] });
  const via = (localAddress: string, client: string) =>
    rawRequest(`${api.url}/api/v2/me`, { token: wrongToken(), localAddress, headers: { "x-forwarded-for": client } });

  assert.is((await via("127.0.0.1", "203.0.113.1")).status, 401);
  assert.is((await via("127.0.0.1", "203.0.113.1")).status, 401);
  assertRefused(await via("127.0.0.1", "203.0.113.1"), /from 203\.0\.113\.1 /);
  assert.is((await via("127.0.0.1", "203.0.113.2")).status, 401, "another client behind the proxy");

  // Not the proxy: its header names nobody, it is counted under its own address.
  assert.is((await via("127.0.0.3", "203.0.113.7")).status, 401);
  assert.is((await via("127.0.0.3", "203.0.113.8")).status, 401);
  assertRefused(await via("127.0.0.3", "203.0.113.9"), /from 127\.0\.0\.3 /);
});

test.run();
