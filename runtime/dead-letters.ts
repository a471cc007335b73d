// Orders nobody could take (malformed, unknown, refused) are kept in a JetStream stream where an
// operator can read them (`caliopen deadletters`), besides being logged and counted.
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { decodeBusJson, decodeJson, encodeJson } from "./json.ts";
import { redactSecrets } from "./redact.ts";
import { isSafeReplySubject, type Subjects } from "./subjects.ts";

export interface DeadLetter {
  seq?: number;
  subject: string;
  /** The subject it came on, cut, when that subject could not be used as is. */
  received_on?: string;
  reason: string;
  node: string;
  at: string;
  payload: unknown;
}

const MAX_PAYLOAD_CHARS = 64 * 1024;
/**
 * Subjects come from the bus (anyone may publish on `caliopen.orders.>`): one too long or odd to be
 * part of a dead letter's subject is filed under this one, and the counts keep this many subjects.
 */
const MAX_SUBJECT_LENGTH = 200;
const ODD_SUBJECT = "caliopen.unreadable-subject";
const MAX_COUNTED_SUBJECTS = 1_000;
const OTHER_SUBJECTS = "(other subjects)";
const RETENTION_NS = 14 * 24 * 3600 * 1e9;

export class DeadLetters {
  private readonly counts = new Map<string, number>();
  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly subjects: Subjects,
    private readonly nodeId: string,
    private readonly logger: Logger,
  ) {}

  static streamName(subjects: Subjects): string {
    return subjects.resource("caliopen_deadletters");
  }

  static async open(nc: NatsConnection, subjects: Subjects, nodeId: string, logger: Logger, replicas = 1): Promise<DeadLetters> {
    const jsm = await jetstreamManager(nc);
    const name = DeadLetters.streamName(subjects);
    const config = { name, subjects: [subjects.deadLetter(">")], max_age: RETENTION_NS, max_msgs: 100_000, num_replicas: replicas };
    try {
      await jsm.streams.info(name);
    } catch {
      await jsm.streams.add(config);
    }
    return new DeadLetters(jetstream(nc), jsm, name, subjects, nodeId, logger);
  }

  /** Logs, counts and stores a message that could not be taken. Never throws. */
  record(subject: string, reason: string, data: Uint8Array): void {
    const received = this.subjects.local(subject);
    const local = received.length <= MAX_SUBJECT_LENGTH && isSafeReplySubject(received) ? received : ODD_SUBJECT;
    const counted = this.counts.has(local) || this.counts.size < MAX_COUNTED_SUBJECTS ? local : OTHER_SUBJECTS;
    this.counts.set(counted, (this.counts.get(counted) ?? 0) + 1);
    const letter: DeadLetter = {
      subject: local,
      ...(local !== received && { received_on: received.slice(0, MAX_SUBJECT_LENGTH) }),
      reason: reason.length > MAX_PAYLOAD_CHARS ? `${reason.slice(0, MAX_PAYLOAD_CHARS)}…` : reason,
      node: this.nodeId,
      at: new Date().toISOString(),
      payload: readablePayload(data),
    };
    this.logger.warn({ subject: local, reason }, "order rejected and kept as a dead letter");
    this.js.publish(this.subjects.deadLetter(local), encodeJson(letter)).catch((err: Error) => {
      this.logger.error({ subject: local, reason, err: err.message }, "could not store dead letter (it is logged above)");
    });
  }

  /** How many messages this node rejected, per subject. */
  countsBySubject(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  /** The newest `limit` dead letters of the whole deployment, oldest first. */
  async list(limit: number): Promise<DeadLetter[]> {
    const info = await this.jsm.streams.info(this.stream);
    const out: DeadLetter[] = [];
    const first = Math.max(info.state.first_seq, info.state.last_seq - limit + 1);
    for (let seq = first; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const stored = await this.jsm.streams.getMessage(this.stream, { seq }).catch(() => null);
      if (stored === null) continue;
      const decoded = decodeJson(stored.data);
      if (decoded.ok) out.push({ ...(decoded.value as DeadLetter), seq });
    }
    return out;
  }
}

function readablePayload(data: Uint8Array): unknown {
  // Within the bus limits, so that redacting and re-encoding it stays small and shallow.
  const decoded = decodeBusJson(data);
  if (decoded.ok) return redactSecrets(decoded.value);
  const text = new TextDecoder().decode(data);
  return text.length > MAX_PAYLOAD_CHARS ? `${text.slice(0, MAX_PAYLOAD_CHARS)}…` : text;
}
