// Contacts through the HTTP API: each change is stored, then `contact_update` goes out on contactAction,
// and `discover_key` on keyAction when (and only when) the contact's addresses change. Bad input is a
// 400 naming the field and changes nothing; another user's contact is a 404.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { sleep } from "../../scripts/local-servers/wait.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";

type TestUser = { user_id: string; token: string; contact_id: string };
const test = suite<{ fx: ApiFixture; alice: TestUser; bob: TestUser }>("API: contacts");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  ctx.alice = await ctx.fx.user("alice");
  ctx.bob = await ctx.fx.user("bob");
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});
test.before.each(({ fx }) => void fx.takeWire());

const ann = {
  given_name: "Ann",
  family_name: "Lee",
  emails: [
    { address: "Ann.Lee@Example.COM", label: "work" },
    { address: "ann@home.test", type: "home" },
  ],
  identities: [{ type: "twitter", name: "@annlee" }],
};

async function createContact(fx: ApiFixture, user: TestUser, body: unknown = ann) {
  const created = await fx.call("POST", "/api/v2/contacts", user.token, body);
  assert.is(created.status, 201, JSON.stringify(created.body));
  await fx.expectWire(1);
  return created.body;
}

test("CreateContact stores the contact (addresses lower-cased, title from the names) and emits contact_update", async ({ fx, alice }) => {
  const created = await fx.call("POST", "/api/v2/contacts", alice.token, ann);
  assert.is(created.status, 201, JSON.stringify(created.body));
  const contact = created.body;
  assert.match(contact.contact_id, /^[0-9a-f-]{36}$/);
  assert.is(contact.user_id, alice.user_id);
  assert.is(contact.title, "Ann Lee");
  assert.equal(contact.emails, [
    { address: "ann.lee@example.com", label: "work", type: "other", is_primary: true },
    { address: "ann@home.test", label: "", type: "home", is_primary: false },
  ]);
  assert.equal(contact.identities, [{ type: "twitter", name: "@annlee" }]);

  const stored = await fx.store.contacts.get(alice.user_id, contact.contact_id);
  assert.equal(stored, contact, "the response is what was stored");
  assert.is((await fx.store.contacts.byAddress(alice.user_id, "ANN.LEE@example.com"))?.contact_id, contact.contact_id, "found by its address");

  assert.equal(await fx.expectWire(1), [
    { subject: "contactAction", payload: { order: "contact_update", contact_id: contact.contact_id, user_id: alice.user_id } },
  ]);
});

test("a contact with only an address is titled by it", async ({ fx, alice }) => {
  const contact = await createContact(fx, alice, { emails: [{ address: "solo@example.com" }] });
  assert.is(contact.title, "solo@example.com");
  assert.is(contact.given_name, "");
  assert.equal(contact.identities, []);
});

test("ListContacts pages the user's contacts by title (offset, limit, total); GetContact returns one", async ({ fx }) => {
  const zoe = await fx.user("zoe");
  const made: Record<string, string> = {};
  for (const title of ["Carol", "Ann", "Bea"]) made[title] = (await createContact(fx, zoe, { title })).contact_id;

  const all = await fx.call("GET", "/api/v2/contacts", zoe.token);
  assert.is(all.status, 200);
  assert.equal(
    all.body.items.map((c: { title: string }) => c.title),
    ["Ann", "Bea", "Carol", "zoe"],
    "her own card is a contact too",
  );
  assert.equal([all.body.total, all.body.offset, all.body.limit], [4, 0, 50]);

  const middle = await fx.call("GET", "/api/v2/contacts?offset=1&limit=2", zoe.token);
  assert.is(middle.status, 200, JSON.stringify(middle.body));
  assert.equal(
    middle.body.items.map((c: { title: string }) => c.title),
    ["Bea", "Carol"],
  );
  assert.equal([middle.body.total, middle.body.offset, middle.body.limit], [4, 1, 2]);
  const past = await fx.call("GET", "/api/v2/contacts?offset=10", zoe.token);
  assert.equal([past.body.items, past.body.total, past.body.next], [[], 4, null]);
  const after = await fx.call("GET", `/api/v2/contacts?limit=2&after=${middle.body.next}`, zoe.token);
  assert.equal(
    after.body.items.map((c: { title: string }) => c.title),
    ["zoe"],
    "after the middle page's next",
  );
  assert.is(after.body.next, null);
  const forged = await fx.call("GET", "/api/v2/contacts?after=bm90LWpzb24", zoe.token);
  assert.equal([forged.status, forged.body.field], [400, "after"]);

  const one = await fx.call("GET", `/api/v2/contacts/${made.Bea}`, zoe.token);
  assert.is(one.status, 200);
  assert.is(one.body.title, "Bea");
  assert.equal(one.body, await fx.store.contacts.get(zoe.user_id, made.Bea as string));
  assert.is((await fx.call("GET", "/api/v2/contacts/00000000-0000-4000-8000-000000000000", zoe.token)).status, 404);
  assert.equal(fx.takeWire(), [], "reading emits nothing");
});

