// The dashboard's sync progress against a real Dovecot: an IMAP account's worker syncs, and the
// dashboard shows its run (done, how many messages) and its state, read from the worker's context on
// the node that runs it; the account's password is in nothing it sends.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { Identity } from "../../actors/store/model.ts";
import { encodeJson } from "../../runtime/json.ts";
import { dovecotIdentity, PASSWORD, startTestDovecot, type TestDovecot } from "../../scripts/local-servers/dovecot.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { type DashboardNode, startDashboardNode } from "../helpers/dashboard-node.ts";
import { rawRequest } from "../helpers/http-request.ts";
import { testDestinations } from "../helpers/test-node.ts";

const test = suite<{ fx: DashboardNode; dovecot: TestDovecot; identity: Identity }>("API: dashboard sync progress");
const LOGIN = "box1";

test.before(async (ctx) => {
  ctx.dovecot = await startTestDovecot();
  ctx.fx = await startDashboardNode("dashboard-sync", {}, { destinations: testDestinations([`${ctx.dovecot.server}+cleartext`]) });
  await ctx.dovecot.addUser(LOGIN, PASSWORD);
  ctx.identity = await dovecotIdentity(ctx.fx.store, ctx.fx.user.user_id, ctx.dovecot, LOGIN);
});
test.after(async (ctx) => {
  await ctx.fx.stop();
  await ctx.dovecot.stop();
});

const mail = (n: number) =>
  `From: Sender <sender@elsewhere.test>\r\nTo: ${LOGIN}@remote.test\r\nSubject: message ${n}\r\nMessage-ID: <dash${n}-${Date.now()}@elsewhere.test>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\nbody ${n}\r\n`;

test("an account's sync shows with its progress and last run, without its password", async ({ fx, dovecot, identity }) => {
  for (let n = 1; n <= 3; n++) await dovecot.append(LOGIN, PASSWORD, mail(n));
  const order = (o: string) => encodeJson({ order: o, remote_id: identity.identity_id, user_id: identity.user_id });
  fx.nc.publish("imap_worker", order("add_worker"));
  fx.nc.publish("IMAPfetcher", order("sync"));
  const account = await waitFor(
    "the run that imported 3 messages on the dashboard",
    async () => {
      const answer = await rawRequest(`${fx.url}/dashboard/api/sync`, { token: fx.admin.token });
      const found = answer.body.accounts?.find((a: { identity_id: string }) => a.identity_id === identity.identity_id);
      const run = found?.runs?.find((r: { outcome: string; done: number }) => r.outcome === "done" && r.done === 3);
      return run === undefined ? null : { found, run, text: JSON.stringify(answer.body) };
    },
    15_000,
  );
  assert.is(account.found.node, fx.nodeId);
  assert.is(account.found.user_id, identity.user_id);
  assert.is(account.run.total, 3);
  assert.is(account.run.mode, "sync");
  assert.ok(account.found.progress !== null, "the run in progress, or the last one");
  assert.ok(account.found.last_run !== null);
  assert.ok(account.found.last_sync !== null);
  assert.not.ok(account.text.includes(PASSWORD), "the password is nowhere in the answer");
  const inspected = await rawRequest(`${fx.url}/dashboard/api/actor?kind=imap&key=${identity.identity_id}`, { token: fx.admin.token });
  assert.is(inspected.status, 200);
  assert.not.ok(JSON.stringify(inspected.body).includes(PASSWORD));
});

test.run();
