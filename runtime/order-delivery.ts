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

// Classes, not object literals of closures: one is made per order, and under tsx (esbuild's
// keepNames) every closure assigned to a property is also given its name, a defineProperty per order.
class CoreDelivery implements Delivery {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly replyTo?: string;

  constructor(msg: Msg) {
    this.subject = msg.subject;
    this.data = msg.data;
    if (msg.reply !== undefined && msg.reply !== "") this.replyTo = msg.reply;
  }

  // Core NATS keeps nothing to acknowledge or offer again.
  done(): void {}
  retry(): void {}
}

class DurableDelivery implements Delivery {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly deliveryId: string;

  constructor(private readonly msg: JsMsg) {
    this.subject = msg.subject;
    this.data = msg.data;
    this.deliveryId = `intake-${msg.seq}`;
  }

  // Read only when a handler failed: nats.js parses the whole reply subject for it.
  get attempt(): number {
    return this.msg.info.deliveryCount;
  }

  done(): void {
    this.msg.ack();
  }

  retry(): void {
    this.msg.nak(1_000);
  }

  retryAfter(ms: number): void {
    this.msg.nak(ms);
  }

  working(): void {
    this.msg.working();
  }
}

export function coreDelivery(msg: Msg): Delivery {
  return new CoreDelivery(msg);
}

export function durableDelivery(msg: JsMsg): Delivery {
  return new DurableDelivery(msg);
}