test("UpdateContact with a new name only stores it and emits contact_update alone", async ({ fx, alice }) => {
  const contact = await createContact(fx, alice);
  await sleep(5);
  const patched = await fx.call("PATCH", `/api/v2/contacts/${contact.contact_id}`, alice.token, { family_name: "Lee-Smith" });
  assert.is(patched.status, 200, JSON.stringify(patched.body));
  assert.is(patched.body.family_name, "Lee-Smith");
  assert.is(patched.body.title, "Ann Lee-Smith", "the title follows the names");
  assert.equal(patched.body.emails, contact.emails, "addresses kept");
  assert.ok(patched.body.date_update > contact.date_update);
  assert.equal(await fx.store.contacts.get(alice.user_id, contact.contact_id), patched.body);
  assert.equal(await fx.expectWire(1), [
    { subject: "contactAction", payload: { order: "contact_update", contact_id: contact.contact_id, user_id: alice.user_id } },
  ]);
});

test("UpdateContact that keeps the same addresses (case, labels) does not ask for key discovery", async ({ fx, alice }) => {
  const contact = await createContact(fx, alice);
  const patched = await fx.call("PATCH", `/api/v2/contacts/${contact.contact_id}`, alice.token, {
    emails: [
      { address: "ANN.LEE@example.com", label: "office" },
      { address: "ann@home.test", type: "home" },
    ],
    identities: [{ type: "twitter", name: "@annlee" }],
  });
  assert.is(patched.status, 200, JSON.stringify(patched.body));
  assert.is(patched.body.emails[0].label, "office");
  assert.equal(
    (await fx.expectWire(1)).map((order) => order.payload.order),
    ["contact_update"],
  );
});

test("UpdateContact with a new email address emits contact_update and discover_key", async ({ fx, alice }) => {
  const contact = await createContact(fx, alice, { ...ann, emails: [{ address: "moving@old.example" }] });
  assert.is((await fx.store.contacts.byAddress(alice.user_id, "moving@old.example"))?.contact_id, contact.contact_id);
  const patched = await fx.call("PATCH", `/api/v2/contacts/${contact.contact_id}`, alice.token, { emails: [{ address: "Moving@New.example" }] });
  assert.is(patched.status, 200, JSON.stringify(patched.body));
  assert.equal(patched.body.emails, [{ address: "moving@new.example", label: "", type: "other", is_primary: true }]);
  assert.equal(patched.body.identities, contact.identities, "identities kept");
  const stored = await fx.store.contacts.get(alice.user_id, contact.contact_id);
  assert.equal(
    stored?.emails.map((e) => e.address),
    ["moving@new.example"],
  );
  assert.is((await fx.store.contacts.byAddress(alice.user_id, "moving@new.example"))?.contact_id, contact.contact_id);
  assert.is(await fx.store.contacts.byAddress(alice.user_id, "moving@old.example"), null, "the dropped address no longer leads to it");
  const ids = { contact_id: contact.contact_id, user_id: alice.user_id };
  assert.equal(await fx.expectWire(2), [
    { subject: "contactAction", payload: { order: "contact_update", ...ids } },
    { subject: "keyAction", payload: { order: "discover_key", ...ids } },
  ]);
});

