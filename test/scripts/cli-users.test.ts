// `caliopen users`: API users and their bearer tokens, made by an operator and accepted by the API of a
// running node.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { startCli } from "../helpers/cli-process.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

const test = suite<{ nats: TestNats; node: RunningNode; apiUrl: string }>("caliopen users");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  let apiUrl = "";
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(testCaliopenConfig(), { onApiStarted: (url) => (apiUrl = url) }), {
    nodeId: "users-node",
  });
  ctx.apiUrl = apiUrl;
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.nats.stop();
});

const cli = (ctx: { nats: TestNats }, ...args: string[]) => startCli(args, ctx.nats.env).exited;

async function me(ctx: { apiUrl: string }, token: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${ctx.apiUrl}/api/v2/me`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

test("users add prints a token the API accepts, and makes the local identity", async (ctx) => {
  const added = await cli(ctx, "users", "add", "alice", "--email", "Alice@Example.org", "--recovery-email", "alice@elsewhere.net");
  assert.is(added.code, 0, added.stderr);
  const token = /token: (\S+)/.exec(added.stdout)?.[1];
  assert.ok(token, added.stdout);
  assert.match(added.stdout, /local identity alice@example\.org/);
  assert.match(added.stdout, /^token id: tok_[0-9a-f]{16}, expires: \d{4}-/m);
  const who = await me(ctx, token);
  assert.is(who.status, 200);
  assert.is(who.body.name, "alice");
  assert.is(who.body.recovery_email, "alice@elsewhere.net");
  assert.is(who.body.admin, false);
  const locals = await fetch(`${ctx.apiUrl}/api/v2/identities/locals`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await locals.json()) as { identities: { identifier: string }[] };
  assert.equal(
    body.identities.map((identity) => identity.identifier),
    ["alice@example.org"],
  );
});

test("users add --admin makes an admin; a taken name is refused", async (ctx) => {
  const added = await cli(ctx, "--json", "users", "add", "root", "--admin");
  assert.is(added.code, 0, added.stderr);
  const created = JSON.parse(added.stdout) as { token: string; admin: boolean };
  assert.is(created.admin, true);
  assert.is((await me(ctx, created.token)).body.admin, true);
  const again = await cli(ctx, "users", "add", "root");
  assert.is(again.code, 1);
  assert.match(again.stderr, /already exists/);
});

test("users token makes another token, expiring in 90 days by default; earlier ones keep working", async (ctx) => {
  const added = await cli(ctx, "--json", "users", "add", "carol");
  const first = (JSON.parse(added.stdout) as { token: string }).token;
  const before = Date.now();
  const renewed = await cli(ctx, "users", "token", "carol");
  assert.is(renewed.code, 0, renewed.stderr);
  const second = /token: (\S+)/.exec(renewed.stdout)?.[1] as string;
  assert.is.not(second, first);
  const after = Date.now();
  const expires = Date.parse(/expires: (\S+)/.exec(renewed.stdout)?.[1] ?? "") - 90 * 86_400_000;
  assert.ok(expires >= before && expires <= after, `made ${new Date(expires).toISOString()}, 90 days before its expiry, not between ${before} and ${after}`);
  assert.is((await me(ctx, first)).status, 200);
  assert.is((await me(ctx, second)).status, 200);
  const forever = JSON.parse((await cli(ctx, "--json", "users", "token", "carol", "--expires", "never")).stdout) as {
    token: string;
    expires_at: string | null;
  };
  assert.is(forever.expires_at, null);
  assert.is((await me(ctx, forever.token)).status, 200);
  const unknown = await cli(ctx, "users", "token", "nobody");
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /no user named "nobody"/);
});

test("a token made with --expires 1s is refused once it has expired, and listed as expired", async (ctx) => {
  const lasting = JSON.parse((await cli(ctx, "--json", "users", "add", "dora")).stdout) as { token: string };
  const made = await cli(ctx, "--json", "users", "token", "dora", "--expires", "1s");
  assert.is(made.code, 0, made.stderr);
  const short = JSON.parse(made.stdout) as { token: string; token_id: string; expires_at: string };
  await sleep(Math.max(0, Date.parse(short.expires_at) - Date.now()) + 50);
  const refused = await me(ctx, short.token);
  assert.is(refused.status, 401);
  assert.match(String(refused.body.message), new RegExp(`token ${short.token_id} expired at`));
  assert.is((await me(ctx, lasting.token)).status, 200, "a token with the default expiry still works");
  const listed = await cli(ctx, "users", "tokens", "dora");
  assert.match(listed.stdout, new RegExp(`^${short.token_id}\\s.*\\(expired\\)`, "m"));
});

test("users tokens lists id, created, expires, last used and revoked, never the secret", async (ctx) => {
  const created = JSON.parse((await cli(ctx, "--json", "users", "add", "emma")).stdout) as { token: string; token_id: string };
  const unused = JSON.parse((await cli(ctx, "--json", "users", "token", "emma")).stdout) as { token: string; token_id: string };
  assert.is((await me(ctx, created.token)).status, 200);
  type Listed = { token_id: string; date_insert: string; expires_at: string | null; last_used: string | null; revoked_at: string | null };
  const listing = async () => JSON.parse((await cli(ctx, "--json", "users", "tokens", "emma")).stdout) as Listed[];
  const used = await waitFor("the use recorded", async () =>
    (await listing()).find((token) => token.token_id === created.token_id && token.last_used !== null),
  );
  assert.ok(Date.parse(used.last_used ?? "") >= Date.parse(used.date_insert));
  const table = await cli(ctx, "users", "tokens", "emma");
  assert.is(table.code, 0, table.stderr);
  assert.match(table.stdout, /^TOKEN ID\s+CREATED\s+EXPIRES\s+LAST USED\s+REVOKED$/m);
  assert.match(table.stdout, new RegExp(`^${created.token_id}\\s+\\S+\\s+\\S+\\s+${used.last_used}\\s+-$`, "m"));
  assert.match(table.stdout, new RegExp(`^${unused.token_id}\\s+\\S+\\s+\\S+\\s+-\\s+-$`, "m"));
  const json = JSON.stringify(await listing());
  for (const text of [table.stdout, json]) {
    assert.not.match(text, /cal_/);
    for (const secret of [created.token, unused.token]) assert.not.ok(text.includes(secret.slice(4)), "a secret is listed");
  }
  assert.not.match(json, /hash/);
});

test("users revoke TOKEN_ID refuses that token only; users revoke NAME refuses them all", async (ctx) => {
  const first = JSON.parse((await cli(ctx, "--json", "users", "add", "fred")).stdout) as { token: string; token_id: string };
  const second = JSON.parse((await cli(ctx, "--json", "users", "token", "fred")).stdout) as { token: string; token_id: string };
  const third = JSON.parse((await cli(ctx, "--json", "users", "token", "fred", "--expires", "never")).stdout) as { token: string; token_id: string };
  const one = await cli(ctx, "users", "revoke", first.token_id);
  assert.is(one.code, 0, one.stderr);
  assert.match(one.stdout, new RegExp(`revoked ${first.token_id} \\(fred\\)`));
  const refused = await me(ctx, first.token);
  assert.is(refused.status, 401);
  assert.match(String(refused.body.message), /was revoked/);
  assert.not.ok(JSON.stringify(refused.body).includes(first.token.slice(4)), "the secret is not in the error");
  assert.is((await me(ctx, second.token)).status, 200);
  const all = await cli(ctx, "users", "revoke", "fred");
  assert.is(all.code, 0, all.stderr);
  assert.match(all.stdout, /revoked 2 tokens of fred/);
  for (const token of [first, second, third]) assert.is((await me(ctx, token.token)).status, 401);
  const listed = await cli(ctx, "users", "tokens", "fred");
  for (const token of [first, second, third]) assert.match(listed.stdout, new RegExp(`^${token.token_id}\\s.*\\s\\d{4}-\\S+$`, "m"));
  const unknownToken = await cli(ctx, "users", "revoke", "tok_0123456789abcdef");
  assert.is(unknownToken.code, 1);
  assert.match(unknownToken.stderr, /no token tok_0123456789abcdef/);
  assert.is((await cli(ctx, "users", "revoke", "nobody")).code, 1);
});

test("users disable makes the API refuse the user's tokens (403); users enable lets them in again", async (ctx) => {
  const created = JSON.parse((await cli(ctx, "--json", "users", "add", "gwen")).stdout) as { token: string };
  const disabled = await cli(ctx, "users", "disable", "gwen");
  assert.is(disabled.code, 0, disabled.stderr);
  const refused = await me(ctx, created.token);
  assert.is(refused.status, 403);
  assert.match(String(refused.body.message), /user gwen is disabled/);
  assert.match((await cli(ctx, "users", "list")).stdout, /^gwen\s+\S+\s+-\s+since \d{4}-/m);
  const enabled = await cli(ctx, "users", "enable", "gwen");
  assert.is(enabled.code, 0, enabled.stderr);
  assert.is((await me(ctx, created.token)).status, 200);
  assert.match((await cli(ctx, "users", "list")).stdout, /^gwen\s+\S+\s+-\s+-\s/m);
  assert.is((await cli(ctx, "users", "disable", "nobody")).code, 1);
});

test("users list shows every user without tokens", async (ctx) => {
  const listed = await cli(ctx, "users", "list");
  assert.is(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /^NAME\s+USER ID\s+ADMIN\s+DISABLED/m);
  for (const name of ["alice", "root", "carol"]) assert.match(listed.stdout, new RegExp(`^${name}\\s`, "m"));
  assert.not.match(listed.stdout, /cal_/);
});

test("bad command lines are usage errors (exit 2)", async (ctx) => {
  for (const args of [
    ["users"],
    ["users", "add"],
    ["users", "add", "bad name"],
    ["users", "add", "dave", "--email", "not-an-address"],
    ["users", "list", "x"],
    ["users", "token", "carol", "--admin"],
    ["users", "frobnicate"],
    ["users", "add", "tok_abc"],
    ["users", "tokens"],
    ["users", "revoke"],
    ["users", "disable", "carol", "dora"],
    ["users", "tokens", "carol", "--expires", "1d"],
    ...["10", "-1d", "1y", "0s", "soon", "99999d", ""].map((duration) => ["users", "token", "carol", "--expires", duration]),
  ]) {
    const result = await cli(ctx, ...args);
    assert.is(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
  }
  const foreign = await cli(ctx, "actors", "--recovery-email", "a@b.c");
  assert.is(foreign.code, 2);
  assert.match(foreign.stderr, /--recovery-email/);
});

test.run();
