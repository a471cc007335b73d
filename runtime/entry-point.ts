// An entry point: one shared subject consumed in a queue group. It decodes and validates each order,
// answers every request (errors included), keeps every rejected pub/sub order as a dead letter, and
// hands valid orders to their handler (which may route them to an actor).
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { DeadLetters } from "./dead-letters.ts";
import { decodeJson, encodeJson, isJsonObject } from "./json.ts";
import { validatePayload, type PayloadSchema } from "./payload-schema.ts";
import { failure, ok, type Reply } from "./reply.ts";
import type { Subjects } from "./subjects.ts";

export type OrderMode = "request" | "publish";

export interface OrderContext {
  subject: string;
  order: string;
  mode: OrderMode;
  /** The requester's inbox; undefined for a published order. */
  replyTo?: string;
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

export interface EntryPointSpec {
  subject: string;
  queue: string;
  /** The payload field that names the order. */
  orderField?: string;
  orders: Readonly<Record<string, OrderRoute>>;
}

export interface EntryPointStats {
  subject: string;
  queue: string;
  received: number;
  rejected: number;
  failed: number;
  inFlight: number;
}

export class EntryPoint {
  private subscription: Subscription | null = null;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly stats = { received: 0, rejected: 0, failed: 0 };

  constructor(
    readonly spec: EntryPointSpec,
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly deadLetters: DeadLetters,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.subscription = this.nc.subscribe(this.subjects.wire(this.spec.subject), {
      queue: this.spec.queue,
      callback: (err, msg) => {
        if (err !== null) {
          this.logger.error({ subject: this.spec.subject, err: err.message }, "subscription error");
          return;
        }
        this.onMessage(msg);
      },
    });
  }

  /** Stops taking orders (letting the server hand them to other members of the queue group). */
  async stopTaking(): Promise<void> {
    const subscription = this.subscription;
    this.subscription = null;
    if (subscription !== null && !subscription.isClosed()) await subscription.drain();
  }

  /** Resolves when the handlers already running have finished. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  snapshotStats(): EntryPointStats {
    return { subject: this.spec.subject, queue: this.spec.queue, ...this.stats, inFlight: this.inFlight.size };
  }

  private onMessage(msg: Msg): void {
    this.stats.received += 1;
    const replyTo = msg.reply === undefined || msg.reply === "" ? undefined : msg.reply;
    const decoded = decodeJson(msg.data);
    if (!decoded.ok) return this.reject(msg, replyTo, decoded.error);
    if (!isJsonObject(decoded.value)) return this.reject(msg, replyTo, "payload must be a JSON object");
    const orderField = this.spec.orderField ?? "order";
    const order = decoded.value[orderField];
    const known = Object.keys(this.spec.orders);
    if (typeof order !== "string" || order === "") {
      return this.reject(msg, replyTo, `missing required field "${orderField}" (one of: ${known.join(", ")})`);
    }
    const route = Object.hasOwn(this.spec.orders, order) ? this.spec.orders[order] : undefined;
    if (route === undefined) {
      return this.reject(msg, replyTo, `unknown order "${order}" on ${this.spec.subject} (expected one of: ${known.join(", ")})`);
    }
    const valid = validatePayload(route.schema, decoded.value);
    if (!valid.ok) return this.reject(msg, replyTo, `invalid ${order} order: ${valid.message}`);

    const context: OrderContext = { subject: this.spec.subject, order, mode: route.mode, ...(replyTo !== undefined && { replyTo }) };
    const running = this.run(route, valid.value, context, msg);
    this.inFlight.add(running);
    void running.finally(() => this.inFlight.delete(running));
  }

  private async run(route: OrderRoute, payload: Record<string, unknown>, context: OrderContext, msg: Msg): Promise<void> {
    let reply: Reply | undefined;
    try {
      reply = await route.handle(payload, context);
      // A published order that came with a reply inbox gets an acknowledgement too.
      if (reply === undefined && context.mode === "publish" && context.replyTo !== undefined) reply = ok(`${context.order} accepted`);
    } catch (err) {
      this.stats.failed += 1;
      const message = `${context.order} failed: ${(err as Error).message}`;
      this.logger.error({ subject: context.subject, order: context.order, err: (err as Error).message }, "order handler failed");
      if (context.replyTo === undefined) this.deadLetters.record(msg.subject, message, msg.data);
      reply = failure(message);
    }
    if (reply !== undefined && context.replyTo !== undefined) this.nc.publish(context.replyTo, encodeJson(reply));
  }

  private reject(msg: Msg, replyTo: string | undefined, reason: string): void {
    this.stats.rejected += 1;
    if (replyTo !== undefined) {
      this.logger.info({ subject: this.spec.subject, reason }, "request rejected");
      this.nc.publish(replyTo, encodeJson(failure(reason)));
      return;
    }
    this.deadLetters.record(msg.subject, reason, msg.data);
  }
}