test("UpdateContact with a new social identity also asks for key discovery", async ({ fx, alice }) => {
  const contact = await createContact(fx, alice);
  const patched = await fx.call("PATCH", `/api/v2/contacts/${contact.contact_id}`, alice.token, { identities: [{ type: "twitter", name: "@ann_lee" }] });
  assert.is(patched.status, 200, JSON.stringify(patched.body));
  const wire = await fx.expectWire(2);
  assert.equal(
    wire.map((order) => [order.subject, order.payload.order]),
    [
      ["contactAction", "contact_update"],
      ["keyAction", "discover_key"],
    ],
  );
});

test("UpdateContact keeps a title the user chose when other fields change", async ({ fx, alice }) => {
  const contact = await createContact(fx, alice, { title: "The Boss", given_name: "Ann" });
  assert.is(contact.title, "The Boss");
  const patched = await fx.call("PATCH", `/api/v2/contacts/${contact.contact_id}`, alice.token, {
    family_name: "Lee",
    emails: [{ address: "boss@example.com" }],
  });
  assert.is(patched.status, 200, JSON.stringify(patched.body));
  assert.is(patched.body.title, "The Boss");
  assert.is((await fx.store.contacts.get(alice.user_id, contact.contact_id))?.title, "The Boss");
  const retitled = await fx.call("PATCH", `/api/v2/contacts/${contact.contact_id}`, alice.token, { title: "Annie" });
  assert.is(retitled.body.title, "Annie");
  const untitled = await fx.call("PATCH", `/api/v2/contacts/${contact.contact_id}`, alice.token, { title: "" });
  assert.is(untitled.body.title, "Ann Lee", "an empty title is made from the names again, as at creation");
  const renamed = await fx.call("PATCH", `/api/v2/contacts/${contact.contact_id}`, alice.token, { given_name: "Anna" });
  assert.is(renamed.body.title, "Anna Lee");
  assert.is((await fx.store.contacts.get(alice.user_id, contact.contact_id))?.title, "Anna Lee");
});

test("launchKeyDiscovery is a 202 that emits discover_key", async ({ fx, alice }) => {
  const contact = await createContact(fx, alice);
  const launched = await fx.call("POST", `/api/v2/contacts/${contact.contact_id}/publickeys/discover`, alice.token);
  assert.is(launched.status, 202, JSON.stringify(launched.body));
  assert.type(launched.body.message, "string");
  assert.equal(await fx.expectWire(1), [{ subject: "keyAction", payload: { order: "discover_key", contact_id: contact.contact_id, user_id: alice.user_id } }]);
  const unknown = await fx.call("POST", "/api/v2/contacts/00000000-0000-4000-8000-000000000000/publickeys/discover", alice.token);
  assert.is(unknown.status, 404);
  assert.equal(fx.takeWire(), []);
});

test("another user gets 404 for every contact route and changes nothing", async ({ fx, alice, bob }) => {
  const contact = await createContact(fx, alice);
  const path = `/api/v2/contacts/${contact.contact_id}`;
  assert.is((await fx.call("GET", path, bob.token)).status, 404);
  assert.is((await fx.call("PATCH", path, bob.token, { given_name: "Mine" })).status, 404);
  assert.is((await fx.call("POST", `${path}/publickeys/discover`, bob.token)).status, 404);
  const bobs = await fx.call("GET", "/api/v2/contacts", bob.token);
  assert.equal(
    bobs.body.items.map((c: { contact_id: string }) => c.contact_id),
    [bob.contact_id],
    "bob sees only his own card",
  );
  assert.equal(await fx.store.contacts.get(alice.user_id, contact.contact_id), contact);
  assert.equal(fx.takeWire(), []);
});

