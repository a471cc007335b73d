// Reads a durable consumer of the intake stream for an entry point, asking only for as many orders as
// it has free handlers: the backlog waits in JetStream, where it is safe, and every order taken starts
// at once (none waits in memory long enough to be redelivered to another node meanwhile).
import type { ConsumeCallback, Consumer, ConsumerMessages, FetchMessages, JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";

// A pull of the intake waits this long for orders before it is made again.
const PULL_EXPIRES_MS = 5_000;
// After a failed pull (a NATS server lost, heartbeats missed).
const PULL_RETRY_MS = 1_000;
/** Failed pulls in a row before they are logged as a warning. */
const PULLS_FAILED_BEFORE_WARNING = 3;

export interface IntakePullerOptions {
  consumer: Consumer;
  nc: NatsConnection;
  /** The entry point's subject, for logs. */
  subject: string;
  logger: Logger;
  /** Handlers of the entry point: orders running plus orders asked for never exceed it. */
  maxConcurrent: number;
  /** Handlers running now. */
  running(): number;
  /** Hands a delivered order to the entry point. */
  deliver(msg: JsMsg): void;
}

export class IntakePuller {
  /** Pulls still open, and the work reading each. */
  private readonly pulls = new Map<Promise<ConsumerMessages>, Promise<void>>();
  /** Orders asked for and not delivered yet. */
  private requested = 0;
  private loop: Promise<void> | null = null;
  /** Pulls that failed in a row (reset by one that ended normally). */
  private failedPulls = 0;
  private stopping = false;
  /** The loop, waiting for room to ask for more. */
  private slotWaiter: (() => void) | null = null;

  constructor(private readonly options: IntakePullerOptions) {}

  start(): void {
    this.loop = this.pull();
  }

  /** A handler finished (or a pull ended): there may be room to ask for more. */
  wake(): void {
    const waiter = this.slotWaiter;
    this.slotWaiter = null;
    waiter?.();
  }

  /** Asks for nothing more and closes the pulls still open; what they held is redelivered to other nodes. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
    this.loop = null;
    for (const pull of this.pulls.keys()) await pull.then((messages) => messages.close()).catch(() => undefined);
    await Promise.all(this.pulls.values());
  }

  private get free(): number {
    return this.options.maxConcurrent - this.options.running() - this.requested;
  }

  private get ended(): boolean {
    // A connection closed for good takes no more orders (the node stops, or reports it lost).
    return this.stopping || this.options.nc.isClosed();
  }

  // A new pull is made as soon as a quarter of the handlers could take more than has been asked for,
  // while the earlier ones may still be delivering: no round trip is waited for between two batches.
  private async pull(): Promise<void> {
    const step = Math.ceil(this.options.maxConcurrent / 4);
    while (!this.ended) {
      while (!this.ended && this.free < step) await new Promise<void>((resolve) => (this.slotWaiter = resolve));
      if (this.ended) break;
      const asked = this.free;
      this.requested += asked;
      let delivered = 0;
      // Handed over as they arrive, in the socket's own turn, as consume() does: the same code in
      // nats.js, though fetch()'s type leaves `callback` out; iterating instead costs about twice the CPU
      // per order (the acks are no longer written together).
      const options: FetchMessages & ConsumeCallback = {
        max_messages: asked,
        // Short pulls with heartbeats: a pull lost with a NATS server is noticed in about two seconds.
        expires: PULL_EXPIRES_MS,
        idle_heartbeat: 1_000,
        callback: (msg) => {
          delivered += 1;
          this.requested -= 1;
          this.options.deliver(msg);
        },
      };
      const pull = this.options.consumer.fetch(options);
      this.pulls.set(
        pull,
        this.read(pull, () => asked - delivered),
      );
    }
  }

  /** Waits for a pull to end; what it did not deliver (it expired, failed or was closed) is asked again by a next one. */
  private async read(pull: Promise<ConsumerMessages>, undelivered: () => number): Promise<void> {
    try {
      const messages = await pull;
      if (this.stopping) await messages.close();
      const ended = await messages.closed();
      if (ended instanceof Error) throw ended;
      this.failedPulls = 0;
    } catch (err) {
      if (!this.ended) {
        this.failedPulls += 1;
        // One failed pull is routine while a stream's consumer elects a leader (a NATS cluster starting,
        // a server lost): only pulls that keep failing are worth a warning.
        const level = this.failedPulls >= PULLS_FAILED_BEFORE_WARNING ? "warn" : "info";
        this.options.logger[level](
          { subject: this.options.subject, err: (err as Error).message, failedInARow: this.failedPulls },
          "pulling orders failed: pulling again",
        );
        await new Promise((resolve) => setTimeout(resolve, PULL_RETRY_MS));
      }
    } finally {
      this.requested -= undelivered();
      this.pulls.delete(pull);
      this.wake();
    }
  }
}
