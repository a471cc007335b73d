// How a sync's raws are gathered into import batches (actors/inbound/import-batcher.ts): full batches as
// soon as MAX_BATCH_RAWS raws or MAX_BATCH_RAW_BYTES wait, the rest once raws stop coming; each raw gets
// its own reply from its batch's, and a batch refused or unanswered fails each of its raws.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ImportBatcher } from "../../../actors/inbound/import-batcher.ts";
import { MAX_BATCH_RAW_BYTES, MAX_BATCH_RAWS } from "../../../actors/inbound/inbound-batch.ts";
import { failure, ok } from "../../../runtime/reply.ts";

const test = suite("import batcher");

/** Answers every batch as the inbound actor does, each raw imported; records what was sent. */
function recording(answer: (rawIds: string[]) => unknown = (rawIds) => ok("answered", { results: rawIds.map((id) => ok("message imported", { raw: id })) })) {
  const sent: string[][] = [];
  const send = async (rawIds: string[]) => {
    sent.push(rawIds);
    return answer(rawIds);
  };
  return { sent, send };
}

test("70 raws make ⌈70 / MAX_BATCH_RAWS⌉ batches, in order, and each raw gets its own reply", async () => {
  const { sent, send } = recording();
  const batcher = new ImportBatcher(send);
  const ids = Array.from({ length: 70 }, (_, n) => `raw-${n}`);
  const replies = await Promise.all(ids.map((id) => batcher.import(id, 10_000)));
  assert.is(sent.length, Math.ceil(70 / MAX_BATCH_RAWS));
  assert.equal(sent.flat(), ids);
  assert.ok(sent.every((batch) => batch.length <= MAX_BATCH_RAWS));
  assert.equal(
    replies.map((reply) => reply.raw),
    ids,
  );
  assert.is(batcher.sent, sent.length);
});

test("a batch never refers to more than MAX_BATCH_RAW_BYTES of raws", async () => {
  const { sent, send } = recording();
  const batcher = new ImportBatcher(send);
  const size = Math.floor(MAX_BATCH_RAW_BYTES / 3) + 1;
  await Promise.all(Array.from({ length: 7 }, (_, n) => batcher.import(`big-${n}`, size)));
  assert.equal(
    sent.map((batch) => batch.length),
    [2, 2, 2, 1],
  );
});

test("one raw's failure is its own; a refused batch or no reply fails each of its raws", async () => {
  const mixed = recording((rawIds) => ok("answered", { results: rawIds.map((id) => (id === "bad" ? failure("not mail") : ok("message imported"))) }));
  const batcher = new ImportBatcher(mixed.send);
  const [good, bad, other] = await Promise.all(["good", "bad", "other"].map((id) => batcher.import(id, 100)));
  assert.equal([good?.error, bad?.error, other?.error], [false, true, false]);

  for (const answer of [() => failure("queue full"), () => ok("answered", { results: [] }), () => "not a reply"]) {
    const refusing = new ImportBatcher(recording(answer).send);
    const settled = await Promise.allSettled(["a", "b"].map((id) => refusing.import(id, 100)));
    assert.ok(
      settled.every((result) => result.status === "rejected"),
      "each raw of the batch failed",
    );
  }
  const failing = new ImportBatcher(async () => {
    throw new Error("no reply within 60000 ms");
  });
  const lost = await Promise.allSettled([failing.import("a", 1)]);
  assert.is(lost[0]?.status, "rejected");
});

test("cancel fails what waits and sends nothing", async () => {
  const { sent, send } = recording();
  const batcher = new ImportBatcher(send);
  const waiting = batcher.import("a", 1);
  batcher.cancel();
  await waiting.then(
    () => assert.unreachable("a cancelled raw is not answered"),
    (err: Error) => assert.match(err.message, /sync stopped/),
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.is(sent.length, 0);
});

test("batches that wait for answers: sent at once while under the limit in flight, then gathered until one is answered", async () => {
  const answers: (() => void)[] = [];
  const sent: string[][] = [];
  const batcher = new ImportBatcher(
    (rawIds) =>
      new Promise((resolve) => {
        sent.push(rawIds);
        answers.push(() => resolve(ok("answered", { results: rawIds.map((id) => ok("message imported", { raw: id })) })));
      }),
    { maxRaws: 3, maxBytes: 1_000_000, timing: { maxInFlight: 1 } },
  );
  const replies = ["a", "b", "c", "d", "e", "f"].map((id) => batcher.import(id, 10));
  // a went alone; b, c, d filled a batch (full: sent whatever is in flight); e, f wait for an answer.
  assert.equal(sent, [["a"], ["b", "c", "d"]]);
  assert.not.ok(batcher.idle);
  answers.shift()?.();
  await replies[0];
  assert.equal(sent, [["a"], ["b", "c", "d"], ["e", "f"]], "what gathered goes once a batch is answered");
  for (const answer of answers.splice(0)) answer();
  assert.equal(
    (await Promise.all(replies)).map((reply) => reply.raw),
    ["a", "b", "c", "d", "e", "f"],
  );
  assert.ok(batcher.idle);
});

test.run();
