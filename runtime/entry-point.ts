// An entry point: one shared subject, consumed by every node but each order taken by one of them. It
// decodes (within the bus limits) and validates each order, answers every request (errors included,
// except to a reply subject the node must not publish to), keeps every rejected
// pub/sub order as a dead letter, and hands valid orders to their handler (which may route them to an
// actor). Orders come either from a core NATS queue subscription (subjects with requests: replies need
// the requester's inbox) or from a durable consumer of the intake stream (published orders, kept until
// a node has handled them).
//
// At most `maxConcurrent` handlers run at once. A durable consumer is pulled from only for free slots
// (intake-puller.ts), so the backlog waits in JetStream, where it is safe, and every order taken starts
// (and says it is working) at once. Core NATS cannot be held back: up to `maxConcurrent` more orders wait their turn in
// memory, and beyond that a request is answered "busy, try again" (a published order there becomes a
// dead letter saying so).
import type { Consumer } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { type BackoffPolicy, backoffDelay } from "./backoff.ts";
import type { DeadLetters } from "./dead-letters.ts";
import { IntakePuller } from "./intake-puller.ts";
import { decodeBusJson, encodeJson, isJsonObject } from "./json.ts";
import { type HandlingTimer, type OrderCounters, RuntimeMetrics } from "./metrics.ts";
import { coreDelivery, type Delivery, durableDelivery } from "./order-delivery.ts";
import { BUSY, type OrderContext, OrderRefused, type OrderRoute, RetryLater } from "./orders.ts";
import { validatePayload } from "./payload-schema.ts";
import { failure, ok, type Reply } from "./reply.ts";
import { isSafeReplySubject, type Subjects } from "./subjects.ts";

const RETRY_LATER: BackoffPolicy = { initialMs: 2_000, maxMs: 5 * 60_000, factor: 3, jitter: 0.2 };

/** Handlers of one entry point running at once, when the node is not told otherwise (CALIOPEN_MAX_CONCURRENT_ORDERS). */
export const DEFAULT_MAX_CONCURRENT_ORDERS = 64;

export interface EntryPointLimits {
  /** Handlers running at once; as many more core NATS orders may wait. */
  maxConcurrent: number;
}

export interface EntryPointSpec {
  subject: string;
  queue: string;
  /** The payload field that names the order. */
  orderField?: string;
  orders: Readonly<Record<string, OrderRoute>>;
}

// Well under the intake's ack wait.
const WORKING_EVERY_MS = 4_000;

export interface EntryPointStats {
  subject: string;
  queue: string;
  received: number;
  rejected: number;
  failed: number;
  inFlight: number;
  /** Core NATS orders waiting for a free handler. */
  queued: number;
  /** Orders turned away because every handler was busy and the queue full. */
  busy: number;
  /** Time spent in handlers, all orders together (waiting for a handler not included). */
  processingMs: number;
  /** Why the last order refused, failed or turned away was (cut to MAX_LAST_ERROR_LENGTH), or null. */
  lastError: string | null;
}

/** A reason may quote the order (an unknown order's name): kept short. */
export const MAX_LAST_ERROR_LENGTH = 256;

export class EntryPoint {
  private subscription: Subscription | null = null;
  private intake: IntakePuller | null = null;
  private stopping = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Core NATS orders admitted but waiting for a handler, oldest first (at most maxConcurrent). */
  private readonly queued: (() => Promise<void>)[] = [];
  /** Time spent in handlers; the other figures are summed from the order counters when asked. */
  private processingMs = 0;
  private lastError: string | null = null;
  private readonly maxConcurrent: number;
  /** Per known order, its counts; any other name is counted under unknownOrder. */
  private readonly counters: ReadonlyMap<string, OrderCounters>;
  private readonly unknownOrder: OrderCounters;
  private readonly handling: HandlingTimer;

  constructor(
    readonly spec: EntryPointSpec,
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly deadLetters: DeadLetters,
    private readonly logger: Logger,
    limits: EntryPointLimits = { maxConcurrent: DEFAULT_MAX_CONCURRENT_ORDERS },
    metrics: RuntimeMetrics = new RuntimeMetrics(),
  ) {
    this.maxConcurrent = Math.max(1, Math.floor(limits.maxConcurrent));
    const counters = metrics.orderCounters(spec.subject, Object.keys(spec.orders));
    this.counters = counters.known;
    this.unknownOrder = counters.unknown;
    this.handling = metrics.handlingTimer(spec.subject);
  }

