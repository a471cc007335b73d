// How an actor emits one of the contract's orders: subject, order and fields typed by the table, so a
// misspelt subject, an order the subject does not have or a missing field does not compile.
import type { ActorPorts } from "../runtime/actor-family.ts";
import { type ContractSubject, type OrderFields, type OrderName, replyWithinMs } from "./contract-table.ts";

export function publishOrder<S extends ContractSubject, O extends OrderName<S>>(
  ports: Pick<ActorPorts, "publish">,
  subject: S,
  order: O,
  fields: OrderFields<S, O>,
): void {
  ports.publish(subject, { order, ...fields });
}

/**
 * Sends a request order and resolves to its reply (unchecked: whatever came back). It waits as long as
 * the contract says its requester does, or `timeoutMs` when the caller must answer within less.
 */
export function requestOrder<S extends ContractSubject, O extends OrderName<S>>(
  ports: Pick<ActorPorts, "request">,
  subject: S,
  order: O,
  fields: OrderFields<S, O>,
  timeoutMs: number = replyWithinMs(subject, order),
): Promise<unknown> {
  return ports.request(subject, { order, ...fields }, timeoutMs);
}
