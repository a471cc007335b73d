// The contract's types at work: what the table does not allow does not compile. `tsc --noEmit` (CI)
// checks every `@ts-expect-error` below is an error: a line that compiled would fail the type check.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { ACTOR_KINDS } from "../../contract/actor-kinds.ts";
import { boundHandler, type ContractBindings } from "../../contract/contract-bindings.ts";
import { actorOf, CONTRACT, ID_PATTERN, type OrderFields, type OrderPayload, type OrderSpec, replyWithinMs } from "../../contract/contract-table.ts";
import { checkedReply, MalformedReply } from "../../contract/emit-order.ts";
import { ok } from "../../runtime/reply.ts";

test("handlers get their order's payload as the table types it; wrong subjects and orders do not compile", () => {
  const seen: string[] = [];
  const bindings: ContractBindings = {
    IMAPfetcher: {
      sync: (payload) => {
        // remote_id and user_id are strings here, without a cast.
        seen.push(`${payload.order} ${payload.remote_id.toUpperCase()} ${payload.user_id}`);
        return ok("synced");
      },
    },
    identitiesWorker: {
      update_interval: (payload) => {
        // @ts-expect-error poll_intervall is a string, not a number
        const minutes: number = payload.poll_intervall;
        seen.push(String(minutes));
        return undefined;
      },
    },
  };
  // @ts-expect-error a subject the contract does not have
  const misspelt: ContractBindings = { IMAPfetchr: { sync: () => undefined } };
  // @ts-expect-error an order outboundSMTP does not have
  const wrongOrder: ContractBindings = { outboundSMTP: { fullfetch: () => undefined } };
  assert.ok(misspelt && wrongOrder);
  const handler = boundHandler(bindings, "IMAPfetcher", "sync");
  assert.ok(handler, "bound");
  handler({ order: "sync", remote_id: "r1", user_id: "u1" }, { subject: "IMAPfetcher", order: "sync", mode: "publish" });
  assert.equal(seen, ["sync R1 u1"]);
  assert.is(boundHandler(bindings, "IMAPfetcher", "fullfetch"), undefined, "an order not bound");
  assert.is(boundHandler(bindings, "toString", "call"), undefined, "nothing inherited is a binding");
});

test("order fields are the table's: a missing or mistyped field does not compile", () => {
  const fields: OrderFields<"keyAction", "publish_key"> = { key_id: "k", resource_id: "c", user_id: "u" };
  // @ts-expect-error resource_id is required
  const missing: OrderFields<"keyAction", "publish_key"> = { key_id: "k", user_id: "u" };
  // @ts-expect-error user_id is a string
  const mistyped: OrderFields<"contactAction", "contact_update"> = { contact_id: "c", user_id: 7 };
  // @ts-expect-error the payload names its own order
  const wrongOrder: OrderPayload<"IMAPfetcher", "sync"> = { order: "fullfetch", remote_id: "r", user_id: "u" };
  assert.ok(fields && missing && mistyped && wrongOrder);
});

test("every request of the contract says how long its requester waits; published orders do not", () => {
  for (const row of CONTRACT) {
    for (const [order, spec] of Object.entries(row.orders) as [string, OrderSpec][]) {
      if (spec.mode === "request") assert.ok((spec.replyWithinMs ?? 0) > 0, `${row.subject} ${order}`);
      else assert.is(spec.replyWithinMs, undefined, `${row.subject} ${order}`);
    }
  }
  assert.is(replyWithinMs("outboundSMTP", "deliver"), 30_000, "docs/decisions.md §3: 30 s for deliver");
  assert.is(replyWithinMs("inboundTwitter", "process_inbound"), 10_000, "and 10 s for process_inbound");
  // @ts-expect-error sync is not an order of outboundSMTP
  assert.throws(() => replyWithinMs("outboundSMTP", "sync"), /not a request/);
  assert.throws(() => replyWithinMs("IMAPfetcher", "sync"), /not a request/);
});

test("every order names who handles it; an actor's key is a required id field of the order", () => {
  const kinds = new Set<string>(Object.values(ACTOR_KINDS));
  for (const row of CONTRACT) {
    for (const [order, spec] of Object.entries(row.orders) as [string, OrderSpec][]) {
      const routing = spec.handledBy;
      if ("stateless" in routing) continue;
      assert.ok(kinds.has(routing.actor), `${row.subject} ${order}: ${routing.actor}`);
      const key = spec.payload[routing.key];
      assert.ok(key?.required === true && key.pattern === ID_PATTERN, `${row.subject} ${order}: ${routing.key} is a required id`);
    }
  }
  assert.equal(actorOf("keyAction", "publish_key"), { kind: "contact", keyField: "resource_id" }, "a key's orders meet its contact's");
  assert.throws(() => actorOf("outboundSMTP", "deliver"), /not handled by an actor/);
});

test("a reply from the bus is checked against the table: a failure as it is, a success with its fields, anything else rejected", () => {
  const failed = checkedReply("inboundSMTP", "process_inbound", { error: true, message: "unknown user u" });
  assert.equal(failed, { error: true, message: "unknown user u" });
  const imported = checkedReply("inboundSMTP", "process_inbound", { error: false, message: "message imported", message_id: "m-1", discussion_id: "d-1" });
  // Typed by the table: a success carries the message and its discussion.
  if (!imported.error) assert.equal([imported.message_id, imported.discussion_id], ["m-1", "d-1"]);
  else assert.unreachable("a success");
  assert.throws(
    () => checkedReply("inboundSMTP", "process_inbound", "imported"),
    (err: Error) => err instanceof MalformedReply && /not a reply/.test(err.message),
  );
  assert.throws(
    () => checkedReply("outboundSMTP", "deliver", { error: false, message: "sent" }),
    (err: Error) => err instanceof MalformedReply && /message_id/.test(err.message),
  );
  assert.throws(
    () => checkedReply("outboundSMTP", "deliver", { error: false, message: "sent", message_id: "../../x" }),
    (err: Error) => err instanceof MalformedReply,
  );
});

test.run();
