// The SMTP server's import batches (actors/inbound/import-batchers.ts): mail for one recipient arriving
// at the same moment goes in one batch, each recipient's in its own, and nothing stays behind once sent.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { RECEIVED_BATCH_LIMITS } from "../../../actors/inbound/import-batcher.ts";
import { ImportBatchers } from "../../../actors/inbound/import-batchers.ts";
import type { ImportBatchOrder } from "../../../actors/inbound/inbound-batch.ts";
import { failure, ok } from "../../../runtime/reply.ts";

const test = suite("import batchers");

function recording() {
  const sent: ImportBatchOrder[] = [];
  const send = async (order: ImportBatchOrder) => {
    sent.push(order);
    return ok("answered", { results: order.raw_ids.map((id) => ok("message imported", { raw: id })) });
  };
  return { sent, send };
}

test("raws for several recipients at the same moment: each recipient's own batches, each raw its own reply; then no batcher is left", async () => {
  const { sent, send } = recording();
  const batchers = new ImportBatchers(send, RECEIVED_BATCH_LIMITS);
  const replies = await Promise.all([
    batchers.import("u1", "i1", "r1", 100),
    batchers.import("u2", "i2", "r2", 100),
    batchers.import("u1", "i1", "r3", 100),
    batchers.import("u1", "i9", "r4", 100),
  ]);
  assert.equal(
    replies.map((reply) => reply.raw),
    ["r1", "r2", "r3", "r4"],
  );
  assert.equal(
    sent.map((order) => `${order.user_id}/${order.remote_id}: ${order.raw_ids.join(",")}`).sort(),
    // Each went at once: RECEIVED_BATCH_LIMITS lets as many batches wait for answers as the actor imports side by side.
    ["u1/i1: r1", "u1/i1: r3", "u1/i9: r4", "u2/i2: r2"],
  );
  assert.is(batchers.waiting, 0);
});

test("mail arriving later makes a new batch; a refused batch fails its raws only", async () => {
  let refuse = true;
  const sent: string[][] = [];
  const batchers = new ImportBatchers(async (order) => {
    sent.push(order.raw_ids);
    return refuse ? failure("busy, try again") : ok("answered", { results: order.raw_ids.map(() => ok("message imported")) });
  }, RECEIVED_BATCH_LIMITS);
  const first = await batchers.import("u1", "i1", "r1", 10).then(
    () => null,
    (err: Error) => err.message,
  );
  assert.match(String(first), /busy, try again/);
  refuse = false;
  assert.is((await batchers.import("u1", "i1", "r2", 10)).message, "message imported");
  assert.equal(sent, [["r1"], ["r2"]]);
  assert.is(batchers.waiting, 0);
});

test.run();
