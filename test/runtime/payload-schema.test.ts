import { test } from "uvu";
import * as assert from "uvu/assert";
import { validatePayload } from "../../runtime/payload-schema.ts";

const schema = {
  user_id: { type: "string", required: true },
  poll_intervall: { type: "decimal", required: true },
  size: { type: "number", required: false },
  urgent: { type: "boolean", required: false },
} as const;

test("accepts a valid payload and keeps unknown extra fields", () => {
  const result = validatePayload(schema, { user_id: "u", poll_intervall: "15", extra: [1] });
  assert.ok(result.ok);
  if (result.ok) assert.equal(result.value.extra, [1]);
});

test("names the missing field", () => {
  const result = validatePayload(schema, { poll_intervall: "15" });
  assert.equal(result, { ok: false, field: "user_id", message: 'missing required field "user_id" (string)' });
});

test("null counts as missing", () => {
  const result = validatePayload(schema, { user_id: null, poll_intervall: "1" });
  assert.is(result.ok ? null : result.field, "user_id");
});

test("names the mistyped field and what it got", () => {
  const result = validatePayload(schema, { user_id: 7, poll_intervall: "15" });
  assert.equal(result, { ok: false, field: "user_id", message: 'field "user_id" must be a string, got a number' });
});

test("an empty string is not an id", () => {
  const result = validatePayload(schema, { user_id: "  ", poll_intervall: "15" });
  assert.is(result.ok ? "" : result.message, 'field "user_id" must not be empty');
});

test("decimal fields are decimal numbers in strings, as poll_intervall is on the wire", () => {
  for (const good of ["15", "0.5", " 30 "]) assert.ok(validatePayload(schema, { user_id: "u", poll_intervall: good }).ok, good);
  for (const bad of [15, "fifteen", "-3", "1e3", ""]) {
    const result = validatePayload(schema, { user_id: "u", poll_intervall: bad });
    assert.is(result.ok ? null : result.field, "poll_intervall", String(bad));
  }
});

test("optional fields are checked when present", () => {
  assert.is(validatePayload(schema, { user_id: "u", poll_intervall: "1", size: "9" }).ok, false);
  assert.is(validatePayload(schema, { user_id: "u", poll_intervall: "1", urgent: "yes" }).ok, false);
  assert.is(validatePayload(schema, { user_id: "u", poll_intervall: "1", size: 9, urgent: true }).ok, true);
});

test("the payload must be an object", () => {
  for (const value of [null, [], "x", 3]) {
    const result = validatePayload(schema, value);
    assert.ok(!result.ok && result.field === null && /must be a JSON object/.test(result.message));
  }
});

const bounded = {
  user_id: { type: "string", required: true, maxLength: 8, pattern: /^[a-z0-9-]+$/, patternDescription: "lower-case letters, digits or '-'" },
  protocol: { type: "string", required: false, enum: ["imap", "twitter"] },
  minutes: { type: "decimal", required: false, maxLength: 4 },
} as const;

test("a field over its maxLength is refused by name, before its pattern is tried", () => {
  const result = validatePayload(bounded, { user_id: "x".repeat(200_000) });
  assert.equal(result, { ok: false, field: "user_id", message: 'field "user_id" is 200000 characters long, over the limit of 8' });
  const decimal = validatePayload(bounded, { user_id: "u", minutes: "12345" });
  assert.is(decimal.ok ? null : decimal.field, "minutes");
});

test("a field outside its pattern is refused by name, saying what it allows", () => {
  for (const bad of ["a*b", "a.b", ">", "A", "a b", "a\u0000", "é", "\ud800"]) {
    const result = validatePayload(bounded, { user_id: bad });
    assert.ok(!result.ok && result.field === "user_id", JSON.stringify(bad));
    if (!result.ok) assert.match(result.message, /^field "user_id" must be lower-case letters, digits or '-', got the string /);
  }
  assert.ok(validatePayload(bounded, { user_id: "u-1" }).ok);
});

test("an enum field takes only its values", () => {
  assert.ok(validatePayload(bounded, { user_id: "u", protocol: "twitter" }).ok);
  const result = validatePayload(bounded, { user_id: "u", protocol: "gopher" });
  assert.equal(result, { ok: false, field: "protocol", message: 'field "protocol" must be one of "imap", "twitter", got the string "gopher"' });
});

test.run();
