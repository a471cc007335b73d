// New IMAP connections of a node, spaced out: at most `perSecond` a second, one every 1/perSecond s.
// A node that takes over hundreds of IMAP workers at once (a peer died, the IMAP server restarted and
// dropped every watch) would otherwise open all their connections, TLS and LOGIN included, in the same
// second: the user's server sees a storm, and may refuse or throttle the node's address. Each caller
// takes the next free slot, in the order they asked; a slot left by a caller that gave up is not
// handed back (the pace only gets gentler).
export class ConnectPacer {
  private readonly spacingMs: number;
  private nextSlotAt = 0;

  constructor(
    perSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    if (!(perSecond > 0)) throw new Error(`IMAP connects per second must be positive, got ${perSecond}`);
    this.spacingMs = 1000 / perSecond;
  }

  /** Resolves when the caller may connect; rejects with the signal's reason if it aborts first. */
  async turn(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const now = this.now();
    const slot = Math.max(now, this.nextSlotAt);
    this.nextSlotAt = slot + this.spacingMs;
    const wait = slot - now;
    if (wait <= 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", aborted);
        resolve();
      }, wait);
      const aborted = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", aborted, { once: true });
    });
  }
}
