// The API as a whole: who am I (never the token), and the OpenAPI document, served without a token,
// that lists every operation of the contract's emitters.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";

const test = suite<{ fx: ApiFixture }>("API: server");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

test("GET /api/v2/me returns the user behind the token, without any token", async ({ fx }) => {
  const erin = await fx.user("erin", { email: "erin@platform.test", recovery_email: "erin@home.example" });
  const me = await fx.call("GET", "/api/v2/me", erin.token);
  assert.is(me.status, 200, JSON.stringify(me.body));
  assert.is(me.body.user_id, erin.user_id);
  assert.is(me.body.name, "erin");
  assert.is(me.body.recovery_email, "erin@home.example");
  assert.is(me.body.contact_id, erin.contact_id);
  assert.is(me.body.admin, false);
  assert.type(me.body.date_insert, "string");
  const text = JSON.stringify(me.body);
  assert.not.ok(text.includes(erin.token), "the token is not in the answer");
  assert.not.ok(text.includes(erin.token.slice(4)), "nor its secret part");
  assert.not.ok(
    Object.keys(me.body).some((key) => /token/i.test(key)),
    JSON.stringify(Object.keys(me.body)),
  );

  const root = await fx.user("root", { admin: true });
  assert.is((await fx.call("GET", "/api/v2/me", root.token)).body.admin, true);
  assert.is((await fx.call("GET", "/api/v2/me", null)).status, 401);
  assert.is((await fx.call("GET", "/api/v2/me", "cal_unknown")).status, 401);
});

const OPERATIONS = [
  "CreateUserIdentity",
  "PatchUserIdentity",
  "DeleteUserIdentity",
  "CreateContact",
  "UpdateContact",
  "launchKeyDiscovery",
  "CreatePGPPubKey",
  "DeletePubKey",
  "SendDraft",
  "SendEmailAdminToUser",
];

test("GET /api/v2/openapi.json is an OpenAPI 3 document, served without a token, listing every operation", async ({ fx }) => {
  const doc = await fx.call("GET", "/api/v2/openapi.json", null);
  assert.is(doc.status, 200, JSON.stringify(doc.body));
  assert.match(doc.body.openapi, /^3\.\d+\.\d+$/);
  assert.type(doc.body.info.title, "string");
  assert.type(doc.body.info.version, "string");
  const operations = new Map<string, { path: string; method: string }>();
  for (const [path, methods] of Object.entries(doc.body.paths as Record<string, Record<string, { operationId?: string }>>)) {
    for (const [method, operation] of Object.entries(methods)) {
      if (operation.operationId !== undefined) operations.set(operation.operationId, { path, method });
    }
  }
  for (const operationId of OPERATIONS) assert.ok(operations.has(operationId), `${operationId} is documented (found: ${[...operations.keys()].join(", ")})`);
  // Paths in OpenAPI form, on the methods they are served on.
  assert.equal(operations.get("UpdateContact"), { path: "/api/v2/contacts/{contact_id}", method: "patch" });
  assert.equal(operations.get("DeletePubKey"), { path: "/api/v2/contacts/{contact_id}/publickeys/{key_id}", method: "delete" });
  assert.equal(operations.get("SendDraft"), { path: "/api/v2/messages/{message_id}/actions", method: "post" });
  assert.equal(operations.get("SendEmailAdminToUser"), { path: "/api/v2/admin/users/{user_id}/notify", method: "post" });
  assert.not.ok("/api/v2/openapi.json" in doc.body.paths, "the document does not list itself");
  assert.equal(doc.body.components.securitySchemes.bearer, { type: "http", scheme: "bearer" });
});

test("an unknown route is a 404 in the API's error shape", async ({ fx }) => {
  const root = await fx.user("someone");
  const response = await fx.call("GET", "/api/v2/nothing-here", root.token);
  assert.is(response.status, 404);
  assert.is(response.body.error, "not_found");
  assert.type(response.body.message, "string");
});

test("a published order is stored by the intake stream before the API answers; without one it is still sent", async ({ fx }) => {
  const frank = await fx.user("frank");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const jsm = await jetstreamManager(fx.nc);
  const before = (await jsm.streams.info("caliopen_intake")).state.messages;
  assert.is((await fx.call("POST", "/api/v2/contacts", frank.token, { given_name: "Stored" })).status, 201);
  assert.is((await jsm.streams.info("caliopen_intake")).state.messages, before + 1, "in the stream when the API has answered");
  fx.takeWire();

  // No node ever ran on this NATS: no stream captures the subject; subscribers still get the order.
  const bare = await startApiFixture({ intakeStream: false });
  try {
    const gina = await bare.user("gina");
    const created = await bare.call("POST", "/api/v2/contacts", gina.token, { given_name: "Sent" });
    assert.is(created.status, 201);
    assert.equal(await bare.expectWire(1), [
      { subject: "contactAction", payload: { order: "contact_update", contact_id: created.body.contact_id, user_id: gina.user_id } },
    ]);
  } finally {
    await bare.stop();
  }
});

test.run();
