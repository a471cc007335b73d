// One client's stream of notifications, as server-sent events: each notification is an event
// `notification` whose `id` is its stream sequence (what the client's Last-Event-ID gives back on
// reconnecting). The feed is read one notification at a time and the next is read only once the socket
// took the last one: a slow reader holds the feed's small prefetch and one socket buffer, never a queue
// that grows. A reader that takes nothing for `slowReaderMs` is disconnected; it resumes where it was,
// since the history keeps what it missed.
import type { ServerResponse } from "node:http";
import type { LiveFeed, StoredNotification } from "./notification-feed.ts";

export class NotificationEventStream {
  private feed: LiveFeed | null = null;
  /** The socket's buffer is full: wait for 'drain'. */
  private congested = false;
  private closed = false;

  constructor(
    private readonly out: ServerResponse,
    readonly tokenId: string,
    private readonly slowReaderMs: number,
  ) {}

  /**
   * Sends `ready` (where the stream starts, and why notifications may have been missed before it), then
   * each notification of the feed, until the feed or the stream ends.
   */
  async run(feed: LiveFeed): Promise<void> {
    this.feed = feed;
    if (this.closed) return this.close();
    this.event("ready", { after: feed.after, ...(feed.gap !== null && { gap: feed.gap }) });
    let stuck = false;
    try {
      for await (const notification of feed.messages) {
        if (this.closed) break;
        if (!this.send(notification) && !(await this.drained())) {
          stuck = true;
          break;
        }
      }
    } finally {
      // A reader that stopped reading would keep an ended answer's buffer: its connection goes.
      this.close(stuck);
    }
  }

  /** A comment line: keeps proxies and the idle timeout from closing a quiet stream. */
  keepAlive(): void {
    if (!this.closed && !this.congested) this.congested = !this.out.write(": keep-alive\n\n");
  }

  /** Ends the answer and the feed; `andConnection` closes the connection too (the node is stopping: its server waits for every connection). */
  close(andConnection = false): void {
    const feed = this.feed;
    this.feed = null;
    void feed?.stop();
    if (andConnection) this.out.socket?.destroy();
    if (this.closed) return;
    this.closed = true;
    this.out.end();
  }

  /** False once the socket's buffer is full. */
  private send(notification: StoredNotification): boolean {
    if (this.closed) return false;
    this.congested = !this.out.write(`id: ${notification.seq}\nevent: notification\ndata: ${JSON.stringify(notification)}\n\n`);
    return !this.congested;
  }

  private event(name: string, data: Record<string, unknown>): void {
    this.congested = !this.out.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  /** Whether the socket drained within `slowReaderMs` (false: it closed, or the reader is too slow). */
  private drained(): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.out.off("drain", onDrain);
        this.out.off("close", onClose);
        if (ok) this.congested = false;
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), this.slowReaderMs);
      this.out.on("drain", onDrain);
      this.out.on("close", onClose);
    });
  }
}
