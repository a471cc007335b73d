// Writes one actor's snapshots to the store, in order and by compare-and-swap, newest first: while a
// write is in flight only the latest snapshot waits for the next one. It also keeps the ids of the
// latest messages the state reflects (written with it) and tells each delivered message when the state
// after it is durable.
import type { Logger } from "pino";
import { backoffDelay, DEFAULT_BACKOFF } from "./backoff.ts";
import { SNAPSHOT_SCHEMA_VERSION, SnapshotConflict, type SnapshotStore } from "./snapshot-store.ts";

/**
 * Told once about a delivered message: "done" when the actor's state after it is saved (or needed no
 * saving, or the message was refused), "retry" when the actor stopped before that and another owner
 * should take the message again.
 */
export type SettleCallback = (outcome: "done" | "retry") => void;

export interface WriterIdentity {
  kind: string;
  key: string;
  nodeId: string;
  /** Unique per process: recognises this process's own earlier writes. */
  incarnation: string;
}

// How many recent message ids an actor remembers to drop redeliveries.
const SEEN_IDS = 64;

export class SnapshotWriter {
  /** The latest settled snapshot: what a restarted machine resumes from. */
  settled: unknown = undefined;
  revision = 0;
  private savedJson: string | null = null;
  private pendingSave: unknown = undefined;
  /** The ids remembered, oldest first (saved with the snapshot), and the same as a set to look them up. */
  private seen: string[] | null = null;
  private seenSet: Set<string> | null = null;
  private saving: Promise<void> | null = null;
  // True exactly while the write loop runs (cleared synchronously, unlike `saving`).
  private writing = false;
  private closed = false;
  // Settle callbacks waiting for the next write to complete.
  private awaitingSave: SettleCallback[] | null = null;
  /** What must be done before the next write (e.g. record that a resting actor is awake), retried until done. */
  private beforeNextWrite: (() => Promise<void>) | null = null;

  /** `store` null: the family does not persist; messages settle at once. */
  constructor(
    private readonly store: SnapshotStore | null,
    private readonly identity: WriterIdentity,
    private readonly logger: Logger,
    private readonly onFenced: (error: Error) => void,
  ) {}

  /**
   * Loads the stored snapshot. One last written by another process is written again first: that bumps
   * its revision, so the previous owner's late writes fail their compare-and-swap (fencing).
   */
  async restore(): Promise<void> {
    if (this.store === null) return;
    const { kind, key, nodeId, incarnation } = this.identity;
    const loaded = await this.store.load(kind, key);
    if (loaded === null) return;
    this.settled = loaded.record.snapshot;
    this.seen = loaded.record.seen ?? null;
    this.seenSet = this.seen === null ? null : new Set(this.seen);
    this.revision = loaded.revision;
    if (loaded.record.owner !== incarnation) {
      this.revision = await this.store.save({ ...loaded.record, node: nodeId, owner: incarnation, savedAt: new Date().toISOString() }, loaded.revision);
    }
    this.savedJson = recordJson(loaded.record.snapshot, this.seen);
  }

  hasSeen(id: string): boolean {
    return this.seenSet?.has(id) ?? false;
  }

  /** Records a message id; even when the machine's state does not change, it is saved with it. */
  remember(id: string): void {
    this.seen ??= [];
    this.seenSet ??= new Set(this.seen);
    const seen = this.seen;
    seen.push(id);
    this.seenSet.add(id);
    if (seen.length > SEEN_IDS) for (const forgotten of seen.splice(0, seen.length - SEEN_IDS)) this.seenSet.delete(forgotten);
    if (this.settled !== undefined) this.persist(this.settled);
  }

  /** Holds every write until `step` succeeded once (it is called again after a failure, with a backoff). */
  holdWritesUntil(step: () => Promise<void>): void {
    this.beforeNextWrite = step;
  }

  /** Queues the snapshot for writing. */
  persist(snapshot: unknown): void {
    this.settled = snapshot;
    if (this.store === null) return;
    this.pendingSave = snapshot;
    if (this.writing) return; // the running loop picks the newest snapshot up
    const loop = this.writeLoop();
    this.saving = loop;
    void loop.finally(() => {
      if (this.saving === loop) this.saving = null;
    });
  }

