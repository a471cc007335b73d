// ContactAction and KeyAction: a contact's four orders go to its `contact` actor, once the contact is
// known to exist (contact-admission.ts). contact_update and discover_key name the contact as
// `contact_id`; publish_key and delete_key as `resource_id`, the contact that owns the key — so all four
// meet in one actor per contact and run one at a time.
import { type ContactReference, contactIdOf } from "../actors/contacts/contact-orders.ts";
import type { Store } from "../actors/store/store.ts";
import type { SubjectBindings } from "../contract/contract-bindings.ts";
import { actorOf } from "../contract/contract-table.ts";
import { type RouterDeps, routeToActor } from "../runtime/cluster/actor-router.ts";
import { contactAdmission } from "./contact-admission.ts";

export function contactRoutes(deps: RouterDeps, store: Store): { contactAction: SubjectBindings<"contactAction">; keyAction: SubjectBindings<"keyAction"> } {
  const admit = contactAdmission(store);
  const input = (payload: ContactReference) => ({ contact_id: contactIdOf(payload) });
  return {
    contactAction: { contact_update: routeToActor(deps, { ...actorOf("contactAction", "contact_update"), input, admit }) },
    keyAction: {
      discover_key: routeToActor(deps, { ...actorOf("keyAction", "discover_key"), input, admit }),
      publish_key: routeToActor(deps, { ...actorOf("keyAction", "publish_key"), input, admit }),
      delete_key: routeToActor(deps, { ...actorOf("keyAction", "delete_key"), input, admit }),
    },
  };
}
