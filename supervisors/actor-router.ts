// Routes a validated order to the actor that owns its key, on whichever node runs it: a published
// order through the durable order stream, a request forwarded to the owner with the requester's inbox,
// so the actor answers the requester directly.
import type { OrderHandler } from "../runtime/entry-point.ts";
import type { KeyedOrders } from "./cluster/keyed-orders.ts";

export interface ActorRoute {
  kind: string;
  /** The payload field holding the actor's key, e.g. `remote_id`. */
  keyField: string;
  /** The input of an actor started by this order (families that start on their first message). */
  input?: (payload: Record<string, unknown>) => Record<string, unknown>;
}

export interface RouterDeps {
  keyed: KeyedOrders;
}

export function routeToActor(deps: RouterDeps, route: ActorRoute): OrderHandler {
  return async (payload, context) => {
    const key = String(payload[route.keyField]);
    const message = { type: context.order, payload };
    if (context.mode === "publish") {
      await deps.keyed.publish("deliver", route.kind, key, {
        message,
        ...(route.input !== undefined && { input: route.input(payload) }),
        ...(context.deliveryId !== undefined && { id: context.deliveryId }),
      });
      return undefined;
    }
    return deps.keyed.forward({ kind: route.kind, key, message, ...(context.replyTo !== undefined && { replyTo: context.replyTo }) });
  };
}
