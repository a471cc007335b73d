// How the API emits the contract's orders. A published order is handed to JetStream when a stream
// captures its subject (the nodes' intake stream does for every publish-only subject), so "202
// accepted" means the order is stored and will be handled even if no node is up right now; without
// such a stream it falls back to a plain publish. Requests go through one shared reply inbox.
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ContractSubject, OrderName, OrderPayload } from "../actors/contract/contract-table.ts";
import { decodeJson, encodeJson, isJsonObject } from "../runtime/json.ts";
import type { Reply } from "../runtime/reply.ts";
import { NoResponders, RequestTimeout, Requester } from "../runtime/requester.ts";
import type { Subjects } from "../runtime/subjects.ts";

export { NoResponders, RequestTimeout };

/** The order's payload fields, without `order` (added by the emitter). */
export type OrderFields<S extends ContractSubject, O extends OrderName<S>> = Omit<OrderPayload<S, O>, "order">;

export class OrderEmitter {
  private readonly js: JetStreamClient;
  private readonly requester: Requester;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly logger: Logger,
  ) {
    this.js = jetstream(nc);
    this.requester = new Requester(nc);
  }

  /** Publishes an order; resolves once it is stored by the intake stream (or sent, without one). */
  async publish<S extends ContractSubject, O extends OrderName<S>>(subject: S, order: O, fields: OrderFields<S, O>): Promise<void> {
    const data = encodeJson({ order, ...fields });
    const wire = this.subjects.wire(subject);
    try {
      await this.js.publish(wire, data, { timeout: 5_000 });
    } catch (err) {
      if (!/no responders|503/i.test((err as Error).message)) throw err;
      // No stream captures the subject: no node has ever run on this NATS. Subscribers still get it.
      this.logger.warn({ subject, order }, "no intake stream captures this subject: order published without being stored");
      this.nc.publish(wire, data);
      await this.nc.flush();
    }
  }

  /** Sends a request and returns the reply; throws RequestTimeout or NoResponders. */
  async request<S extends ContractSubject, O extends OrderName<S>>(subject: S, order: O, fields: OrderFields<S, O>, timeoutMs: number): Promise<Reply> {
    const msg = await this.requester.request(this.subjects.wire(subject), encodeJson({ order, ...fields }), timeoutMs);
    const decoded = decodeJson(msg.data);
    if (!decoded.ok || !isJsonObject(decoded.value) || typeof decoded.value.error !== "boolean") {
      throw new Error(`${subject} answered something that is not a reply: ${decoded.ok ? JSON.stringify(decoded.value).slice(0, 200) : decoded.error}`);
    }
    return { ...decoded.value, error: decoded.value.error, message: String(decoded.value.message ?? "") };
  }

  close(): void {
    this.requester.close();
  }
}
