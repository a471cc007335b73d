// A request client for load: one wildcard subscription on a private inbox, each request published with
// reply subject `<inbox>.<id>`. Unlike nc.request() it creates no subscription, timer or error object
// per call (runtime/requester.ts: ~25k req/s for nc.request() vs 52–59k/s this way). Both sides of the request
// bench use it, so neither is penalised by the client.
import { createInbox, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";

interface Pending {
  resolve(data: Uint8Array): void;
  reject(error: Error): void;
  sentAt: number;
}

export class InboxClient {
  private readonly prefix = `${createInbox()}.`;
  private readonly pending = new Map<number, Pending>();
  private readonly subscription: Subscription;
  // Expiry by a periodic sweep rather than one timer per request: timers would cost more than the request.
  private readonly sweeper: NodeJS.Timeout;
  private nextId = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.subscription = nc.subscribe(`${this.prefix}*`, {
      callback: (err, msg) => {
        if (err === null) this.onReply(msg);
      },
    });
    this.sweeper = setInterval(() => this.expire(), Math.min(1_000, timeoutMs));
    this.sweeper.unref();
  }

  request(subject: string, data: Uint8Array): Promise<Uint8Array> {
    const id = ++this.nextId;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, sentAt: Date.now() });
      this.nc.publish(subject, data, { reply: this.prefix + id });
    });
  }

  close(): void {
    clearInterval(this.sweeper);
    this.subscription.unsubscribe();
    for (const pending of this.pending.values()) pending.reject(new Error("client closed"));
    this.pending.clear();
  }

  private onReply(msg: Msg): void {
    const id = Number(msg.subject.slice(this.prefix.length));
    const pending = this.pending.get(id);
    if (pending === undefined) return; // late reply to an expired request
    this.pending.delete(id);
    pending.resolve(msg.data);
  }

  private expire(): void {
    const oldest = Date.now() - this.timeoutMs;
    for (const [id, pending] of this.pending) {
      if (pending.sentAt > oldest) break; // the map is in sending order
      this.pending.delete(id);
      pending.reject(new Error(`no reply within ${this.timeoutMs} ms`));
    }
  }
}
