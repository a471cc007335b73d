// Runs the actors of one family on this node: starts, reloads and stops them on orders, and restarts a
// crashed actor from its last settled snapshot with exponential backoff.
import type { Logger } from "pino";
import type { ActorCell } from "../actor-cell.ts";
import { type ActorFamily, RELOADED_EVENT } from "../actor-family.ts";
import type { ActorHost, CellFailureListener } from "../actor-host.ts";
import { type BackoffPolicy, backoffDelay } from "../backoff.ts";
import { KeyTurns } from "../key-turns.ts";
import type { Placement } from "./placement.ts";

export const RESTART_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 30_000, factor: 2, jitter: 0.2 };
/** A crash this long after the previous one starts the backoff over. */
const STABLE_AFTER_MS = 60_000;

/** Where the existence of keyed actors is recorded, so that another node can take them over. */
export interface ActorDirectory {
  add(kind: string, key: string, input: Record<string, unknown>): Promise<void>;
  remove(kind: string, key: string): Promise<void>;
}

interface CrashHistory {
  attempts: number;
  lastCrashAt: number;
  timer: NodeJS.Timeout | null;
}

export class FamilySupervisor implements CellFailureListener {
  private readonly crashes = new Map<string, CrashHistory>();
  /** Each key's lifecycle operations, one after the other (see `inTurn`). */
  private readonly turns = new KeyTurns();
  private closed = false;

  constructor(
    private readonly host: ActorHost,
    readonly family: ActorFamily,
    private readonly placement: Placement,
    private readonly logger: Logger,
    private readonly policy: BackoffPolicy = RESTART_BACKOFF,
    private readonly directory: ActorDirectory | null = null,
  ) {
    host.register(family, this);
  }

  get kind(): string {
    return this.family.kind;
  }

  /** Starts the actor (idempotent). Input is used only when there is no snapshot to restore. */
  async start(key: string, input: Record<string, unknown> = {}): Promise<ActorCell> {
    this.assertOpen();
    this.assertLocal(key);
    return this.inTurn(key, async () => {
      await this.directory?.add(this.kind, key, input);
      const cell = await this.host.activate(this.kind, key, input);
      this.logger.info({ kind: this.kind, key }, "actor started");
      return cell;
    });
  }

  /** Starts an actor that already exists (it was running on another node, or before a restart). */
  async resume(key: string, input: Record<string, unknown> = {}): Promise<ActorCell> {
    this.assertOpen();
    return this.inTurn(key, () => this.host.activate(this.kind, key, input));
  }

  /** Places an actor recorded as resting (see ActorHost.rest): restored only when it wakes. */
  async rest(key: string, input: Record<string, unknown>, wakeAt: number | null): Promise<void> {
    this.assertOpen();
    await this.inTurn(key, async () => void this.host.rest(this.kind, key, input, wakeAt));
  }

  /** Stops the actor, keeping its snapshot, and starts it again so it reads fresh configuration. */
  async reload(key: string, input: Record<string, unknown> = {}): Promise<ActorCell> {
    this.assertOpen();
    this.assertLocal(key);
    return this.inTurn(key, async () => {
      this.forgetCrashes(key);
      await this.directory?.add(this.kind, key, input);
      await this.host.stop(this.kind, key);
      const cell = await this.host.activate(this.kind, key, input);
      // A machine that waits on something (a retry after a failure) may take this as its cue to go now.
      cell.notify({ type: RELOADED_EVENT, payload: input });
      this.logger.info({ kind: this.kind, key }, "actor reloaded");
      return cell;
    });
  }

  /** Stops the actor and drops its snapshot. Returns false when it was not running. */
  async remove(key: string): Promise<boolean> {
    return this.inTurn(key, async () => {
      this.forgetCrashes(key);
      await this.directory?.remove(this.kind, key);
      const wasRunning = await this.host.stop(this.kind, key, { forget: true });
      this.logger.info({ kind: this.kind, key, wasRunning }, "actor removed");
      return wasRunning;
    });
  }

  /**
   * Runs one key's lifecycle operations one after the other: the removal of an actor that finished
   * (onFinished, outside any order) is done before an order that starts it again, never interleaved
   * with it (which could leave a new actor without its directory entry or its snapshot).
   */
  private inTurn<T>(key: string, operation: () => Promise<T>): Promise<T> {
    return this.turns.run(key, operation);
  }

  onCrash(cell: ActorCell): void {
    if (this.closed) return;
    const now = Date.now();
    const history = this.crashes.get(cell.key) ?? { attempts: 0, lastCrashAt: 0, timer: null };
    history.attempts = now - history.lastCrashAt > STABLE_AFTER_MS ? 1 : history.attempts + 1;
    history.lastCrashAt = now;
    const delay = backoffDelay(this.policy, history.attempts);
    this.logger.warn({ kind: cell.kind, key: cell.key, attempt: history.attempts, delayMs: delay }, "restarting crashed actor after backoff");
    history.timer = setTimeout(() => {
      history.timer = null;
      if (!this.closed && this.host.get(cell.kind, cell.key) === cell) {
        this.host.metrics.actorRestarted(cell.kind);
        cell.restart();
      }
    }, delay);
    this.crashes.set(cell.key, history);
  }

  onFenced(cell: ActorCell): void {
    this.forgetCrashes(cell.key);
    void this.host.stop(cell.kind, cell.key);
  }

  /** A machine that reached its final state is done for good: removed like on a remove order. */
  onFinished(cell: ActorCell): void {
    if (this.host.get(cell.kind, cell.key) !== cell) return;
    this.remove(cell.key).catch((err: Error) => this.logger.warn({ kind: cell.kind, key: cell.key, err: err.message }, "could not remove a finished actor"));
  }

  /** Cancels pending restarts; the actors themselves are stopped by the host. */
  close(): void {
    this.closed = true;
    for (const key of this.crashes.keys()) this.forgetCrashes(key);
  }

  private forgetCrashes(key: string): void {
    const history = this.crashes.get(key);
    if (history?.timer) clearTimeout(history.timer);
    this.crashes.delete(key);
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`the ${this.kind} supervisor is shutting down`);
  }

  private assertLocal(key: string): void {
    if (!this.placement.isLocal(this.kind, key)) {
      throw new Error(`${this.kind}/${key} belongs to node ${this.placement.ownerOf(this.kind, key)}`);
    }
  }
}