  /** Takes orders from a core NATS queue subscription. */
  start(): void {
    this.subscription = this.nc.subscribe(this.subjects.wire(this.spec.subject), {
      queue: this.spec.queue,
      callback: (err, msg) => {
        if (err !== null) {
          this.logger.error({ subject: this.spec.subject, err: err.message }, "subscription error");
          return;
        }
        this.onDelivery(coreDelivery(msg));
      },
    });
  }

  /** Takes orders from a durable consumer of the intake stream, only as many as there are free handlers. */
  async startDurable(consumer: Consumer): Promise<void> {
    this.intake = new IntakePuller({
      consumer,
      nc: this.nc,
      subject: this.spec.subject,
      logger: this.logger,
      maxConcurrent: this.maxConcurrent,
      running: () => this.inFlight.size,
      deliver: (msg) => this.onDelivery(durableDelivery(msg)),
    });
    this.intake.start();
  }

  /** Stops taking orders (other nodes take them from now on). */
  async stopTaking(): Promise<void> {
    this.stopping = true;
    const subscription = this.subscription;
    this.subscription = null;
    // A drain's flush is never answered when the connection closes meanwhile (a credential withdrawn).
    if (subscription !== null && !subscription.isClosed()) await Promise.race([subscription.drain().catch(() => undefined), this.nc.closed()]);
    await this.intake?.stop();
  }

  /** Resolves when the handlers already running (and the orders waiting for one) have finished. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  snapshotStats(): EntryPointStats {
    const totals = { received: 0, rejected: 0, failed: 0, busy: 0 };
    for (const counters of [...this.counters.values(), this.unknownOrder]) {
      totals.received += counters.received;
      totals.rejected += counters.refused;
      totals.failed += counters.failed;
      totals.busy += counters.busy;
    }
    return {
      subject: this.spec.subject,
      queue: this.spec.queue,
      ...totals,
      processingMs: this.processingMs,
      inFlight: this.inFlight.size,
      queued: this.queued.length,
      lastError: this.lastError,
    };
  }

  /** Whether this entry point reads a durable consumer (published orders) rather than a core NATS queue group. */
  get durable(): boolean {
    return this.intake !== null;
  }

  private noteError(reason: string): void {
    this.lastError = reason.length <= MAX_LAST_ERROR_LENGTH ? reason : reason.slice(0, MAX_LAST_ERROR_LENGTH);
  }

  private onDelivery(delivery: Delivery): void {
    if (delivery.replyTo !== undefined && !isSafeReplySubject(delivery.replyTo)) {
      // Publishing there could get this node's connection closed by the server: no reply, no work.
      this.noteError("request with an unusable reply subject");
      this.unknownOrder.received += 1;
      this.unknownOrder.refused += 1;
      delivery.done();
      this.logger.warn({ subject: this.spec.subject, replyLength: delivery.replyTo.length }, "request with an unusable reply subject dropped without a reply");
      return;
    }
    const decoded = decodeBusJson(delivery.data);
    if (!decoded.ok) {
      this.reject(delivery, decoded.error, this.unknownOrder);
      return;
    }
    if (!isJsonObject(decoded.value)) {
      this.reject(delivery, "payload must be a JSON object", this.unknownOrder);
      return;
    }
    const orderField = this.spec.orderField ?? "order";
    const order = decoded.value[orderField];
    const known = Object.keys(this.spec.orders);
    if (typeof order !== "string" || order === "") {
      this.reject(delivery, `missing required field "${orderField}" (one of: ${known.join(", ")})`, this.unknownOrder);
      return;
    }
    const route = Object.hasOwn(this.spec.orders, order) ? this.spec.orders[order] : undefined;
    // A name that is not one of the subject's orders is counted as UNKNOWN: the bus cannot add label values.
    const counters = (route === undefined ? undefined : this.counters.get(order)) ?? this.unknownOrder;
    if (route === undefined) {
      this.reject(delivery, `unknown order "${order}" on ${this.spec.subject} (expected one of: ${known.join(", ")})`, counters);
      return;
    }
    const valid = validatePayload(route.schema, decoded.value);
    if (!valid.ok) {
      this.reject(delivery, `invalid ${order} order: ${valid.message}`, counters);
      return;
    }
    counters.received += 1;

    const context: OrderContext = {
      subject: this.spec.subject,
      order,
      mode: route.mode,
      ...(delivery.replyTo !== undefined && { replyTo: delivery.replyTo }),
      ...(delivery.deliveryId !== undefined && { deliveryId: delivery.deliveryId }),
    };
    // (Closures passed on, not named: see order-delivery.ts.)
    if (this.inFlight.size < this.maxConcurrent) this.launch(() => this.run(route, valid.value, context, delivery, counters));
    // Only core NATS gets here (a durable pull asks for free handlers only): wait, within a bound.
    else if (this.queued.length < this.maxConcurrent) this.queued.push(() => this.run(route, valid.value, context, delivery, counters));
    else this.turnAway(delivery, context, counters);
  }

