// Keyed orders as read back from the stream: anyone able to publish there could put anything, so each
// is checked before it reaches a supervisor.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { readKeyedOrder } from "../../../runtime/cluster/keyed-order.ts";

const tell = { id: "intake-7", op: "tell", kind: "imap", key: "r-1", message: { type: "sync", payload: { remote_id: "r-1" } } };

test("a keyed order that tells an actor a message is read whole", () => {
  assert.equal(readKeyedOrder(tell), tell);
});

test("an order written by an earlier version as `deliver` is read as `tell`", () => {
  assert.equal(readKeyedOrder({ ...tell, op: "deliver" }), tell);
});

test("unknown operations, missing ids, unusable keys and malformed messages are refused with a reason", () => {
  const refused: [unknown, RegExp][] = [
    [{ ...tell, op: "explode" }, /unknown keyed operation "explode"/],
    [{ ...tell, op: "toString" }, /unknown keyed operation/],
    [{ ...tell, id: "" }, /needs an "id"/],
    [{ ...tell, key: "k".repeat(4_000) }, /an actor key is at most/],
    [{ ...tell, key: "" }, /non-empty string/],
    [{ ...tell, message: { type: 7, payload: {} } }, /"message" must be/],
    [[tell], /must be a JSON object/],
  ];
  for (const [order, why] of refused) {
    const read = readKeyedOrder(order);
    assert.type(read, "string", JSON.stringify(order));
    assert.match(read as string, why);
  }
});

test.run();
