// CORS: without CALIOPEN_HTTP_CORS no answer carries a CORS header, whatever the Origin; with it, only
// the listed origins get them, preflights from those are answered without a token, and refusals (401,
// 429) carry them too, so the page can read why.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { RunningApi } from "../../api/server.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";
import { rawRequest } from "../helpers/http-request.ts";

const test = suite<{ fx: ApiFixture; open: RunningApi }>("API: CORS");

const APP = "https://app.example.org";
const OTHER = "https://evil.example.net";

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  ctx.open = await ctx.fx.another({ corsOrigins: [APP, "http://localhost:3000"], rateLimits: { perToken: 2, perIp: 100 } });
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

const corsHeaders = (headers: Record<string, unknown>) => Object.keys(headers).filter((name) => name.startsWith("access-control-"));
const preflight = (url: string, origin: string, method = "PATCH") =>
  rawRequest(`${url}/api/v2/contacts/00000000-0000-0000-0000-000000000000`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": method, "access-control-request-headers": "authorization,content-type" },
  });

test("off by default: no CORS header on answers or refusals, and no preflight is answered", async ({ fx }) => {
  const alice = await fx.user("alice");
  const answer = await rawRequest(`${fx.api.url}/api/v2/me`, { token: alice.token, headers: { origin: APP } });
  assert.is(answer.status, 200);
  assert.equal(corsHeaders(answer.headers), []);
  const refused = await rawRequest(`${fx.api.url}/api/v2/me`, { headers: { origin: APP } });
  assert.is(refused.status, 401);
  assert.equal(corsHeaders(refused.headers), []);
  const asked = await preflight(fx.api.url, APP);
  assert.not.ok(asked.status >= 200 && asked.status < 300, `preflight refused (${asked.status})`);
  assert.equal(corsHeaders(asked.headers), []);
});

test("a listed origin's preflight is answered without a token: the API's methods and headers", async ({ open }) => {
  const asked = await preflight(open.url, APP);
  assert.is(asked.status, 204);
  assert.is(asked.headers["access-control-allow-origin"], APP);
  assert.match(String(asked.headers["access-control-allow-methods"]), /PATCH/);
  assert.match(String(asked.headers["access-control-allow-methods"]), /DELETE/);
  assert.match(String(asked.headers["access-control-allow-headers"]), /authorization/);
  assert.match(String(asked.headers.vary), /Origin/i);
  assert.is((await preflight(open.url, "http://localhost:3000")).headers["access-control-allow-origin"], "http://localhost:3000");
});

test("another origin gets no CORS header, and its preflight is not answered", async ({ fx, open }) => {
  const asked = await preflight(open.url, OTHER);
  assert.not.ok(asked.status >= 200 && asked.status < 300, `preflight refused (${asked.status})`);
  assert.equal(corsHeaders(asked.headers), []);
  // Near misses are other origins too.
  for (const origin of [`${APP}:8443`, "http://app.example.org", `${APP}.evil.example.net`, "null"]) {
    assert.equal(corsHeaders((await preflight(open.url, origin)).headers), [], origin);
  }
  const bob = await fx.user("bob");
  const answer = await rawRequest(`${open.url}/api/v2/me`, { token: bob.token, headers: { origin: OTHER } });
  assert.is(answer.status, 200, "served: it is the browser that withholds the answer from the page");
  assert.equal(corsHeaders(answer.headers), []);
});

test("a listed origin's answers and refusals carry CORS headers; Retry-After is readable", async ({ fx, open }) => {
  const carol = await fx.user("carol");
  const me = () => rawRequest(`${open.url}/api/v2/me`, { token: carol.token, headers: { origin: APP } });
  const answer = await me();
  assert.is(answer.status, 200);
  assert.is(answer.headers["access-control-allow-origin"], APP);
  assert.match(String(answer.headers["access-control-expose-headers"]), /retry-after/);
  const unauthenticated = await rawRequest(`${open.url}/api/v2/me`, { headers: { origin: APP } });
  assert.is(unauthenticated.status, 401);
  assert.is(unauthenticated.headers["access-control-allow-origin"], APP);
  await me();
  const limited = await me();
  assert.is(limited.status, 429);
  assert.is(limited.headers["access-control-allow-origin"], APP);
  assert.type(limited.headers["retry-after"], "string");
});

test.run();
