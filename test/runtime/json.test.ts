import { test } from "uvu";
import * as assert from "uvu/assert";
import { BUS_JSON_LIMITS, decodeBusJson, decodeJson, encodeJson, nestingExceeds } from "../../runtime/json.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

test("bus JSON over the size limit is refused before it is parsed, naming the limit", () => {
  const big = bytes(JSON.stringify({ user_id: "x".repeat(BUS_JSON_LIMITS.maxBytes) }));
  const result = decodeBusJson(big);
  assert.equal(result, { ok: false, error: `payload is ${big.length} bytes, over the limit of 65536 bytes` });
  assert.ok(decodeJson(big).ok, "stored documents (no limits given) may be larger");
});

test("bus JSON nested deeper than the limit is refused, naming the limit; 10,000 levels do not overflow the stack", () => {
  const deep = bytes("[".repeat(10_000) + "]".repeat(10_000));
  assert.equal(decodeBusJson(deep), { ok: false, error: "JSON nested deeper than the limit of 32 levels" });
  const unclosed = bytes(`{"a":${'{"a":'.repeat(10_000)}`);
  assert.equal(decodeBusJson(unclosed), { ok: false, error: "JSON nested deeper than the limit of 32 levels" });
  const atLimit = "[".repeat(32) + "]".repeat(32);
  assert.ok(decodeBusJson(bytes(atLimit)).ok);
});

test("brackets inside strings, and escaped quotes, do not count as nesting", () => {
  assert.not.ok(nestingExceeds(JSON.stringify({ text: `${"[".repeat(100)}\\"{{{{` }), 2));
  assert.ok(nestingExceeds('{"a":"\\\\",' + '"b":[[[]]]}', 3));
});

test("invalid JSON and empty payloads are still reported as such", () => {
  assert.match(String((decodeBusJson(bytes("{nope")) as { error: string }).error), /invalid JSON/);
  assert.match(String((decodeBusJson(bytes("  ")) as { error: string }).error), /empty payload/);
  assert.equal(decodeBusJson(bytes('{"id":"\\ud800"}')), { ok: true, value: { id: "\ud800" } });
});

test("encoding writes BigInts (imapflow's UIDVALIDITY, modseqs) as strings and still refuses a cycle", () => {
  const text = new TextDecoder().decode(encodeJson({ uidValidity: 12345678901234567890n, nested: [{ modseq: 7n }], name: "x" }));
  assert.equal(JSON.parse(text), { uidValidity: "12345678901234567890", nested: [{ modseq: "7" }], name: "x" });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.throws(() => encodeJson(cyclic), /circular/i);
});

test.run();
