// The identities worker (`identitiesWorker`, queue IDsworker): every order about an identity goes to
// that identity's poller actor, which starts on its first order and reads the identity from the store.
// When a node starts, every active remote identity in the store gets its poller back (idempotent), so
// schedules are rebuilt even for identities whose orders were never seen.
import type { Logger } from "pino";
import { POLLER_KIND } from "../actors/identities/poller.ts";
import type { Store } from "../actors/store/store.ts";
import type { OrderHandler } from "../runtime/entry-point.ts";
import { routeToActor } from "./actor-router.ts";
import type { KeyedOrders } from "./cluster/keyed-orders.ts";
import type { ServiceContext } from "./services.ts";

const pollerInput = (payload: Record<string, unknown>) => ({ identity_id: payload.identity_id, user_id: payload.user_id });

export function identitiesWorkerOrders(context: ServiceContext): Record<string, OrderHandler> {
  const toPoller = routeToActor(context, { kind: POLLER_KIND, keyField: "identity_id", input: pollerInput });
  return { add_identity: toPoller, update_identity: toPoller, delete_identity: toPoller, update_interval: toPoller };
}

/** Makes sure every active remote identity has a poller. Returns how many were checked. */
export async function rebuildPollers(store: Store, keyed: KeyedOrders, logger: Logger): Promise<number> {
  const identities = (await store.identities.listAll({ type: "remote" })).filter((identity) => identity.status === "active");
  for (const identity of identities) {
    const payload = { order: "add_identity", identity_id: identity.identity_id, user_id: identity.user_id };
    await keyed.publish("deliver", POLLER_KIND, identity.identity_id, { message: { type: "add_identity", payload }, input: pollerInput(payload) });
  }
  logger.info({ identities: identities.length }, "poll schedules rebuilt from the store");
  return identities.length;
}
