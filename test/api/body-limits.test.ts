// Body limits per route: each operation accepts the largest body its schema allows, and a body over its
// limit is a 413 in the API's error body naming the limit, with nothing stored or emitted, whether it
// says its length or streams it in chunks. A change that would make a draft too large to store is a
// 413 too, not a 500.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { BODY_LIMITS, bodyLimitOf, NO_BODY_LIMIT } from "../../api/body-limits.ts";
import { renderOpenApi } from "../../scripts/openapi-doc.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";
import { rawRequest } from "../helpers/http-request.ts";

type TestUser = { user_id: string; token: string; identity_id: string | null; contact_id: string };
const test = suite<{ fx: ApiFixture; alice: TestUser; contact: string }>("API: body limits");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  ctx.alice = await ctx.fx.user("alice", { email: "alice@platform.test" });
  const contact = await ctx.fx.call("POST", "/api/v2/contacts", ctx.alice.token, { given_name: "Ann" });
  ctx.contact = contact.body.contact_id;
  await ctx.fx.expectWire(1);
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});
test.before.each(({ fx }) => void fx.takeWire());

const KiB = 1024;
const padded = (bytes: number) => "x".repeat(bytes);

function assertTooLarge(answer: { status: number; body: { error?: string; message?: string } }, limit: string): void {
  assert.is(answer.status, 413, JSON.stringify(answer.body).slice(0, 300));
  assert.is(answer.body.error, "payload_too_large");
  assert.is(answer.body.message, `the request body is over this operation's limit of ${limit}`);
}

test("a body over its operation's limit is a 413 naming the limit; nothing is stored or emitted", async ({ fx, alice, contact }) => {
  const before = (await fx.store.contacts.list(alice.user_id)).total;
  const over = (limit: number) => padded(limit + 1);
  const cases: [string, string, unknown, string][] = [
    ["POST", "/api/v2/contacts", { given_name: over(128 * KiB) }, "128 KiB"],
    ["PATCH", `/api/v2/contacts/${contact}`, { given_name: over(128 * KiB) }, "128 KiB"],
    ["POST", "/api/v2/identities/remotes", { protocol: "imap", identifier: "a@b.c", credentials: { password: over(128 * KiB) } }, "128 KiB"],
    ["POST", `/api/v2/contacts/${contact}/publickeys`, { key: over(256 * KiB) }, "256 KiB"],
    ["POST", "/api/v2/messages", { identity_id: alice.identity_id, body_plain: over(960 * KiB) }, "960 KiB"],
    ["POST", `/api/v2/messages/${contact}/actions`, { actions: ["send"], pad: over(KiB) }, "1 KiB"],
    // Routes that take no body.
    ["POST", `/api/v2/contacts/${contact}/publickeys/discover`, { pad: over(KiB) }, "1 KiB"],
    ["DELETE", `/api/v2/contacts/${contact}/publickeys/0123456789ABCDEF`, { pad: over(KiB) }, "1 KiB"],
  ];
  for (const [method, path, body, limit] of cases) assertTooLarge(await fx.call(method, path, alice.token, body), limit);
  assert.is((await fx.store.contacts.list(alice.user_id)).total, before);
  assert.is((await fx.store.messages.list(alice.user_id)).total, 0);
  assert.equal(fx.takeWire(), []);
});

test("a body streamed in chunks, without Content-Length, is cut off at the limit too", async ({ fx, alice }) => {
  const answer = await rawRequest(`${fx.api.url}/api/v2/contacts`, {
    method: "POST",
    token: alice.token,
    body: JSON.stringify({ given_name: padded(300 * KiB) }),
    chunked: true,
  });
  assertTooLarge(answer, "128 KiB");
  assert.equal(fx.takeWire(), []);
});

test("the largest bodies the schemas allow are accepted", async ({ fx, alice }) => {
  const text = (length: number, seed = "") => (seed + "x".repeat(length)).slice(0, length);
  const contact = {
    title: text(400),
    given_name: text(200),
    family_name: text(200),
    emails: Array.from({ length: 100 }, (_, i) => ({ address: `${text(300, String(i))}@${text(19)}`, label: text(200), type: text(40), is_primary: i === 0 })),
    identities: Array.from({ length: 100 }, (_, i) => ({ type: text(40), name: text(320, String(i)) })),
  };
  const created = await fx.call("POST", "/api/v2/contacts", alice.token, contact);
  assert.is(created.status, 201, JSON.stringify(created.body).slice(0, 300));
  assert.ok(JSON.stringify(contact).length > 64 * KiB, "a contact at the schema's maxima is over 64 KiB");

  const credentials = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [i === 0 ? "access_token" : `secret${i}`, text(4096)]));
  const identity = await fx.call("POST", "/api/v2/identities/remotes", alice.token, {
    protocol: "twitter",
    identifier: text(320),
    display_name: text(200),
    credentials,
    infos: { poll_interval: "15" },
  });
  assert.is(identity.status, 201, JSON.stringify(identity.body).slice(0, 300));

  // Not a key, but not refused for its size: the key's own checks answer.
  const key = await fx.call("POST", `/api/v2/contacts/${created.body.contact_id}/publickeys`, alice.token, { key: text(200_000), label: text(200) });
  assert.is(key.status, 400, JSON.stringify(key.body).slice(0, 300));
  assert.is(key.body.field, "key");

  const draft = await fx.call("POST", "/api/v2/messages", alice.token, { identity_id: alice.identity_id, body_plain: text(900_000) });
  assert.is(draft.status, 201, JSON.stringify(draft.body).slice(0, 300));
});

test("a change that would make a draft too large to store is a 413, and the draft is left as it was", async ({ fx, alice }) => {
  const draft = await fx.call("POST", "/api/v2/messages", alice.token, { identity_id: alice.identity_id, body_plain: padded(600_000) });
  assert.is(draft.status, 201);
  const patched = await fx.call("PATCH", `/api/v2/messages/${draft.body.message_id}`, alice.token, { body_html: padded(600_000) });
  assert.is(patched.status, 413, JSON.stringify(patched.body).slice(0, 300));
  assert.is(patched.body.error, "payload_too_large");
  assert.match(patched.body.message, /too large to store/);
  const stored = await fx.call("GET", `/api/v2/messages/${draft.body.message_id}`, alice.token);
  assert.is(stored.body.body_html, draft.body.body_html);
  assert.is(stored.body.body_plain.length, 600_000);
});

test("every operation that takes a body has a limit of its own, and the document says which", async () => {
  const document = JSON.parse(await renderOpenApi()) as {
    paths: Record<string, Record<string, { operationId: string; requestBody?: unknown; responses: Record<string, { description: string }> }>>;
  };
  const withBody = Object.values(document.paths)
    .flatMap((operations) => Object.values(operations))
    .filter((operation) => operation.requestBody !== undefined);
  assert.ok(withBody.length >= 9, `${withBody.length} operations take a body`);
  for (const operation of withBody) {
    assert.type(BODY_LIMITS[operation.operationId], "number", `${operation.operationId} has a body limit`);
    assert.match(operation.responses["413"]?.description ?? "", /limit of \d+ (KiB|MiB)/, `${operation.operationId} documents its 413`);
  }
  assert.throws(
    () => bodyLimitOf({ method: "POST", url: "/api/v2/new", schema: { operationId: "New", body: { type: "object" } } }),
    /takes a body but has no limit/,
  );
  assert.is(bodyLimitOf({ method: "GET", url: "/api/v2/new", schema: { operationId: "New" } }), NO_BODY_LIMIT);
});

test.run();
