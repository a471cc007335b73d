// How the API emits the contract's orders. A published order is handed to JetStream when a stream
// captures its subject (the nodes' intake stream does for every publish-only subject), so the API's
// answer means the order is stored and will be handled even if no node is up right now; without such a
// stream it is a plain publish. Requests go through one shared reply inbox.
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ContractSubject, OrderFields, OrderName } from "../contract/contract-table.ts";
import { decodeBusJson, encodeJson, isJsonObject } from "../runtime/json.ts";
import type { Reply } from "../runtime/reply.ts";
import { NoResponders, Requester, RequestTimeout } from "../runtime/requester.ts";
import type { Subjects } from "../runtime/subjects.ts";
import { HttpError } from "./http-error.ts";

export { NoResponders, RequestTimeout };

/** How long the emitter trusts what it found out about a subject's stream. */
const STREAM_CHECK_MS = 10_000;

export class OrderEmitter {
  private readonly js: JetStreamClient;
  private jsm: Promise<JetStreamManager> | null = null;
  private readonly storedBy = new Map<string, { stored: boolean; checkedAt: number }>();
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
    if (await this.isStored(wire)) {
      try {
        await this.js.publish(wire, data, { timeout: 5_000 });
        return;
      } catch (err) {
        this.storedBy.delete(wire);
        throw new HttpError(503, `the change is saved, but the ${order} order could not be queued (${(err as Error).message}); retry the request`);
      }
    }
    // No stream captures the subject (no node ever ran on this NATS): subscribers still get it.
    this.logger.warn({ subject, order }, "no intake stream captures this subject: order published without being stored");
    this.nc.publish(wire, data);
    await this.nc.flush();
  }

  /** Whether a JetStream stream captures the subject; remembered for a while. */
  private async isStored(wire: string): Promise<boolean> {
    const known = this.storedBy.get(wire);
    if (known !== undefined && Date.now() - known.checkedAt < STREAM_CHECK_MS) return known.stored;
    this.jsm ??= jetstreamManager(this.nc);
    const jsm = await this.jsm;
    let stored: boolean;
    try {
      await jsm.streams.find(wire);
      stored = true;
    } catch (err) {
      // Only a clear "no stream" means none: JetStream being unreachable must not turn into a plain
      // publish that the nodes (which read the stream) would never see.
      if (!/no stream matches/i.test((err as Error).message)) {
        throw new HttpError(503, `the change is saved, but JetStream cannot be reached to queue the order (${(err as Error).message}); retry the request`);
      }
      stored = false;
    }
    this.storedBy.set(wire, { stored, checkedAt: Date.now() });
    return stored;
  }

  /** Sends a request and returns the reply; throws RequestTimeout or NoResponders. */
  async request<S extends ContractSubject, O extends OrderName<S>>(subject: S, order: O, fields: OrderFields<S, O>, timeoutMs: number): Promise<Reply> {
    const msg = await this.requester.request(this.subjects.wire(subject), encodeJson({ order, ...fields }), timeoutMs);
    const decoded = decodeBusJson(msg.data);
    if (!decoded.ok || !isJsonObject(decoded.value) || typeof decoded.value.error !== "boolean") {
      throw new Error(`${subject} answered something that is not a reply: ${decoded.ok ? JSON.stringify(decoded.value).slice(0, 200) : decoded.error}`);
    }
    return { ...decoded.value, error: decoded.value.error, message: String(decoded.value.message ?? "") };
  }

  close(): void {
    this.requester.close();
  }
}