const badCreations: [string, unknown, string][] = [
  ["an empty body", {}, "body"],
  ["an array for a body", [ann], "body"],
  ["an email without @", { emails: [{ address: "ann.example.com" }] }, "emails.0.address"],
  ["an email with a space", { emails: [{ address: "ann lee@example.com" }] }, "emails.0.address"],
  ["an email without an address", { emails: [{ label: "work" }] }, "emails.0.address"],
  ["an unknown field in an email", { emails: [{ address: "a@b.c", colour: "blue" }] }, "emails.0.colour"],
  ["an unknown field", { ...ann, colour: "blue" }, "colour"],
  ["a name that is not a string", { given_name: 42 }, "given_name"],
  ["emails that are not a list", { emails: "ann@example.com" }, "emails"],
  ["is_primary that is not a boolean", { emails: [{ address: "a@b.c", is_primary: "yes" }] }, "emails.0.is_primary"],
  ["a social identity without a name", { identities: [{ type: "twitter" }] }, "identities.0.name"],
  ["a social identity with an empty type", { identities: [{ type: "", name: "@x" }] }, "identities.0.type"],
  ["a server-owned field", { contact_id: "00000000-0000-4000-8000-000000000000", given_name: "X" }, "contact_id"],
];

for (const [what, body, field] of badCreations) {
  test(`CreateContact with ${what} is a 400 naming ${field}; nothing is stored or emitted`, async ({ fx, alice }) => {
    const before = (await fx.store.contacts.list(alice.user_id)).total;
    const response = await fx.call("POST", "/api/v2/contacts", alice.token, body);
    assert.is(response.status, 400, JSON.stringify(response.body));
    assert.is(response.body.field, field, JSON.stringify(response.body));
    assert.is(response.body.error, "bad_request");
    assert.type(response.body.message, "string");
    assert.is((await fx.store.contacts.list(alice.user_id)).total, before);
    assert.equal(fx.takeWire(), []);
  });
}

test("UpdateContact, GetContact, launchKeyDiscovery and ListContacts with bad input are 400s that change nothing", async ({ fx, alice }) => {
  const contact = await createContact(fx, alice);
  const path = `/api/v2/contacts/${contact.contact_id}`;
  const cases: [string, string, unknown, string][] = [
    ["PATCH", path, {}, "body"],
    ["PATCH", path, { emails: [{ address: "no-at-sign" }] }, "emails.0.address"],
    ["PATCH", path, { family_name: null }, "family_name"],
    ["PATCH", path, { identities: [{ type: "twitter", name: "@x", extra: 1 }] }, "identities.0.extra"],
    ["PATCH", path, { user_id: "someone-else" }, "user_id"],
    ["PATCH", "/api/v2/contacts/not-a-uuid", { given_name: "x" }, "contact_id"],
    ["GET", "/api/v2/contacts/not-a-uuid", undefined, "contact_id"],
    ["POST", "/api/v2/contacts/not-a-uuid/publickeys/discover", undefined, "contact_id"],
    ["GET", "/api/v2/contacts?limit=0", undefined, "limit"],
    ["GET", "/api/v2/contacts?limit=many", undefined, "limit"],
    ["GET", "/api/v2/contacts?offset=-1", undefined, "offset"],
    ["GET", "/api/v2/contacts?sort=title", undefined, "sort"],
  ];
  for (const [method, target, body, field] of cases) {
    const response = await fx.call(method, target, alice.token, body);
    assert.is(response.status, 400, `${method} ${target} ${JSON.stringify(body)}: ${JSON.stringify(response.body)}`);
    assert.is(response.body.field, field, `${method} ${target} ${JSON.stringify(body)}: ${JSON.stringify(response.body)}`);
  }
  const malformed = await fx.call("PATCH", path, alice.token, "{not json");
  assert.is(malformed.status, 400);
  assert.equal(await fx.store.contacts.get(alice.user_id, contact.contact_id), contact, "unchanged");
  assert.equal(fx.takeWire(), []);
});

test("without a valid bearer token the contact routes are 401s", async ({ fx, alice }) => {
  assert.is((await fx.call("GET", "/api/v2/contacts", null)).status, 401);
  assert.is((await fx.call("POST", "/api/v2/contacts", "cal_not-a-token", ann)).status, 401);
  assert.is((await fx.call("PATCH", `/api/v2/contacts/${alice.contact_id}`, null, { given_name: "x" })).status, 401);
  assert.equal(fx.takeWire(), []);
});

test.run();
