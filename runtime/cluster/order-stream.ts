// Keyed orders (add_worker, sync, …) travel through a JetStream work-queue stream, one durable consumer
// per shard, so an order published while its actor moves between nodes, or while its node dies, is
// redelivered to the next owner instead of being lost. A consumer acknowledges an order once the
// actor's state after it is saved.
import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { BUS_JSON_LIMITS, encodeJson, isJsonObject, type JsonLimits } from "../json.ts";
import { actorKeyProblem, type Subjects, subjectToken } from "../subjects.ts";

/** start, reload or remove an actor, or tell it a message. */
export type KeyedOperation = "start" | "reload" | "remove" | "tell";

export interface KeyedOrder {
  /** Unique per order: the stream drops a re-published duplicate, the actor a redelivered one. */
  id: string;
  op: KeyedOperation;
  kind: string;
  key: string;
  /** For start/reload, and tell to an actor that starts on its first message: the actor's input. */
  input?: Record<string, unknown>;
  /** For tell: the message for the actor. */
  message?: { type: string; payload: Record<string, unknown> };
}

/**
 * Keyed orders wrap an order that passed the bus limits (the message's payload sits two levels down),
 * with a little more room for the wrapper. The same for messages forwarded to a node's inbox.
 */
export const WRAPPED_ORDER_LIMITS: JsonLimits = { maxBytes: BUS_JSON_LIMITS.maxBytes + 8 * 1024, maxDepth: BUS_JSON_LIMITS.maxDepth + 2 };

const OPERATIONS: readonly string[] = ["start", "reload", "remove", "tell"] satisfies KeyedOperation[];
/** What nodes of earlier versions named `tell`, still in a stream when a cluster is upgraded. */
const EARLIER_NAMES: Readonly<Record<string, KeyedOperation>> = { deliver: "tell" };
/** Order ids are UUIDs or `intake-<sequence>`; an actor keeps the latest ones in its snapshot. */
const MAX_ORDER_ID_LENGTH = 128;
/** An actor's input is a few ids (e.g. remote_id, user_id): they end up in store keys, so they are bounded too. */
const MAX_INPUT_FIELDS = 16;
const MAX_INPUT_STRING_LENGTH = 128;
/** Kinds are short names (`imap`, `poller`). */
export const MAX_KIND_LENGTH = 64;

/**
 * A keyed order read from the stream, checked (anyone able to publish on `caliopen.orders.>` could put
 * anything there), or why it is unusable. The message itself is checked by the actor it is for.
 */
export function readKeyedOrder(value: unknown): KeyedOrder | string {
  if (!isJsonObject(value)) return "a keyed order must be a JSON object";
  const { id, op, kind, key, input, message } = value;
  if (typeof id !== "string" || id === "" || id.length > MAX_ORDER_ID_LENGTH) return `a keyed order needs an "id" of 1-${MAX_ORDER_ID_LENGTH} characters`;
  const operation = typeof op === "string" && Object.hasOwn(EARLIER_NAMES, op) ? EARLIER_NAMES[op] : op;
  if (typeof operation !== "string" || !OPERATIONS.includes(operation)) return `unknown keyed operation ${JSON.stringify(String(op).slice(0, 32))}`;
  if (typeof kind !== "string" || kind === "" || kind.length > MAX_KIND_LENGTH) return `a keyed order needs a "kind" of 1-${MAX_KIND_LENGTH} characters`;
  const badKey = actorKeyProblem(key);
  if (badKey !== null) return badKey;
  if (input !== undefined && !isFlatInput(input)) {
    return `a keyed order's "input" must be an object of at most ${MAX_INPUT_FIELDS} strings (at most ${MAX_INPUT_STRING_LENGTH} characters), numbers or booleans`;
  }
  if (message !== undefined && (!isJsonObject(message) || typeof message.type !== "string" || !isJsonObject(message.payload))) {
    return `a keyed order's "message" must be {type: string, payload: object}`;
  }
  return {
    id,
    op: operation as KeyedOperation,
    kind,
    key: key as string,
    ...(input !== undefined && { input: input as Record<string, unknown> }),
    ...(message !== undefined && { message: { type: message.type as string, payload: message.payload as Record<string, unknown> } }),
  };
}

function isFlatInput(input: unknown): boolean {
  if (!isJsonObject(input)) return false;
  const values = Object.values(input);
  return (
    values.length <= MAX_INPUT_FIELDS &&
    values.every((value) => typeof value === "number" || typeof value === "boolean" || (typeof value === "string" && value.length <= MAX_INPUT_STRING_LENGTH))
  );
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
