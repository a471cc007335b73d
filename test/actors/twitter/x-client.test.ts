// The X API client against the local fake (test/helpers/fake-x-api.ts): paging, ids beyond 2^53, both
// kinds of credentials, typed errors.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { InvalidCredentials, RateLimited, XApiError, XClient } from "../../../actors/twitter/x-client.ts";
import { type FakeUser, type FakeXApi, startFakeXApi } from "../../helpers/fake-x-api.ts";

interface Context {
  x: FakeXApi;
  alice: FakeUser;
  bob: FakeUser;
  carol: FakeUser;
}

const test = suite<Context>("X client");

test.before(async (ctx) => {
  ctx.x = await startFakeXApi();
  ctx.alice = ctx.x.addUser("Alice_W", "Alice W.");
  ctx.bob = ctx.x.addUser("bob", "Bob");
  ctx.carol = ctx.x.addUser("carol", "Carol");
  ctx.x.grant(ctx.alice, { bearer: "alice-bearer", oauth1: { token: "alice-token", secret: "alice-secret" } });
  ctx.x.grant(ctx.carol, { bearer: "carol-bearer" });
});
test.after(async (ctx) => {
  await ctx.x.close();
});

const bearer = (ctx: Context, token = "alice-bearer") => XClient.fromCredentials({ access_token: token }, { baseUrl: ctx.x.url });
const oauth1 = (ctx: Context, secret = "alice-secret") =>
  XClient.fromCredentials({ token: "alice-token", secret }, { baseUrl: ctx.x.url, appKey: ctx.x.appKey, appSecret: ctx.x.appSecret });

const dmRequests = (ctx: Context) => ctx.x.requests.filter((r) => r.path === "/2/dm_events");

test("both kinds of credentials are accepted: an OAuth 1.0a signature and an OAuth 2 bearer token", async (ctx) => {
  const signed = await oauth1(ctx).me();
  assert.equal(signed, { id: ctx.alice.id, username: "Alice_W", name: "Alice W." });
  assert.is(ctx.x.requests.at(-1)?.auth, "oauth1");
  assert.equal(await bearer(ctx).me(), signed);
  assert.is(ctx.x.requests.at(-1)?.auth, "bearer");
  // A signature made with the wrong secret is refused by the fake: it really checks it.
  try {
    await oauth1(ctx, "not-the-secret").me();
    assert.unreachable("a wrong signature must be refused");
  } catch (err) {
    assert.instance(err, InvalidCredentials);
  }
});

test("DM events newer than the last seen id: three pages read, stopping at the last seen id, oldest first", async (ctx) => {
  const before = dmRequests(ctx).length;
  const sent = [];
  for (let n = 0; n < 25; n++) sent.push(n % 2 === 0 ? ctx.x.dm(ctx.bob, ctx.carol, `b${n}`) : ctx.x.dm(ctx.carol, ctx.bob, `c${n}`));
  const client = bearer(ctx, "carol-bearer");
  const lastSeen = sent[4]!.id;
  const result = await client.dmEventsSince(lastSeen, { pageSize: 10 });
  assert.equal(
    result.events.map((e) => e.text),
    sent.slice(5).map((e) => e.text),
  );
  assert.is(result.pages, 3);
  assert.ok(result.complete);
  const requests = dmRequests(ctx).slice(before);
  assert.is(requests.length, 3);
  assert.is(requests[0]?.query.pagination_token, undefined);
  assert.ok(requests[1]?.query.pagination_token && requests[2]?.query.pagination_token);
  assert.is(requests[0]?.query.event_types, "MessageCreate");
  assert.is(requests[0]?.query["dm_event.fields"], "id,text,created_at,sender_id,dm_conversation_id,participant_ids,attachments");
  assert.is(requests[0]?.query.max_results, "10");
  const first = result.events[0]!;
  assert.equal(Object.keys(first).sort(), ["created_at", "dm_conversation_id", "event_type", "id", "sender_id", "text"]);
  assert.equal(result.users.get(ctx.bob.id), { id: ctx.bob.id, username: "bob", name: "Bob" });

  // Nothing newer: one page, nothing returned.
  const none = await client.dmEventsSince(sent.at(-1)!.id, { pageSize: 10 });
  assert.equal(none.events, []);
  assert.is(none.pages, 1);
  // A first sync (no last seen id) reads every page.
  const all = await client.dmEventsSince(null, { pageSize: 10 });
  assert.is(all.events.length, 25);
  assert.is(all.pages, 3);
  // The page limit stops paging and says so.
  const cut = await client.dmEventsSince(sent[0]!.id, { pageSize: 5, maxPages: 2 });
  assert.is(cut.events.length, 10);
  assert.not.ok(cut.complete);
});

