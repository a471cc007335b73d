// Discussions over the API: the user's own, newest activity first, with their last message, its
// participants and the counts; one discussion's messages; paged by cursor; someone else's discussion is
// an empty page; a bad cursor or id is a 400.
import { randomUUID } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { newMessage } from "../actors/store/fixture.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";

type TestUser = { user_id: string; token: string };
const test = suite<{ fx: ApiFixture; alice: TestUser; bob: TestUser }>("API: discussions");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  ctx.alice = await ctx.fx.user("alice", { email: "alice@caliopen.test" });
  ctx.bob = await ctx.fx.user("bob", { email: "bob@caliopen.test" });
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

const at = (minute: number) => new Date(Date.UTC(2026, 10, 2, 9, minute)).toISOString();
const from = (address: string) => [{ type: "From" as const, address, label: "", protocol: "email", contact_ids: [] }];

test("the user's discussions, newest activity first, with the last message, its participants and the counts; a discussion's messages", async ({
  fx,
  alice,
  bob,
}) => {
  const project = randomUUID();
  const friend = randomUUID();
  for (const [discussion, minute, unread, sender] of [
    [project, 1, false, "carol@example.org"],
    [friend, 2, true, "dan@example.org"],
    [project, 3, true, "erin@example.org"],
  ] as const) {
    await fx.store.messages.create(
      newMessage(alice.user_id, { discussion_id: discussion, date: at(minute), is_unread: unread, subject: `at ${minute}`, participants: from(sender) }),
    );
  }
  const listed = await fx.call("GET", "/api/v2/discussions", alice.token);
  assert.is(listed.status, 200, JSON.stringify(listed.body));
  assert.equal(
    listed.body.items.map((d: Record<string, unknown>) => [
      d.discussion_id,
      (d.last_message as { subject: string }).subject,
      d.total_count,
      d.unread_count,
      d.date,
    ]),
    [
      [project, "at 3", 2, 1, at(3)],
      [friend, "at 2", 1, 1, at(2)],
    ],
  );
  assert.equal(
    listed.body.items[0].participants.map((p: { address: string }) => p.address),
    ["erin@example.org"],
  );
  assert.is(listed.body.total, 2);

  const page = await fx.call("GET", "/api/v2/discussions?limit=1", alice.token);
  const next = await fx.call("GET", `/api/v2/discussions?limit=1&after=${page.body.next}`, alice.token);
  assert.equal([page.body.items[0].discussion_id, next.body.items[0].discussion_id, next.body.next], [project, friend, null]);

  const messages = await fx.call("GET", `/api/v2/discussions/${project}/messages`, alice.token);
  assert.is(messages.status, 200);
  assert.equal(
    messages.body.items.map((m: { subject: string }) => m.subject),
    ["at 3", "at 1"],
  );
  assert.equal((await fx.call("GET", "/api/v2/discussions", bob.token)).body.items, [], "bob has none");
  assert.equal((await fx.call("GET", `/api/v2/discussions/${project}/messages`, bob.token)).body.items, [], "alice's is not bob's");
});

test("a bad cursor or discussion id is a 400", async ({ fx, alice }) => {
  assert.is((await fx.call("GET", "/api/v2/discussions?after=not-a-cursor", alice.token)).status, 400);
  assert.is((await fx.call("GET", "/api/v2/discussions/a.b*c/messages", alice.token)).status, 400);
  assert.is((await fx.call("GET", "/api/v2/discussions?limit=100000", alice.token)).status, 400);
});

test.run();
