// `caliopen users`: API users and their bearer tokens, made by an operator and accepted by the API of a
// running node.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { startCli } from "../helpers/cli-process.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

const test = suite<{ nats: TestNats; node: RunningNode; apiUrl: string }>("caliopen users");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  let apiUrl = "";
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(testCaliopenConfig(), { onApiStarted: (url) => (apiUrl = url) }), { nodeId: "users-node" });
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
  const who = await me(ctx, token);
  assert.is(who.status, 200);
  assert.is(who.body.name, "alice");
  assert.is(who.body.recovery_email, "alice@elsewhere.net");
  assert.is(who.body.admin, false);
  const locals = await fetch(`${ctx.apiUrl}/api/v2/identities/locals`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await locals.json()) as { identities: { identifier: string }[] };
  assert.equal(body.identities.map((identity) => identity.identifier), ["alice@example.org"]);
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

test("users token makes another token; earlier ones keep working", async (ctx) => {
  const added = await cli(ctx, "--json", "users", "add", "carol");
  const first = (JSON.parse(added.stdout) as { token: string }).token;
  const renewed = await cli(ctx, "users", "token", "carol");
  assert.is(renewed.code, 0, renewed.stderr);
  const second = /token: (\S+)/.exec(renewed.stdout)?.[1] as string;
  assert.is.not(second, first);
  assert.is((await me(ctx, first)).status, 200);
  assert.is((await me(ctx, second)).status, 200);
  const unknown = await cli(ctx, "users", "token", "nobody");
  assert.is(unknown.code, 1);
  assert.match(unknown.stderr, /no user named "nobody"/);
});

test("users list shows every user without tokens", async (ctx) => {
  const listed = await cli(ctx, "users", "list");
  assert.is(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /^NAME\s+USER ID\s+ADMIN/m);
  for (const name of ["alice", "root", "carol"]) assert.match(listed.stdout, new RegExp(`^${name}\\s`, "m"));
  assert.not.match(listed.stdout, /cal_/);
});

test("bad command lines are usage errors (exit 2)", async (ctx) => {
  for (const args of [["users"], ["users", "add"], ["users", "add", "bad name"], ["users", "add", "dave", "--email", "not-an-address"], ["users", "list", "x"], ["users", "token", "carol", "--admin"]]) {
    const result = await cli(ctx, ...args);
    assert.is(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
  }
  const foreign = await cli(ctx, "actors", "--recovery-email", "a@b.c");
  assert.is(foreign.code, 2);
  assert.match(foreign.stderr, /--recovery-email/);
});

test.run();