test("ids beyond 2^53 and of different lengths are compared as big integers", async (_ctx) => {
  const x = await startFakeXApi();
  try {
    const dan = x.addUser("dan");
    const eve = x.addUser("eve");
    x.grant(dan, { bearer: "dan" });
    // 2^53 + 1 and 2^53 are the same Number; "999…" sorts after "1000…" as a string.
    x.dm(eve, dan, "a", { id: "999999999999999999" });
    x.dm(eve, dan, "b", { id: "9007199254740992" });
    x.dm(eve, dan, "c", { id: "9007199254740993" });
    x.dm(eve, dan, "d", { id: "1000000000000000000" });
    const client = XClient.fromCredentials({ access_token: "dan" }, { baseUrl: x.url });
    const newer = await client.dmEventsSince("9007199254740992", { pageSize: 2 });
    assert.equal(
      newer.events.map((e) => e.id),
      ["9007199254740993", "999999999999999999", "1000000000000000000"],
    );
    const newest = await client.dmEventsSince("999999999999999999", { pageSize: 1 });
    assert.equal(
      newest.events.map((e) => e.text),
      ["d"],
    );
    assert.is(newest.pages, 2, "stops on the page that holds the last seen id");
  } finally {
    await x.close();
  }
});

test("users by username; sending a DM", async (ctx) => {
  const client = bearer(ctx);
  assert.equal(await client.userByUsername("@Bob"), { id: ctx.bob.id, username: "bob", name: "Bob" });
  assert.equal(await client.userById(ctx.bob.id), { id: ctx.bob.id, username: "bob", name: "Bob" });
  try {
    await client.userByUsername("nobody_here");
    assert.unreachable();
  } catch (err) {
    assert.instance(err, XApiError);
    assert.is((err as XApiError).status, 404);
    assert.match((err as Error).message, /Could not find user with username/);
  }
  const sent = await client.sendDm(ctx.bob.id, "hello bob");
  const posted = ctx.x.sent.at(-1);
  assert.equal(sent, { dm_event_id: posted?.id, dm_conversation_id: posted?.dm_conversation_id });
  assert.is(posted?.text, "hello bob");
  assert.is(posted?.sender_id, ctx.alice.id);
  assert.is(ctx.x.requests.at(-1)?.path, `/2/dm_conversations/with/${ctx.bob.id}/messages`);
  // Signed with OAuth 1.0a too (JSON body, not in the signature).
  await oauth1(ctx).sendDm(ctx.bob.id, "signed hello");
  assert.is(ctx.x.sent.at(-1)?.text, "signed hello");
});

test("errors are typed: 429 with its reset time, 401, others with the API's message", async (ctx) => {
  const reset = new Date(Math.floor(Date.now() / 1000) * 1000 + 90_000);
  ctx.x.rateLimit(reset, 1, "/2/dm_events");
  try {
    await bearer(ctx).dmEventsSince(null);
    assert.unreachable();
  } catch (err) {
    assert.instance(err, RateLimited);
    assert.is((err as RateLimited).resetAt.getTime(), reset.getTime());
  }
  try {
    await bearer(ctx, "wrong").me();
    assert.unreachable();
  } catch (err) {
    assert.instance(err, InvalidCredentials);
    assert.match((err as Error).message, /Unauthorized/);
  }
  try {
    await bearer(ctx).sendDm("123", "to nobody");
    assert.unreachable();
  } catch (err) {
    assert.instance(err, XApiError);
    assert.not.instance(err, InvalidCredentials);
    assert.is((err as XApiError).status, 400);
    assert.match((err as Error).message, /participant 123 does not exist/);
  }
  const closed = XClient.fromCredentials({ access_token: "x" }, { baseUrl: "http://127.0.0.1:1" });
  try {
    await closed.me();
    assert.unreachable();
  } catch (err) {
    assert.instance(err, XApiError);
    assert.is((err as XApiError).status, null);
  }
});

test("credentials that cannot work are refused before any request", () => {
  assert.throws(
    () => XClient.fromCredentials(null),
    (err: unknown) => err instanceof InvalidCredentials,
  );
  assert.throws(
    () => XClient.fromCredentials({ username: "u", password: "p" }),
    (err: unknown) => err instanceof InvalidCredentials,
  );
  assert.throws(
    () => XClient.fromCredentials({ token: "t", secret: "s" }),
    (err: unknown) => err instanceof XApiError && !(err instanceof InvalidCredentials) && /consumer key/.test((err as Error).message),
  );
});

test.run();
