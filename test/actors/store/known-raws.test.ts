import { test } from "uvu";
import * as assert from "uvu/assert";
import { KnownRaws } from "../../../actors/store/known-raws.ts";

const bytes = (size: number) => new Uint8Array(size);

test("bytes are given once, then forgotten", () => {
  const known = new KnownRaws(10, 1000);
  known.note("a", { bytes: bytes(100), place: { kind: "inline" } });
  assert.is(known.bytesHeld, 100);
  assert.is(known.takeBytes("a")?.length, 100);
  assert.is(known.takeBytes("a"), undefined);
  assert.is(known.bytesHeld, 0);
  assert.equal(known.place("a"), { kind: "inline" }, "what else is known stays");
});

test("past the byte budget the oldest raws' bytes go first; a raw over the budget alone is not kept", () => {
  const known = new KnownRaws(10, 1000);
  for (const id of ["a", "b", "c", "d"]) known.note(id, { bytes: bytes(300), place: { kind: "inline" } });
  assert.is(known.bytesHeld, 900);
  assert.is(known.takeBytes("a"), undefined, "the oldest gave way");
  assert.ok(known.takeBytes("d"));
  known.note("huge", { bytes: bytes(1001) });
  assert.is(known.takeBytes("huge"), undefined);
  assert.is(known.bytesHeld, 600);
});

test("entries past the capacity take their bytes with them; noting a raw again counts its bytes once", () => {
  const known = new KnownRaws(2, 10_000);
  known.note("a", { bytes: bytes(100) });
  known.note("a", { bytes: bytes(200) });
  assert.is(known.bytesHeld, 200);
  known.note("b", { bytes: bytes(100) });
  known.note("c", { bytes: bytes(100) });
  assert.is(known.bytesHeld, 200, "a's went with it");
  known.forget("b");
  assert.is(known.bytesHeld, 100);
});

test.run();