  /** Calls `settle` once everything queued so far is written. */
  settleWhenSaved(settle: SettleCallback): void {
    if (this.store === null || (!this.writing && this.pendingSave === undefined)) settle("done");
    else {
      this.awaitingSave ??= [];
      this.awaitingSave.push(settle);
    }
  }

  /** Waits for the write in flight; what could not be written is settled "retry". */
  async close(): Promise<void> {
    this.closed = true;
    if (this.saving !== null) await this.saving.catch(() => undefined);
    this.settleAwaiting("retry");
  }

  async forget(): Promise<void> {
    await this.store?.remove(this.identity.kind, this.identity.key);
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    try {
      await this.writePending();
    } finally {
      this.writing = false;
      // Messages that changed nothing since the last write are as durable as that write.
      this.settleAwaiting(this.closed && this.pendingSave !== undefined ? "retry" : "done");
    }
  }

  private async writePending(): Promise<void> {
    let attempt = 0;
    while (this.pendingSave !== undefined && this.store !== null) {
      const step = this.beforeNextWrite;
      if (step !== null) {
        try {
          await step();
          if (this.beforeNextWrite === step) this.beforeNextWrite = null;
        } catch (err) {
          attempt += 1;
          this.logger.warn({ key: this.identity.key, err: (err as Error).message, attempt }, "step before a snapshot write failed, retrying");
          await new Promise((resolve) => setTimeout(resolve, backoffDelay(DEFAULT_BACKOFF, attempt)));
          if (this.closed && attempt > 5) return;
          continue;
        }
      }
      const snapshot = this.pendingSave;
      this.pendingSave = undefined;
      const seen = this.seen === null ? undefined : [...this.seen];
      const json = recordJson(snapshot, seen ?? null);
      if (json === this.savedJson) {
        this.settleAwaiting("done");
        continue;
      }
      // The messages handled so far are reflected in this snapshot.
      const covered = this.awaitingSave;
      this.awaitingSave = null;
      const { kind, key, nodeId, incarnation } = this.identity;
      try {
        const record = {
          v: SNAPSHOT_SCHEMA_VERSION,
          kind,
          key,
          snapshot,
          savedAt: new Date().toISOString(),
          node: nodeId,
          owner: incarnation,
          ...(seen && { seen }),
        };
        this.revision = await this.store.save(record, this.revision);
        this.savedJson = json;
        attempt = 0;
        for (const settle of covered ?? []) settle("done");
      } catch (err) {
        // A write that timed out may have landed, and a retry with the old revision would then look
        // like someone else's write. Whoever wrote last tells: if it was this process, go on from there.
        const current = await this.store.load(kind, key).catch(() => undefined);
        if (current !== undefined && current !== null && current.record.owner === incarnation) {
          this.revision = current.revision;
          if (recordJson(current.record.snapshot, current.record.seen ?? null) === json) {
            this.savedJson = json;
            for (const settle of covered ?? []) settle("done");
            continue;
          }
        } else if (err instanceof SnapshotConflict) {
          for (const settle of [...(covered ?? []), ...(this.awaitingSave ?? [])]) settle("retry");
          this.awaitingSave = null;
          this.onFenced(err);
          return;
        }
        if (covered !== null) this.awaitingSave = [...covered, ...(this.awaitingSave ?? [])];
        // NATS unreachable or JetStream unavailable: keep the newest snapshot and try again.
        attempt += 1;
        this.pendingSave ??= snapshot;
        // The cell's logger already carries the kind.
        this.logger.warn({ key, err: (err as Error).message, attempt }, "snapshot write failed, retrying");
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(DEFAULT_BACKOFF, attempt)));
        if (this.closed && attempt > 5) return;
      }
    }
  }

  private settleAwaiting(outcome: "done" | "retry"): void {
    const waiting = this.awaitingSave;
    this.awaitingSave = null;
    for (const settle of waiting ?? []) settle(outcome);
  }
}

function recordJson(snapshot: unknown, seen: string[] | null): string {
  return JSON.stringify([snapshot, seen]);
}
