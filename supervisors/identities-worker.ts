// The identities worker (`identitiesWorker`, queue IDsworker): every order about a remote identity that
// exists goes to that identity's poller actor, which starts on its first order and reads the identity
// from the store.
// Pollers keep their schedules in their own state; now and then one node checks that every active
// remote identity has one (poller-check.ts).
import { SYNC_SUBJECT } from "../actors/identities/poll-schedule.ts";
import type { IdentityProtocol } from "../actors/store/model.ts";
import type { Store } from "../actors/store/store.ts";
import type { SubjectBindings } from "../contract/contract-bindings.ts";
import { actorOf, type OrderName } from "../contract/contract-table.ts";
import { routeToActor } from "../runtime/cluster/actor-router.ts";
import { remoteIdentityAdmission } from "./identity-admission.ts";
import type { ServiceContext } from "./services.ts";

export const pollerInput = (payload: { identity_id: string; user_id: string }) => ({ identity_id: payload.identity_id, user_id: payload.user_id });

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
