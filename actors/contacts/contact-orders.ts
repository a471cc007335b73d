// The four orders a contact's actor runs one at a time (contact-actor.ts): ContactAction's
// `contact_update`, KeyAction's `discover_key`, `publish_key` and `delete_key`. Here: what is kept of
// each in the actor's queue (ids only, never a key's armor), which duplicates fold into one, which
// failures are worth another try, and running one order.
import type { Logger } from "pino";
import type { ContractMessage } from "../../contract/contract-message.ts";
import { discoverKeys, type KeySources } from "../keys/key-discovery.ts";
import { type KeyPublishTarget, publishKey, withdrawKey } from "../keys/key-publishing.ts";
import type { DestinationPolicy } from "../network/destination-policy.ts";
import type { Store } from "../store/store.ts";
import { updateContactDerived } from "./contact-update.ts";

export const CONTACT_ORDERS = ["contact_update", "discover_key", "publish_key", "delete_key"] as const;
export type ContactOrderName = (typeof CONTACT_ORDERS)[number];

/** The subject each order comes on, for its dead letter. */
export const ORDER_SUBJECT: Readonly<Record<ContactOrderName, "contactAction" | "keyAction">> = {
  contact_update: "contactAction",
  discover_key: "keyAction",
  publish_key: "keyAction",
  delete_key: "keyAction",
};

/** An order waiting in (or at the head of) a contact actor's queue. */
export interface QueuedOrder {
  order: ContactOrderName;
  user_id: string;
  /** publish_key / delete_key only. */
  key_id?: string;
  received_at: string;
}

export interface ContactOrderDeps {
  store: Store;
  keys: { discovery: KeySources; publishing: KeyPublishTarget };
  /** Where WKD requests of discover_key may go. */
  destinations: DestinationPolicy;
  logger: Logger;
}

export function isContactOrder(type: string): type is ContactOrderName {
  return (CONTACT_ORDERS as readonly string[]).includes(type);
}

/** The contact an order names: `contact_id`, or `resource_id` for publish_key / delete_key (the contact owning the key). */
export function contactIdOf(payload: ContactReference): string {
  return payload.contact_id ?? payload.resource_id ?? "";
}

/** How an order names its contact. */
export type ContactReference = { contact_id?: string; resource_id?: string };

/** A contact's order as its actor receives it (its payload passed the contract's schema). */
export type ContactOrderMessage =
  | ContractMessage<"contactAction", "contact_update">
  | ContractMessage<"keyAction", "discover_key">
  | ContractMessage<"keyAction", "publish_key">
  | ContractMessage<"keyAction", "delete_key">;

/** What the queue keeps of an order. */
export function queuedOrder(message: ContactOrderMessage, at: string): QueuedOrder {
  const keyId = message.type === "publish_key" || message.type === "delete_key" ? { key_id: message.payload.key_id } : {};
  return { order: message.type, user_id: message.payload.user_id, ...keyId, received_at: at };
}

/**
 * Whether `order` adds nothing to a queue: contact_update and discover_key recompute from the store, so
 * one that waits (not the one running: it may have read the store before the change) already covers it.
 */
export function coalesces(queue: readonly QueuedOrder[], order: QueuedOrder): boolean {
  if (order.order !== "contact_update" && order.order !== "discover_key") return false;
  return queue.slice(1).some((waiting) => waiting.order === order.order && waiting.user_id === order.user_id);
}

/** The payload the order came with, as a dead letter shows it. */
export function orderPayload(contactId: string, order: QueuedOrder): Record<string, unknown> {
  if (order.order === "publish_key" || order.order === "delete_key")
    return { order: order.order, key_id: order.key_id, resource_id: contactId, user_id: order.user_id };
  return { order: order.order, contact_id: contactId, user_id: order.user_id };
}

/**
 * Publishing to / withdrawing from a key server or a WKD fails when they are down and passes when they
 * are back: tried again. contact_update and discover_key only fail when the contact or the store is
 * gone (a key source failing is part of discovery's report), so another try would fail the same way.
 */
export function mayPass(order: QueuedOrder): boolean {
  return order.order === "publish_key" || order.order === "delete_key";
}

/** Runs one order for the contact; resolves with a line saying what it did, throws when it failed. */
export async function runContactOrder(deps: ContactOrderDeps, contactId: string, order: QueuedOrder): Promise<string> {
  const ids = { contact_id: contactId, user_id: order.user_id };
  switch (order.order) {
    case "contact_update": {
      const derived = await updateContactDerived(deps.store, ids);
      return `privacy score ${derived.privacy_score}, best key size ${derived.best_key_size}`;
    }
    case "discover_key": {
      const report = await discoverKeys(deps.store, ids, deps.keys.discovery, { destinations: deps.destinations });
      return `${report.found.length} key(s) found, ${report.errors.length} lookup(s) failed`;
    }
    case "publish_key":
    case "delete_key": {
      const keyOrder = { key_id: order.key_id ?? "", resource_id: contactId, user_id: order.user_id };
      const report = await (order.order === "publish_key" ? publishKey : withdrawKey)(deps.store, keyOrder, deps.keys.publishing);
      deps.logger.info(
        { order: order.order, key_id: keyOrder.key_id, hkp: report.hkp, wkd: report.wkd.length, notes: report.notes },
        "key published or withdrawn",
      );
      const notes = report.notes.length > 0 ? `; ${report.notes.join("; ")}` : "";
      return `key server: ${report.hkp ? "uploaded" : "not uploaded"}, WKD files: ${report.wkd.length}${notes}`;
    }
  }
}
