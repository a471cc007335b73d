// The `delivery` region both bridge workers (IMAP, Twitter) share: `deliver` requests wait in a queue in
// the actor's context (so a node that stops mid-send leaves them to the next owner, which resumes them)
// and are handled one at a time by the machine's `deliverOne` task, each answered on its reply inbox.
import type { TypedMessage } from "../../runtime/actor-family.ts";

export interface PendingDelivery {
  message_id: string;
  replyTo?: string;
}

export interface WithDeliveries {
  deliveries: PendingDelivery[];
}

/** A `deliver` request as the region takes it (outboundIMAP's and twitter_dm's have these fields). */
export type DeliverMessage = TypedMessage<"deliver", { message_id: string }>;

/** The queue with one more request: the `enqueueDelivery` action's assignment. */
export function withDelivery(context: WithDeliveries, event: DeliverMessage): PendingDelivery[] {
  return [...context.deliveries, { message_id: event.payload.message_id, ...(event.replyTo !== undefined && { replyTo: event.replyTo }) }];
}

/** The `hasDeliveries` guard: a request is waiting. */
export const hasDeliveries = (context: WithDeliveries): boolean => context.deliveries.length > 0;
/** The `moreDeliveries` guard: another request waits behind the one being answered. */
export const moreDeliveries = (context: WithDeliveries): boolean => context.deliveries.length > 1;

/**
 * The region's states. The machine provides the guards `hasDeliveries` and `moreDeliveries` (above), the actions `enqueueDelivery` (see
 * `withDelivery`) and `answerDelivery` (reply to the first request from `params.output`, what `deliverOne`
 * gave, and drop it), and the actor `deliverOne` whose input is `{ context, message_id }`.
 */
export function deliveryRegion<TContext extends WithDeliveries, TOutput>() {
  const answered = ({ event }: { event: { output: TOutput } }) => ({ output: event.output });
  return {
    initial: "ready" as const,
    states: {
      ready: {
        // Deliveries restored from a snapshot (the node stopped while sending) are resumed.
        always: { guard: "hasDeliveries" as const, target: "delivering" as const },
        on: { deliver: { target: "delivering" as const, actions: "enqueueDelivery" as const } },
      },
      delivering: {
        tags: ["busy"],
        on: { deliver: { actions: "enqueueDelivery" as const } },
        invoke: {
          src: "deliverOne" as const,
          input: ({ context }: { context: TContext }) => ({ context, message_id: context.deliveries[0]?.message_id ?? "" }),
          onDone: [
            { guard: "moreDeliveries" as const, target: "delivering" as const, reenter: true, actions: { type: "answerDelivery" as const, params: answered } },
            { target: "ready" as const, actions: { type: "answerDelivery" as const, params: answered } },
          ],
        },
      },
    },
  };
}
