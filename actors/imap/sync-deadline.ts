// The two deadlines of a sync. A server that stays silent, or trickles bytes without ever finishing an
// answer, keeps a socket's inactivity timer from firing: what counts here is progress (an answer
// complete, a message stored), not bytes. And a server that does make progress, but slowly enough to
// hold the worker for ever, meets the budget of the whole run. Either aborts `signal`, with an error
// that says what was awaited, which closes the connection.
export class SyncTimeout extends Error {
  override readonly name = "SyncTimeout";
}

export class SyncDeadline {
  private readonly controller = new AbortController();
  private stall: NodeJS.Timeout | null = null;
  private readonly budget: NodeJS.Timeout;
  private step = "connecting";

  constructor(private readonly limits: { timeoutMs: number; syncMaxMs: number }) {
    this.budget = setTimeout(
      () =>
        this.expire(
          `the sync ran longer than ${duration(limits.syncMaxMs)} (CALIOPEN_IMAP_SYNC_MAX_MS); what it imported is kept and the next sync goes on from there`,
        ),
      limits.syncMaxMs,
    );
    this.waitingFor("connecting and logging in");
  }

  /** Aborted when a deadline passes; its reason is a SyncTimeout. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Progress: from now on the sync waits for `step`, which has the whole stall timeout to come. */
  waitingFor(step: string): void {
    if (this.controller.signal.aborted) return;
    this.step = step;
    if (this.stall !== null) clearTimeout(this.stall);
    this.stall = setTimeout(
      () =>
        this.expire(
          `no progress for ${duration(this.limits.timeoutMs)} (CALIOPEN_IMAP_TIMEOUT_MS) while waiting for ${this.step}: the IMAP server is silent or too slow`,
        ),
      this.limits.timeoutMs,
    );
  }

  /**
   * The sync waits in the node's own queue (its turn to connect, connect-pacer.ts): no stall timeout
   * until the next waitingFor(), only the whole run's budget. A node taking over many accounts must not
   * fail their syncs for its own pacing.
   */
  queued(step: string): void {
    if (this.controller.signal.aborted) return;
    this.step = step;
    if (this.stall !== null) clearTimeout(this.stall);
    this.stall = null;
  }

  stop(): void {
    if (this.stall !== null) clearTimeout(this.stall);
    clearTimeout(this.budget);
  }

  /** The sync is not wanted any more: what it awaits is given up now (a login in progress too). */
  cancel(): void {
    this.stop();
    this.controller.abort(new Error("sync stopped"));
  }

  private expire(message: string): void {
    this.stop();
    this.controller.abort(new SyncTimeout(message));
  }
}

function duration(ms: number): string {
  if (ms % 3600_000 === 0) return `${ms / 3600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1_000 === 0) return `${ms / 1_000} s`;
  return `${ms} ms`;
}
