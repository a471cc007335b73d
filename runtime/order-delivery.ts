// One order as an entry point received it, from core NATS or from the intake stream, with how to tell
// its source what became of it.
import type { JsMsg } from "@nats-io/jetstream";
import type { Msg } from "@nats-io/transport-node";

/** One order as it arrived, and how to tell its source that it was handled. */
export interface Delivery {
  subject: string;
  data: Uint8Array;
  replyTo?: string;
  deliveryId?: string;
  /** Handled (or refused for good): the source may forget it. */
  done(): void;
  /** Failed for a reason of ours: the source should offer it again (to another node) later. */
  retry(): void;
  /** Which delivery of this order this is (1 for the first); absent for core NATS. */
  attempt?: number;
  /** Offer it again after this pause (durable sources only). */
  retryAfter?: (ms: number) => void;
  /** Still being handled: keeps a durable source from giving it to another node meanwhile (absent for core NATS). */
  working?: () => void;
}

export function coreDelivery(msg: Msg): Delivery {
  return {
    subject: msg.subject,
    data: msg.data,
    ...(msg.reply !== undefined && msg.reply !== "" && { replyTo: msg.reply }),
    done: () => undefined,
    retry: () => undefined,
  };
}

export function durableDelivery(msg: JsMsg): Delivery {
  return {
    subject: msg.subject,
    data: msg.data,
    deliveryId: `intake-${msg.seq}`,
    attempt: msg.info.deliveryCount,
    done: () => msg.ack(),
    retry: () => msg.nak(1_000),
    retryAfter: (ms) => msg.nak(ms),
    working: () => msg.working(),
  };
}
