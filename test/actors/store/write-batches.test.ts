// Writes to one object batched: those asked for while one runs go together in the next, by kind and in
// order; a failed batch fails its writers only; an idle key is forgotten.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { WriteBatches } from "../../../actors/store/write-batches.ts";

const test = suite("write batches");

test("writes arriving while one runs go together, in order, one kind at a time; other keys run beside", async () => {
  const batches = new WriteBatches<number>();
  const done: [string, string, number[]][] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const write = (key: string) => async (kind: string, items: number[]) => {
    if (done.length === 0) await gate;
    done.push([key, kind, items]);
    return items.length;
  };
  const first = batches.push("a", "insert", [1], write("a"));
  const queued = [
    batches.push("a", "insert", [2, 3], write("a")),
    batches.push("a", "insert", [4], write("a")),
    batches.push("a", "remove", [1], write("a")),
    batches.push("a", "insert", [5], write("a")),
  ];
  release();
  assert.equal(await Promise.all([first, ...queued]), [1, 3, 3, 1, 1], "each resolves to its batch's count");
  assert.equal(done, [
    ["a", "insert", [1]],
    ["a", "insert", [2, 3, 4]],
    ["a", "remove", [1]],
    ["a", "insert", [5]],
  ]);
});

test("a failed batch rejects its writers only; the queue goes on", async () => {
  const batches = new WriteBatches<string>();
  let calls = 0;
  const write = async (_kind: string, items: string[]) => {
    calls += 1;
    if (items.includes("bad")) throw new Error("refused");
    return items.length;
  };
  const [bad, after] = await Promise.allSettled([batches.push("k", "put", ["bad"], write), batches.push("k", "remove", ["ok"], write)]);
  assert.is(bad.status, "rejected");
  assert.equal(after, { status: "fulfilled", value: 1 });
  assert.is(calls, 2);
  assert.is(await batches.push("k", "put", ["again"], write), 1, "an idle key starts afresh");
});

test.run();
