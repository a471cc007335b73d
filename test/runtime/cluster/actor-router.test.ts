// Routing to actors checks what it is given before any stream or actor sees it.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { routeToActor } from "../../../runtime/cluster/actor-router.ts";
import type { KeyedOrders } from "../../../runtime/cluster/keyed-orders.ts";
import { OrderRefused, RetryLater } from "../../../runtime/orders.ts";

// Nothing may reach the keyed orders in these cases: any use of them fails the test.
const untouched = new Proxy({} as KeyedOrders, {
  get: () => {
    throw new Error("the order reached the keyed orders");
  },
});
const context = { subject: "IMAPfetcher", order: "sync", mode: "publish" as const };

test("an order whose key field is not a string is refused, not turned into a key", async () => {
  const route = routeToActor({ keyed: untouched }, { kind: "imap", keyField: "remote_id" });
  for (const payload of [{}, { remote_id: 42 }, { remote_id: null }, { remote_id: ["a"] }]) {
    const refused = await route(payload, context).catch((err: unknown) => err);
    assert.instance(refused, OrderRefused, JSON.stringify(payload));
    assert.match((refused as Error).message, /names no remote_id/);
  }
});

test("an admission that refuses stops the order; one that cannot tell makes it retried later", async () => {
  const refusing = routeToActor({ keyed: untouched }, { kind: "imap", keyField: "remote_id", admit: async () => "no such identity" });
  const refused = await refusing({ remote_id: "r" }, context).catch((err: unknown) => err);
  assert.instance(refused, OrderRefused);
  assert.is((refused as Error).message, "no such identity");
  const failing = routeToActor({ keyed: untouched }, { kind: "imap", keyField: "remote_id", admit: () => Promise.reject(new Error("store down")) });
  const later = await failing({ remote_id: "r" }, context).catch((err: unknown) => err);
  assert.instance(later, RetryLater);
  assert.match((later as Error).message, /store down/);
});

test.run();