  private launch(start: () => Promise<void>): void {
    const running = start();
    this.inFlight.add(running);
    void running.finally(() => {
      this.inFlight.delete(running);
      const next = this.queued.shift();
      if (next !== undefined) this.launch(next);
      else this.intake?.wake();
    });
  }

  /** Every handler busy and as many orders waiting: a request is told to try again. */
  private turnAway(delivery: Delivery, context: OrderContext, counters: OrderCounters): void {
    this.noteError(BUSY);
    counters.busy += 1;
    if (delivery.deliveryId !== undefined) {
      delivery.retry();
      return;
    }
    delivery.done();
    if (context.replyTo !== undefined) {
      this.nc.publish(context.replyTo, encodeJson(failure(BUSY)));
      return;
    }
    this.deadLetter(delivery, `${BUSY}: ${this.maxConcurrent} orders of ${this.spec.subject} running on this node and as many waiting`, counters);
  }

  private async run(route: OrderRoute, payload: Record<string, unknown>, context: OrderContext, delivery: Delivery, counters: OrderCounters): Promise<void> {
    let reply: Reply | undefined;
    const heartbeat = delivery.working === undefined ? undefined : setInterval(() => delivery.working?.(), WORKING_EVERY_MS);
    const started = performance.now();
    try {
      reply = await route.handle(payload, context);
      counters.applied += 1;
      // A published order that came with a reply inbox gets an acknowledgement too.
      if (reply === undefined && context.mode === "publish" && context.replyTo !== undefined) reply = ok(`${context.order} accepted`);
      delivery.done();
    } catch (err) {
      if (err instanceof OrderRefused) {
        this.noteError(err.message);
        counters.refused += 1;
        this.logger.info({ subject: context.subject, order: context.order, reason: err.message }, "order refused");
        if (context.replyTo === undefined) this.deadLetter(delivery, err.message, counters);
        delivery.done();
        reply = failure(err.message);
        return this.answer(context, reply);
      }
      if (this.stopping && delivery.deliveryId !== undefined) {
        // This node is going away: another one takes the order again.
        delivery.retry();
        return;
      }
      if (err instanceof RetryLater && delivery.retryAfter !== undefined && (delivery.attempt ?? 1) < err.attempts) {
        const pause = backoffDelay(RETRY_LATER, delivery.attempt ?? 1);
        this.logger.warn(
          { subject: context.subject, order: context.order, attempt: delivery.attempt, retryInMs: pause, err: err.message },
          "order failed, will be tried again",
        );
        delivery.retryAfter(pause);
        return;
      }
      counters.failed += 1;
      const message = `${context.order} failed: ${(err as Error).message}`;
      this.noteError(message);
      this.logger.error({ subject: context.subject, order: context.order, err: (err as Error).message }, "order handler failed");
      if (context.replyTo === undefined) this.deadLetter(delivery, message, counters);
      delivery.done();
      reply = failure(message);
    } finally {
      clearInterval(heartbeat);
      const handledMs = performance.now() - started;
      this.processingMs += handledMs;
      this.handling.observe(handledMs / 1_000);
    }
    this.answer(context, reply);
  }

  private answer(context: OrderContext, reply: Reply | undefined): void {
    if (reply !== undefined && context.replyTo !== undefined) this.nc.publish(context.replyTo, encodeJson(reply));
  }

  private reject(delivery: Delivery, reason: string, counters: OrderCounters): void {
    this.noteError(reason);
    counters.received += 1;
    counters.refused += 1;
    delivery.done();
    if (delivery.replyTo !== undefined) {
      this.logger.info({ subject: this.spec.subject, reason }, "request rejected");
      this.nc.publish(delivery.replyTo, encodeJson(failure(reason)));
      return;
    }
    this.deadLetter(delivery, reason, counters);
  }

  private deadLetter(delivery: Delivery, reason: string, counters: OrderCounters): void {
    counters.deadLettered += 1;
    this.deadLetters.record(delivery.subject, reason, delivery.data);
  }
}
