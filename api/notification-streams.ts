// The users' notification event streams open on this node: bounded per node and per token
// (event-stream-slots.ts), kept alive by a comment every few seconds, each one's token checked again
// now and then (a revoked token keeps its streams at most `recheckMs`), all ended when the API closes.
// Each stream reads its own user's feed (notification-feed.ts): one JetStream consumer per stream.
import type { ServerResponse } from "node:http";
import type { FastifyReply } from "fastify";
import type { Logger } from "pino";
import { EventStreamSlots, type StreamBounds } from "./event-stream-slots.ts";
import { HttpError } from "./http-error.ts";
import { NotificationEventStream } from "./notification-event-stream.ts";
import type { LiveFeed } from "./notification-feed.ts";

export interface NotificationStreamLimits extends StreamBounds {
  /** A reader that takes nothing for this long is disconnected (it resumes with Last-Event-ID). */
  slowReaderMs: number;
  /** How often a stream's token is checked again. */
  recheckMs: number;
}

export const DEFAULT_NOTIFICATION_STREAM_LIMITS: NotificationStreamLimits = {
  maxStreams: 256,
  maxStreamsPerToken: 4,
  slowReaderMs: 30_000,
  recheckMs: 30_000,
};

/** Under the API's idle timeout, so that a quiet stream stays open. */
const KEEP_ALIVE_EVERY_MS = 15_000;

/** A stream's place on this node, taken before its feed is opened (so that streams opening at once cannot all pass the bounds). */
export interface StreamSlot {
  readonly tokenId: string;
  stream: NotificationEventStream | null;
  stillAdmitted: () => Promise<boolean>;
}

export class NotificationStreams {
  private readonly open: EventStreamSlots<StreamSlot>;
  private timers: NodeJS.Timeout[] = [];
  private closing = false;

  constructor(
    private readonly limits: NotificationStreamLimits,
    private readonly logger: Logger,
  ) {
    this.open = new EventStreamSlots(limits, "notification streams");
  }

  /** Takes a place for a new stream of this token; throws a 503 when the API is closing, a 429 past the bounds. */
  reserve(tokenId: string, reply: FastifyReply, stillAdmitted: () => Promise<boolean>): StreamSlot {
    if (this.closing) throw new HttpError(503, "this node is stopping: try another node, or again later");
    this.open.admit(tokenId, reply);
    const slot: StreamSlot = { tokenId, stream: null, stillAdmitted };
    this.open.add(slot);
    if (this.open.size === 1) this.startTimers();
    return slot;
  }

  /** Gives a place back when its stream could not start. */
  release(slot: StreamSlot): void {
    this.detach(slot);
  }

  /** Serves `feed` on `out` (its head sent) until the client goes, the feed ends, its token stops admitting it, or the API closes. */
  serve(slot: StreamSlot, out: ServerResponse, feed: LiveFeed): void {
    const stream = new NotificationEventStream(out, slot.tokenId, this.limits.slowReaderMs);
    slot.stream = stream;
    out.on("close", () => this.detach(slot));
    // Closed meanwhile (the API, or a recheck): the stream ends at once.
    if (this.closing || !this.open.has(slot) || out.destroyed) stream.close(true);
    stream.run(feed).then(
      () => this.detach(slot),
      (err: Error) => {
        this.logger.warn({ err: err.message }, "a notification stream failed");
        this.detach(slot);
      },
    );
  }

  /** Ends every stream (an open response would hold the server open). */
  close(): void {
    this.closing = true;
    for (const slot of [...this.open]) {
      this.open.delete(slot);
      slot.stream?.close(true);
    }
    this.stopTimers();
  }

  private detach(slot: StreamSlot): void {
    if (!this.open.delete(slot)) return;
    slot.stream?.close();
    if (this.open.size === 0) this.stopTimers();
  }

  private startTimers(): void {
    this.timers = [
      setInterval(() => {
        for (const { stream } of this.open) stream?.keepAlive();
      }, KEEP_ALIVE_EVERY_MS),
      setInterval(() => void this.recheck(), this.limits.recheckMs),
    ];
  }

  private stopTimers(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
  }

  private async recheck(): Promise<void> {
    for (const slot of [...this.open]) {
      if (!(await slot.stillAdmitted().catch(() => false))) this.detach(slot);
    }
  }
}
