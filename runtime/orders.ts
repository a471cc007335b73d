// What an order is to the runtime: how it came (its mode and context), what handles it (a handler, its
// route with the payload's schema), and what a handler throws to have it offered again or refused.
import type { PayloadSchema } from "./payload-schema.ts";
import type { Reply } from "./reply.ts";

export type OrderMode = "request" | "publish";

/**
 * Thrown by a handler whose failure may pass (a server down, a timeout): a durable order is offered
 * again after a growing pause, up to `attempts` deliveries, and only then kept as a dead letter. On core
 * NATS (requests) it is an ordinary failure: the requester gets the error and may retry.
 */
export class RetryLater extends Error {
  override readonly name = "RetryLater";
  constructor(
    message: string,
    readonly attempts = 6,
  ) {
    super(message);
  }
}

/**
 * Thrown by a handler that refuses a valid order for good (e.g. it names something that does not
 * exist): the requester gets the message as an error, a published order becomes a dead letter. Not a
 * failure of the node: counted as rejected, not failed.
 */
export class OrderRefused extends Error {
  override readonly name = "OrderRefused";
}

/** The answer to a request that finds its entry point full. */
export const BUSY = "busy, try again";

export interface OrderContext {
  subject: string;
  order: string;
  mode: OrderMode;
  /** The requester's inbox; undefined for a published order. */
  replyTo?: string;
  /** Stable across redeliveries of a durable order (its intake sequence): lets handlers stay idempotent. */
  deliveryId?: string;
}

/**
 * Handles one valid order. Returning a Reply answers the requester; returning undefined means the
 * handler passed the reply inbox on (e.g. to an actor) and the answer will come from there.
 */
export type OrderHandler = (payload: Record<string, unknown>, context: OrderContext) => Promise<Reply | undefined> | Reply | undefined;

export interface OrderRoute {
  mode: OrderMode;
  schema: PayloadSchema;
  handle: OrderHandler;
}
