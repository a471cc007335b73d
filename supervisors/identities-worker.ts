// The identities worker (`identitiesWorker`, queue IDsworker): every order about a remote identity that
// exists goes to that identity's poller actor, which starts on its first order and reads the identity
// from the store.
// When a node starts, every active remote identity in the store gets its poller back (idempotent), so
// schedules are rebuilt even for identities whose orders were never seen.
import type { Logger } from "pino";
import { SYNC_SUBJECT } from "../actors/identities/poll-schedule.ts";
import { POLLER_KIND } from "../actors/identities/poller.ts";
import type { IdentityProtocol } from "../actors/store/model.ts";
import type { Store } from "../actors/store/store.ts";
import type { SubjectBindings } from "../contract/contract-bindings.ts";
import { actorOf, type OrderName } from "../contract/contract-table.ts";
import { routeToActor } from "../runtime/cluster/actor-router.ts";
import type { KeyedOrders } from "../runtime/cluster/keyed-orders.ts";
import { remoteIdentityAdmission } from "./identity-admission.ts";
import type { ServiceContext } from "./services.ts";

const pollerInput = (payload: { identity_id: string; user_id: string }) => ({ identity_id: payload.identity_id, user_id: payload.user_id });

export function identitiesWorkerOrders(context: ServiceContext, store: Store): SubjectBindings<"identitiesWorker"> {
  // Pollers exist for polled protocols; delete_identity must reach the poller of a deleted identity, which retires it.
  const admit = remoteIdentityAdmission(store, {
    idField: "identity_id",
    protocols: Object.keys(SYNC_SUBJECT) as IdentityProtocol[],
    afterDeletion: ["delete_identity"],
  });
  const toPoller = (order: OrderName<"identitiesWorker">) => routeToActor(context, { ...actorOf("identitiesWorker", order), input: pollerInput, admit });
  return {
    add_identity: toPoller("add_identity"),
    update_identity: toPoller("update_identity"),
    delete_identity: toPoller("delete_identity"),
    update_interval: toPoller("update_interval"),
  };
}

/** Makes sure every active remote identity has a poller. Returns how many were checked. */
export async function rebuildPollers(store: Store, keyed: KeyedOrders, logger: Logger): Promise<number> {
  const identities = (await store.identities.listAll({ type: "remote" })).filter((identity) => identity.status === "active");
  for (const identity of identities) {
    const payload = { order: "add_identity", identity_id: identity.identity_id, user_id: identity.user_id };
    await keyed.apply("tell", POLLER_KIND, identity.identity_id, { message: { type: "add_identity", payload }, input: pollerInput(payload) });
  }
  logger.info({ identities: identities.length }, "poll schedules rebuilt from the store");
  return identities.length;
}
