// Routes a validated order to the actor that owns its key: in-process when the actor lives here,
// otherwise over NATS to the actor's own subject, with the requester's inbox so the actor answers
// the requester directly.
import type { NatsConnection } from "@nats-io/transport-node";
import type { ActorHost } from "../runtime/actor-host.ts";
import type { OrderHandler } from "../runtime/entry-point.ts";
import { encodeJson } from "../runtime/json.ts";
import type { Subjects } from "../runtime/subjects.ts";
import type { Placement } from "./placement.ts";

export interface ActorRoute {
  kind: string;
  /** The payload field holding the actor's key, e.g. `remote_id`. */
  keyField: string;
  /** Start the actor when it is not running (otherwise an order for an absent actor is refused). */
  activate: boolean;
}

export interface RouterDeps {
  nc: NatsConnection;
  subjects: Subjects;
  host: ActorHost;
  placement: Placement;
}

export function routeToActor(deps: RouterDeps, route: ActorRoute): OrderHandler {
  return async (payload, context) => {
    const key = String(payload[route.keyField]);
    const message = { type: context.order, payload, ...(context.replyTo !== undefined && { replyTo: context.replyTo }) };
    if (deps.host.deliverLocal(route.kind, key, message)) return undefined;
    if (deps.placement.isLocal(route.kind, key)) {
      if (!route.activate) throw new Error(`no ${route.kind} actor is running for ${route.keyField} "${key}"`);
      const cell = await deps.host.activate(route.kind, key);
      cell.deliver(message);
      return undefined;
    }
    deps.nc.publish(deps.subjects.actor(route.kind, key), encodeJson({ type: context.order, payload }), {
      ...(context.replyTo !== undefined && { reply: context.replyTo }),
    });
    return undefined;
  };
}
