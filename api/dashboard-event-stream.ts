// One dashboard client's server-sent events, at a bounded rate. Events go out as long as the stream's
// budget (a token bucket of `perSecond`, refilled continuously) and the socket keep up; beyond, they
// wait in a small map keyed by what they are about (an actor's transitions: only the latest is kept,
// with a count of those it replaced), and past that map's size they are dropped and counted. A slow
// or hostile reader therefore costs the node a bounded amount of memory, never a growing buffer.
import type { ServerResponse } from "node:http";

/** Events waiting at most, per stream. */
const MAX_PENDING = 256;

interface Pending {
  event: string;
  data: Record<string, unknown>;
  /** Events of the same key it replaced. */
  coalesced: number;
}

export class DashboardEventStream {
  private budget: number;
  private refilledAt = Date.now();
  private readonly pending = new Map<string, Pending>();
  private dropped = 0;
  /** The socket's buffer is full: wait for 'drain'. */
  private congested = false;
  private closed = false;

  constructor(
    private readonly out: ServerResponse,
    private readonly perSecond: number,
    readonly tokenId: string,
  ) {
    this.budget = perSecond;
    out.on("drain", () => {
      this.congested = false;
      this.flush();
    });
  }

  /** Sends now if the budget allows, else keeps the latest event per `key` (an actor, or the event's name). */
  send(event: string, data: Record<string, unknown>, key: string = event): void {
    if (this.closed) return;
    if (this.pending.size === 0 && this.spend()) {
      this.write(event, data);
      return;
    }
    const earlier = this.pending.get(key);
    if (earlier === undefined && this.pending.size >= MAX_PENDING) {
      this.dropped += 1;
      return;
    }
    // Re-inserted: a coalesced event goes out in the order of its latest version.
    this.pending.delete(key);
    this.pending.set(key, { event, data, coalesced: earlier === undefined ? 0 : earlier.coalesced + 1 });
  }

  /** Sends what waits, as far as the budget allows; then how many were dropped. */
  flush(): void {
    for (const [key, waiting] of this.pending) {
      if (this.closed || !this.spend()) return;
      this.pending.delete(key);
      this.write(waiting.event, waiting.coalesced === 0 ? waiting.data : { ...waiting.data, coalesced: waiting.coalesced });
    }
    if (this.dropped > 0 && this.spend()) {
      this.write("dropped", { count: this.dropped });
      this.dropped = 0;
    }
  }

  /** A comment line, outside the budget: keeps proxies and the idle timeout from closing a quiet stream. */
  keepAlive(): void {
    if (!this.closed && !this.congested) this.out.write(": keep-alive\n\n");
  }

  /** Ends the answer; `andConnection` closes the connection too (the node is stopping: its server waits for every connection). */
  close(andConnection = false): void {
    if (this.closed) return;
    this.closed = true;
    this.pending.clear();
    this.out.end(() => {
      if (andConnection) this.out.socket?.destroy();
    });
  }

  private spend(): boolean {
    if (this.congested) return false;
    const now = Date.now();
    this.budget = Math.min(this.perSecond, this.budget + ((now - this.refilledAt) / 1_000) * this.perSecond);
    this.refilledAt = now;
    if (this.budget < 1) return false;
    this.budget -= 1;
    return true;
  }

  private write(event: string, data: Record<string, unknown>): void {
    if (!this.out.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) this.congested = true;
  }
}
