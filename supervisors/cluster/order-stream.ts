// Keyed orders (add_worker, sync, …) travel through a JetStream work-queue stream, one durable consumer
// per shard, so an order published while its actor moves between nodes, or while its node dies, is
// redelivered to the next owner instead of being lost. A consumer acknowledges an order once the
// actor's state after it is saved.
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, type Consumer, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { encodeJson } from "../../runtime/json.ts";
import { subjectToken, type Subjects } from "../../runtime/subjects.ts";

export type KeyedOperation = "start" | "reload" | "remove" | "deliver";

export interface KeyedOrder {
  /** Unique per order: the stream drops a re-published duplicate, the actor a redelivered one. */
  id: string;
  op: KeyedOperation;
  kind: string;
  key: string;
  /** For start/reload, and deliver to an actor that starts on its first message: the actor's input. */
  input?: Record<string, unknown>;
  /** For deliver: the message for the actor. */
  message?: { type: string; payload: Record<string, unknown> };
}

const SECOND_NS = 1_000_000_000;
/** An order taken by a node that died is given to the next owner after this long. */
export const ORDER_ACK_WAIT_MS = 5_000;

export class OrderStream {
  private readonly consumersReady = new Map<number, Promise<Consumer>>();

  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly subjects: Subjects,
    readonly name: string,
  ) {}

  static async open(nc: NatsConnection, subjects: Subjects, replicas: number): Promise<OrderStream> {
    const jsm = await jetstreamManager(nc);
    const name = subjects.resource("caliopen_actor_orders");
    try {
      await jsm.streams.info(name);
    } catch {
      await jsm.streams.add({
        name,
        subjects: [subjects.wire("caliopen.orders.>")],
        retention: RetentionPolicy.Workqueue,
        max_age: 7 * 24 * 3600 * SECOND_NS,
        num_replicas: replicas,
      });
    }
    return new OrderStream(jetstream(nc), jsm, subjects, name);
  }

  subject(shard: number, kind: string, key: string): string {
    return this.subjects.wire(`caliopen.orders.${shard}.${kind}.${subjectToken(key)}`);
  }

  /** Resolves once the stream has stored the order. */
  async publish(shard: number, order: KeyedOrder): Promise<void> {
    await this.js.publish(this.subject(shard, order.kind, order.key), encodeJson(order), { msgID: order.id });
  }

  /** The shard's durable consumer, created on first use. */
  consumer(shard: number): Promise<Consumer> {
    let ready = this.consumersReady.get(shard);
    if (ready === undefined) {
      ready = (async () => {
        const durable = `shard-${shard}`;
        try {
          await this.jsm.consumers.info(this.name, durable);
        } catch {
          await this.jsm.consumers.add(this.name, {
            durable_name: durable,
            filter_subject: this.subjects.wire(`caliopen.orders.${shard}.>`),
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            ack_wait: ORDER_ACK_WAIT_MS * 1_000_000,
            max_deliver: -1,
            max_ack_pending: 10_000,
          });
        }
        return this.js.consumers.get(this.name, durable);
      })();
      ready.catch(() => this.consumersReady.delete(shard));
      this.consumersReady.set(shard, ready);
    }
    return ready;
  }
}
