// Orders for a user's own actors (the inbound processor) must name a user that exists before an actor
// is started or a message forwarded: otherwise anyone on the bus could make the node create (and
// persist) an actor per made-up user id. The refusal is the one the processors give for such a user.
import type { Store } from "../actors/store/store.ts";
import type { Admission } from "../runtime/cluster/actor-router.ts";

export function existingUserAdmission(store: Store): Admission<{ user_id: string }> {
  // The id passed the contract's id rule at the entry point.
  return async ({ user_id }) => ((await store.users.get(user_id)) === null ? `unknown user ${user_id}` : null);
}
