// ContactAction and KeyAction: a contact's four orders go to its `contact` actor, once the contact is
// known to exist (contact-admission.ts). contact_update and discover_key name the contact as
// `contact_id`; publish_key and delete_key as `resource_id`, the contact that owns the key — so all four
// meet in one actor per contact and run one at a time.
import { CONTACT_KIND } from "../actors/contacts/contact-actor.ts";
import { contactIdOf } from "../actors/contacts/contact-orders.ts";
import type { Store } from "../actors/store/store.ts";
import type { SubjectBindings } from "../contract/contract-bindings.ts";
import { type RouterDeps, routeToActor } from "../runtime/cluster/actor-router.ts";
import { contactAdmission } from "./contact-admission.ts";

export function contactRoutes(deps: RouterDeps, store: Store): { contactAction: SubjectBindings<"contactAction">; keyAction: SubjectBindings<"keyAction"> } {
  const admit = contactAdmission(store);
  const route = (keyField: "contact_id" | "resource_id") =>
    routeToActor(deps, { kind: CONTACT_KIND, keyField, input: (payload) => ({ contact_id: contactIdOf(payload) }), admit });
  const toContact = route("contact_id");
  const toKeyOwner = route("resource_id");
  return {
    contactAction: { contact_update: toContact },
    keyAction: { discover_key: toContact, publish_key: toKeyOwner, delete_key: toKeyOwner },
  };
}
