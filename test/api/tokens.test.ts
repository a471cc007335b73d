// Bearer tokens at the API: two API nodes on one NATS refuse a token the moment the CLI revokes it (or
// disables its user), expired tokens are refused, tokens made before tokens had ids keep working, and
// last use is recorded without a write per request.

import { randomBytes } from "node:crypto";
import { Kvm } from "@nats-io/kv";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { hashed } from "../../actors/store/lookups.ts";
import { openStore } from "../../actors/store/store.ts";
import { OrderEmitter } from "../../api/order-emitter.ts";
import { type RunningApi, startApi } from "../../api/server.ts";
import { silentLogger } from "../../runtime/logger.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { callApi } from "../helpers/api-client.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";
import { startCli } from "../helpers/cli-process.ts";

const test = suite<{ fx: ApiFixture; other: RunningApi; closeOther: () => Promise<void> }>("API: tokens");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  // A second node's API: its own connection and store over the same buckets.
  const nc = await ctx.fx.nats.connect();
  const subjects = new Subjects("");
  const emitter = new OrderEmitter(nc, subjects, silentLogger());
  ctx.other = await startApi(
    { store: await openStore({ nc, subjects, secrets: null }), emitter, logger: silentLogger(), deliverTimeoutMs: 1_000 },
    { host: "127.0.0.1", port: 0 },
  );
  ctx.closeOther = async () => {
    await ctx.other.close();
    emitter.close();
  };
});
test.after(async (ctx) => {
  await ctx.closeOther();
  await ctx.fx.stop();
});

type Ctx = { fx: ApiFixture; other: RunningApi };

/** GET /api/v2/me on both nodes. */
async function onBoth(ctx: Ctx, token: string): Promise<{ status: number; message: string }[]> {
  return Promise.all(
    [ctx.fx.api.url, ctx.other.url].map(async (url) => {
      const result = await callApi(url, token, "GET", "/api/v2/me");
      return { status: result.status, message: String(result.body?.message ?? "") };
    }),
  );
}
const statuses = async (ctx: Ctx, token: string) => (await onBoth(ctx, token)).map((answer) => answer.status);

async function cli(ctx: Ctx, ...args: string[]): Promise<string> {
  const result = await startCli(args, ctx.fx.nats.env).exited;
  assert.is(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

test("a token revoked through the CLI is refused by both nodes as soon as the command returns", async (ctx) => {
  const alice = await ctx.fx.user("alice");
  const second = await ctx.fx.store.tokens.create(alice.user_id);
  assert.equal(await statuses(ctx, alice.token), [200, 200]);
  assert.equal(await statuses(ctx, second.secret), [200, 200]);
  await cli(ctx, "users", "revoke", second.token.token_id);
  for (const answer of await onBoth(ctx, second.secret)) {
    assert.is(answer.status, 401);
    assert.is(answer.message, `token ${second.token.token_id} was revoked`);
  }
  assert.equal(await statuses(ctx, alice.token), [200, 200], "the user's other token still works");
  await cli(ctx, "users", "revoke", "alice");
  assert.equal(await statuses(ctx, alice.token), [401, 401]);
});

test("a user disabled through the CLI is refused (403) by both nodes at once, and let in again once enabled", async (ctx) => {
  const bob = await ctx.fx.user("bob");
  assert.equal(await statuses(ctx, bob.token), [200, 200]);
  await cli(ctx, "users", "disable", "bob");
  for (const answer of await onBoth(ctx, bob.token)) {
    assert.is(answer.status, 403);
    assert.match(answer.message, /user bob is disabled/);
  }
  await cli(ctx, "users", "enable", "bob");
  assert.equal(await statuses(ctx, bob.token), [200, 200]);
});

test("an expired token is refused, and says so; an unknown one is refused without echoing it", async (ctx) => {
  const carol = await ctx.fx.user("carol");
  const lapsed = await ctx.fx.store.tokens.create(carol.user_id, { lifetimeMs: 60_000, now: new Date(Date.now() - 61_000) });
  for (const answer of await onBoth(ctx, lapsed.secret)) {
    assert.is(answer.status, 401);
    assert.is(answer.message, `token ${lapsed.token.token_id} expired at ${lapsed.token.expires_at}`);
  }
  const current = await ctx.fx.store.tokens.create(carol.user_id, { lifetimeMs: 60_000 });
  assert.equal(await statuses(ctx, current.secret), [200, 200]);
  const unknown = `cal_${randomBytes(24).toString("base64url")}`;
  for (const answer of await onBoth(ctx, unknown)) {
    assert.is(answer.status, 401);
    assert.is(answer.message, "unknown token");
  }
});

test("a token made before tokens had ids keeps working, without expiry, and can be revoked", async (ctx) => {
  const dave = await ctx.fx.user("dave");
  const old = `cal_${randomBytes(24).toString("base64url")}`;
  // What `caliopen users token` stored before this change: a lookup from the secret's hash to the user.
  const lookups = await new Kvm(ctx.fx.nc).open("caliopen_lookups");
  await lookups.put(`token.${hashed(old)}`, JSON.stringify({ target: dave.user_id }));
  assert.equal(await statuses(ctx, old), [200, 200]);
  const listed = await ctx.fx.store.tokens.list(dave.user_id);
  const migrated = listed.find((token) => token.legacy);
  assert.ok(migrated, JSON.stringify(listed));
  assert.is(migrated.expires_at, null);
  await cli(ctx, "users", "revoke", migrated.token_id);
  assert.equal(await statuses(ctx, old), [401, 401]);
  assert.equal(await statuses(ctx, dave.token), [200, 200]);
});

test("last use is recorded in the background, and not written again on the next requests", async (ctx) => {
  const erin = await ctx.fx.user("erin");
  const tokens = ctx.fx.store.tokens;
  assert.is((await ctx.fx.call("GET", "/api/v2/me", erin.token)).status, 200);
  const used = await waitFor("last use recorded", async () => (await tokens.list(erin.user_id))[0]?.last_used);
  // Count what the first node asks the store to write from here on.
  let touches = 0;
  const touch = tokens.touch.bind(tokens);
  tokens.touch = async (...args) => {
    touches += 1;
    return touch(...args);
  };
  try {
    for (let i = 0; i < 5; i++) assert.is((await ctx.fx.call("GET", "/api/v2/me", erin.token)).status, 200);
  } finally {
    tokens.touch = touch;
  }
  assert.is(touches, 0, "a token used within the minute is not written again");
  assert.is((await tokens.list(erin.user_id))[0]?.last_used, used);
});

test("a failure to record last use does not fail the request", async (ctx) => {
  const gina = await ctx.fx.user("gina");
  const tokens = ctx.fx.store.tokens;
  const touch = tokens.touch.bind(tokens);
  let failed = 0;
  tokens.touch = async () => {
    failed += 1;
    throw new Error("the store is down");
  };
  try {
    assert.is((await ctx.fx.call("GET", "/api/v2/me", gina.token)).status, 200);
    assert.is(failed, 1);
  } finally {
    tokens.touch = touch;
  }
});

test.run();
