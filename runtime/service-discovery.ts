// The NATS micro services discovery protocol (ADR-32), answered for one service instance, so that
// `nats micro ls|info|stats` and any tool that speaks it list what runs. Every instance answers
//   $SRV.<VERB>   $SRV.<VERB>.<name>   $SRV.<VERB>.<name>.<id>      VERB = PING, INFO or STATS
// with one JSON reply (io.nats.micro.v1.<verb>_response). Only the discovery side: the endpoints are
// served elsewhere, and say here what they are and what they counted.
//
// Anyone on the bus may ask: the request's payload is never read, a reply goes only to a safe reply
// subject, and every reply is bounded (the endpoints are fixed when the service starts, their strings
// cut to a bound length).
import { type Msg, type NatsConnection, nuid, type Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { encodeJson } from "./json.ts";
import { isSafeReplySubject } from "./subjects.ts";

export const SRV_PREFIX = "$SRV";
const VERBS = ["PING", "INFO", "STATS"] as const;
type Verb = (typeof VERBS)[number];

/** Longest string a reply carries for a field that may come from outside (an error's message). */
export const MAX_SERVICE_TEXT_LENGTH = 256;

export interface ServiceEndpointStats {
  /** Orders or requests the endpoint took. */
  requests: number;
  /** Those that ended in an error (refused, failed, turned away). */
  errors: number;
  lastError: string | null;
  /** Time spent in the endpoint's handler, all requests together, in milliseconds. */
  processingMs: number;
}

export interface ServiceEndpoint {
  /** A name for people (ADR-32: letters, digits, `-` and `_`). */
  name: string;
  subject: string;
  queueGroup: string;
  metadata?: Record<string, string>;
  stats(): ServiceEndpointStats;
}

export interface ServiceDescription {
  /** The kind of service, shared by all its instances (`[A-Za-z0-9_-]+`). */
  name: string;
  /** SemVer. */
  version: string;
  description: string;
  /** Unique per instance (a subject token); a fresh one when left out. */
  id?: string;
  metadata?: Record<string, string>;
}

interface Identity {
  name: string;
  id: string;
  version: string;
  metadata: Record<string, string>;
}

export class ServiceDiscovery {
  readonly id: string;
  private readonly started = new Date().toISOString();
  private readonly identity: Identity;
  private subscriptions: Subscription[] = [];
  /** PING and INFO never change: encoded once. */
  private readonly ping: Uint8Array;
  private readonly info: Uint8Array;

  constructor(
    private readonly nc: NatsConnection,
    description: ServiceDescription,
    private readonly endpoints: readonly ServiceEndpoint[],
    private readonly logger: Logger,
  ) {
    if (!/^[A-Za-z0-9_-]+$/.test(description.name)) throw new Error(`service name "${description.name}" must be letters, digits, '_' or '-'`);
    this.id = description.id ?? nuid.next();
    if (!/^[A-Za-z0-9_-]+$/.test(this.id)) throw new Error(`service id "${this.id}" must be letters, digits, '_' or '-'`);
    this.identity = { name: description.name, id: this.id, version: description.version, metadata: bounded(description.metadata ?? {}) };
    this.ping = encodeJson({ type: "io.nats.micro.v1.ping_response", ...this.identity });
    this.info = encodeJson({
      type: "io.nats.micro.v1.info_response",
      ...this.identity,
      description: cut(description.description),
      endpoints: endpoints.map((endpoint) => ({
        name: endpoint.name,
        subject: endpoint.subject,
        queue_group: endpoint.queueGroup,
        metadata: bounded(endpoint.metadata ?? {}),
      })),
    });
  }

  /** The subjects one instance answers on: all services, those of its name, this instance. */
  subjects(): string[] {
    return VERBS.flatMap((verb) => this.verbSubjects(verb));
  }

  start(): void {
    this.subscriptions = VERBS.flatMap((verb) =>
      this.verbSubjects(verb).map((subject) => this.nc.subscribe(subject, { callback: (err, msg) => this.answer(verb, err, msg) })),
    );
  }

  stop(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions = [];
  }

  private verbSubjects(verb: Verb): string[] {
    const { name, id } = this.identity;
    return [`${SRV_PREFIX}.${verb}`, `${SRV_PREFIX}.${verb}.${name}`, `${SRV_PREFIX}.${verb}.${name}.${id}`];
  }

  private answer(verb: Verb, err: Error | null, msg: Msg): void {
    // A request without a reply subject asks nothing; the payload is never read.
    if (err !== null || !msg.reply) return;
    if (!isSafeReplySubject(msg.reply)) {
      this.logger.debug({ subject: msg.subject, replyLength: msg.reply.length }, "service discovery request with an unusable reply subject ignored");
      return;
    }
    try {
      msg.respond(verb === "PING" ? this.ping : verb === "INFO" ? this.info : this.stats());
    } catch (error) {
      // A stats callback that throws, or the connection closing: this request goes unanswered.
      this.logger.warn({ subject: msg.subject, err: (error as Error).message }, "service discovery request not answered");
    }
  }

  private stats(): Uint8Array {
    return encodeJson({
      type: "io.nats.micro.v1.stats_response",
      ...this.identity,
      started: this.started,
      endpoints: this.endpoints.map((endpoint) => {
        const stats = endpoint.stats();
        const processing = nanoseconds(stats.processingMs);
        return {
          name: endpoint.name,
          subject: endpoint.subject,
          queue_group: endpoint.queueGroup,
          num_requests: stats.requests,
          num_errors: stats.errors,
          // Go's micro package (behind the nats CLI) reads last_error as a string: "" when none.
          last_error: stats.lastError === null ? "" : cut(stats.lastError),
          processing_time: processing,
          average_processing_time: stats.requests > 0 ? Math.round(processing / stats.requests) : 0,
        };
      }),
    });
  }
}

/** Whole nanoseconds, as the protocol counts time (an integer, so that Go reads it as an int64). */
function nanoseconds(ms: number): number {
  return Number.isFinite(ms) && ms > 0 ? Math.round(ms * 1e6) : 0;
}

function cut(text: string): string {
  return text.length <= MAX_SERVICE_TEXT_LENGTH ? text : `${text.slice(0, MAX_SERVICE_TEXT_LENGTH - 1)}…`;
}

function bounded(metadata: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([key, value]) => [cut(key), cut(value)]));
}
