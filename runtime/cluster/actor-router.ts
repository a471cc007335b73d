// Routes a validated order to the actor that owns its key, on whichever node runs it: a published
// order is handed to the actor's node, which answers once it is applied and saved; a request is
// forwarded to the owner with the requester's inbox, so the actor answers the requester directly. An order may first have to be admitted (e.g. name
// something that exists), so that nobody can make the node start actors for made-up keys.
import { type OrderContext, OrderRefused, RetryLater } from "../orders.ts";
import type { Reply } from "../reply.ts";
import type { KeyedOrders } from "./keyed-orders.ts";

/**
 * Whether a valid order may reach its actor: null lets it through, a string says why not (the order is
 * refused: an error reply, or a dead letter). Throws when it cannot tell now (the order is retried).
 */
export type Admission<P extends object = Record<string, unknown>> = (payload: P, context: OrderContext) => Promise<string | null>;

/** How orders whose payloads are `P` reach their actors. */
export interface ActorRoute<P extends Record<string, unknown> = Record<string, unknown>> {
  kind: string;
  /** The payload field holding the actor's key, e.g. `remote_id`: a string, or the order is refused. */
  keyField: string;
  /** The input of an actor started by this order (families that start on their first message). */
  input?: (payload: P) => Record<string, unknown>;
  /** Checked before the order is queued or forwarded (before any actor is started for it). */
  admit?: Admission<P>;
  /** The message type the actor receives (default: the order's name), e.g. to tell apart subjects. */
  type?: string;
  /** A request starts the actor (with `input`) when it does not exist yet; otherwise it is refused. */
  startOnRequest?: boolean;
}

export interface RouterDeps {
  keyed: KeyedOrders;
}

/** Runs the admission: throws OrderRefused when it refuses, RetryLater when it could not decide. */
export async function admitOrRefuse<P extends object>(admit: Admission<P> | undefined, payload: P, context: OrderContext): Promise<void> {
  if (admit === undefined) return;
  let refusal: string | null;
  try {
    refusal = await admit(payload, context);
  } catch (err) {
    throw new RetryLater(`could not check the order: ${(err as Error).message}`);
  }
  if (refusal !== null) throw new OrderRefused(refusal);
}

/** The handler of orders whose payloads are `P` (the entry point validated them against their schema). */
export function routeToActor<P extends Record<string, unknown>>(
  deps: RouterDeps,
  route: ActorRoute<P>,
): (payload: P, context: OrderContext) => Promise<Reply | undefined> {
  return async (payload, context) => {
    await admitOrRefuse(route.admit, payload, context);
    const key = payload[route.keyField];
    if (typeof key !== "string") throw new OrderRefused(`${context.order} names no ${route.keyField} to find its actor by`);
    const message = { type: route.type ?? context.order, payload };
    if (context.mode === "publish") {
      await deps.keyed.apply("tell", route.kind, key, {
        message,
        ...(route.input !== undefined && { input: route.input(payload) }),
        ...(context.deliveryId !== undefined && { id: context.deliveryId }),
      });
      return undefined;
    }
    return deps.keyed.forward({
      kind: route.kind,
      key,
      message,
      ...(context.replyTo !== undefined && { replyTo: context.replyTo }),
      ...(route.startOnRequest === true && route.input !== undefined && { input: route.input(payload) }),
    });
  };
}
