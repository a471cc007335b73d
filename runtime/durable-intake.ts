// Subjects captured by a JetStream stream as they are published, so that an order is stored the moment
// it is sent: a node that takes it and dies before handling it does not lose it, the next node gets it
// again. Each subject is read through one durable consumer shared by every node (a work queue).
import { AckPolicy, type Consumer, DeliverPolicy, type JetStreamManager, jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Subjects } from "./subjects.ts";

/** A message taken by a node that died is given to another after this long. */
export const INTAKE_ACK_WAIT_MS = 10_000;

export class DurableIntake {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly subjects: Subjects,
    readonly stream: string,
  ) {}

  static streamName(subjects: Subjects): string {
    return subjects.resource("caliopen_intake");
  }

  /** Creates the stream (or updates its subjects) so that it captures exactly `subjects`. */
  static async open(nc: NatsConnection, subjects: Subjects, captured: readonly string[], replicas: number): Promise<DurableIntake> {
    const jsm = await jetstreamManager(nc);
    const name = DurableIntake.streamName(subjects);
    const wanted = captured.map((subject) => subjects.wire(subject)).sort();
    const existing = await jsm.streams.info(name).catch(() => null);
    if (existing === null) {
      await jsm.streams.add({
        name,
        subjects: wanted,
        retention: RetentionPolicy.Workqueue,
        max_age: 14 * 24 * 3600 * 1e9,
        num_replicas: replicas,
      });
    } else if ([...(existing.config.subjects ?? [])].sort().join() !== wanted.join()) {
      await jsm.streams.update(name, { ...existing.config, subjects: wanted });
    }
    return new DurableIntake(nc, jsm, subjects, name);
  }

  /** The shared consumer of one captured subject, named after its queue group. */
  async consumer(subject: string, group: string): Promise<Consumer> {
    const durable = `${group}_${subject}`.replace(/[^A-Za-z0-9_-]/g, "_");
    const existing = await this.jsm.consumers.info(this.stream, durable).catch(() => null);
    if (existing === null) {
      await this.jsm.consumers.add(this.stream, {
        durable_name: durable,
        filter_subject: this.subjects.wire(subject),
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: INTAKE_ACK_WAIT_MS * 1_000_000,
        max_deliver: -1,
        max_ack_pending: 10_000,
      });
    }
    return jetstream(this.nc).consumers.get(this.stream, durable);
  }
}
