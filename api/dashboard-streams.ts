// The dashboard's live updates: every actor transition (`caliopen.debug.transitions.>`) and, every few
// seconds, the nodes as `caliopen.debug.nodes` describes them, sent to each open event stream. One
// subscription and one poll serve all the streams of a node, and exist only while a stream is open.
// Streams are bounded per node and per token (event-stream-slots.ts); each stream's rate is bounded by DashboardEventStream.
import type { ServerResponse } from "node:http";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { decodeBusJson, encodeJson, isJsonObject } from "../runtime/json.ts";
import { redactSecrets } from "../runtime/redact.ts";
import { MAX_ACTOR_KEY_LENGTH, type Subjects } from "../runtime/subjects.ts";
import { DashboardEventStream } from "./dashboard-event-stream.ts";
import type { DashboardLimits } from "./dashboard-limits.ts";
import { EventStreamSlots } from "./event-stream-slots.ts";

const NODES_EVERY_MS = 5_000;
const FLUSH_EVERY_MS = 200;
/** Under the API's idle timeout, so that a quiet stream stays open. */
const KEEP_ALIVE_EVERY_MS = 15_000;
/** A state larger than this (encoded) is not forwarded as is. */
const MAX_STATE_CHARS = 2_048;
const MAX_NAME_CHARS = 128;

interface Open {
  stream: DashboardEventStream;
  readonly tokenId: string;
  /** Whether the stream's token still admits it. */
  stillAdmitted: () => Promise<boolean>;
}

export class DashboardStreams {
  private readonly open: EventStreamSlots<Open>;
  private subscription: Subscription | null = null;
  private timers: NodeJS.Timeout[] = [];
  private closing = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly limits: DashboardLimits,
    private readonly readNodes: () => Promise<unknown[]>,
    private readonly logger: Logger,
  ) {
    this.open = new EventStreamSlots(limits, "dashboard event streams");
  }

  /** Whether the API is closing: new streams are refused (503). */
  get stopping(): boolean {
    return this.closing;
  }

  /** Why a new stream for this token is refused now (429), or null. */
  refusal(tokenId: string): string | null {
    return this.open.refusal(tokenId);
  }

  /** Serves events on `out` (headers already sent) until the client goes, its token stops admitting it, or the API closes. */
  attach(tokenId: string, out: ServerResponse, stillAdmitted: () => Promise<boolean>): void {
    const entry: Open = { stream: new DashboardEventStream(out, this.limits.eventsPerSecond, tokenId), tokenId, stillAdmitted };
    this.open.add(entry);
    out.on("close", () => this.detach(entry));
    if (this.open.size === 1) this.startFeeds();
    void this.sendNodes([entry]);
  }

  /** Ends every stream (the API is closing: an open response would hold its server open). */
  close(): void {
    this.closing = true;
    for (const entry of [...this.open]) entry.stream.close(true);
    this.stopFeeds();
  }

  private detach(entry: Open): void {
    if (!this.open.delete(entry)) return;
    entry.stream.close();
    if (this.open.size === 0) this.stopFeeds();
  }

  private startFeeds(): void {
    this.subscription = this.nc.subscribe(this.subjects.debug("transitions.>"), {
      callback: (err, msg) => {
        if (err !== null) return;
        const transition = readTransition(msg.data);
        if (transition === null) return;
        const actor = `${transition.kind}/${transition.key}`;
        for (const { stream } of this.open) stream.send("transition", transition, actor);
      },
    });
    this.timers = [
      setInterval(() => void this.sendNodes([...this.open]), NODES_EVERY_MS),
      setInterval(() => {
        for (const { stream } of this.open) stream.flush();
      }, FLUSH_EVERY_MS),
      setInterval(() => {
        for (const { stream } of this.open) stream.keepAlive();
      }, KEEP_ALIVE_EVERY_MS),
      setInterval(() => void this.recheck(), this.limits.recheckMs),
    ];
  }

  private stopFeeds(): void {
    this.subscription?.unsubscribe();
    this.subscription = null;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }

  private async sendNodes(to: Open[]): Promise<void> {
    if (to.length === 0) return;
    try {
      const nodes = await this.readNodes();
      for (const { stream } of to) stream.send("nodes", { nodes });
    } catch (err) {
      this.logger.debug({ err: (err as Error).message }, "dashboard: could not read the nodes");
    }
  }

  private async recheck(): Promise<void> {
    for (const entry of [...this.open]) {
      if (!(await entry.stillAdmitted().catch(() => false))) this.detach(entry);
    }
  }
}

/** A transition as actors publish it (runtime/transition-log.ts), checked and bounded: anyone allowed on the subject could publish one. */
export function readTransition(data: Uint8Array): Record<string, unknown> | null {
  const decoded = decodeBusJson(data);
  if (!decoded.ok || !isJsonObject(decoded.value)) return null;
  const { kind, key, node, from, to, event, at } = decoded.value;
  if (typeof kind !== "string" || kind.length > MAX_NAME_CHARS || typeof key !== "string" || key.length > MAX_ACTOR_KEY_LENGTH) return null;
  return {
    kind,
    key,
    node: typeof node === "string" ? node.slice(0, MAX_NAME_CHARS) : null,
    from: boundedState(from),
    to: boundedState(to),
    event: typeof event === "string" ? event.slice(0, MAX_NAME_CHARS) : null,
    at: typeof at === "string" ? at.slice(0, 40) : null,
  };
}

function boundedState(value: unknown): unknown {
  if (value === undefined) return null;
  return encodeJson(value).length <= MAX_STATE_CHARS ? redactSecrets(value) : "(state too large to show)";
}
