// Orders for the bridges' workers and the pollers must name a remote identity of that user that
// exists, of a protocol the actor serves, and is not deleted, before an actor is started or a message
// forwarded: otherwise anyone on the bus could make the node create (and persist) an actor per
// made-up id. Orders that clean up after a deletion (`remove_worker`, `delete_identity`) are let
// through for a deleted identity, which still exists in the store marked `deleted`.
import type { IdentityProtocol } from "../actors/store/model.ts";
import type { Store } from "../actors/store/store.ts";
import type { Admission } from "../runtime/cluster/actor-router.ts";

export interface IdentityAdmissionRule<F extends "remote_id" | "identity_id"> {
  /** The payload field naming the identity: `remote_id` (bridges) or `identity_id` (identities worker). */
  idField: F;
  /** Protocols of the identities the actors serve. */
  protocols: readonly IdentityProtocol[];
  /** Orders that still reach the actor once the identity is deleted, so that it can clean up. */
  afterDeletion: readonly string[];
}

/** Orders naming a user and one of their identities (in field `F`). */
export type IdentityOrder<F extends "remote_id" | "identity_id"> = { user_id: string } & Record<F, string>;

export function remoteIdentityAdmission<F extends "remote_id" | "identity_id">(store: Store, rule: IdentityAdmissionRule<F>): Admission<IdentityOrder<F>> {
  return async (payload, context) => {
    // Both ids passed the contract's id rule at the entry point.
    const userId = payload.user_id;
    const identityId = payload[rule.idField];
    const identity = await store.identities.get(userId, identityId);
    const refused = (why: string) => `${context.order} refused: ${why}`;
    if (identity === null) return refused(`user ${userId} has no identity ${identityId}`);
    if (identity.type !== "remote") return refused(`identity ${identityId} is a ${identity.type} identity, not a remote one`);
    if (!rule.protocols.includes(identity.protocol)) {
      return refused(`identity ${identityId} is a ${identity.protocol} identity; ${context.subject} serves ${rule.protocols.join("/")} identities`);
    }
    if (identity.status === "deleted" && !rule.afterDeletion.includes(context.order)) return refused(`identity ${identityId} was deleted`);
    return null;
  };
}
