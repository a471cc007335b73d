// Orders for a contact's actor must name a contact of that user that exists before an actor is started
// or the order queued: otherwise anyone on the bus could make the node create (and persist) an actor per
// made-up id. Contacts are never deleted, so a refusal here is the dead letter such an order already
// became when its handler found no contact.
import { type ContactReference, contactIdOf } from "../actors/contacts/contact-orders.ts";
import type { Store } from "../actors/store/store.ts";
import type { Admission } from "../runtime/cluster/actor-router.ts";

export function contactAdmission(store: Store): Admission<ContactReference & { user_id: string }> {
  return async (payload, context) => {
    // Both ids passed the contract's id rule at the entry point.
    const userId = payload.user_id;
    const contactId = contactIdOf(payload);
    if ((await store.contacts.get(userId, contactId)) === null) return `${context.order} refused: user ${userId} has no contact ${contactId}`;
    return null;
  };
}
