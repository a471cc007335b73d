// Which nodes are alive, judged without comparing clocks across machines: each node writes a heartbeat
// into a KV bucket every `heartbeatMs`; a node is alive while this node keeps *seeing* its heartbeats
// (local monotonic time, not counting this thread's own stalls), and dead after `deadAfterMs` without one. A node that cannot write its own
// heartbeat for `fenceAfterMs` (< deadAfterMs) considers itself fenced off and must stop its actors
// before anyone may take them over. The heartbeats are written by a thread of their own
// (heartbeat-thread.ts), so a busy main thread is not taken for a dead node.
//
// Works on nats-server 2.9: no per-key TTL and no watch event for expiry are needed.
import { performance } from "node:perf_hooks";
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { decodeJson, isJsonObject } from "../json.ts";
import { monotonicMs } from "./heartbeat-protocol.ts";
import type { HeartbeatThread } from "./heartbeat-thread.ts";

export interface MembershipTiming {
  heartbeatMs: number;
  fenceAfterMs: number;
  deadAfterMs: number;
  /** A main thread that shows no sign of life for this long is stuck: its heartbeats stop. */
  mainStallLimitMs: number;
}

/**
 * Timing from one figure, the failure-detection window: a node unseen for that long is dead; a node
 * that could not renew its own heartbeat for 60 % of it fences itself, leaving margin for the time it
 * takes to stop its actors; heartbeats go eight times per window. A main thread stalled by a full
 * collection or saturated cores keeps its actors for up to 10 s (or five windows): it is busy, not dead.
 */
export function membershipTiming(deadAfterMs: number): MembershipTiming {
  return {
    heartbeatMs: Math.max(25, Math.round(deadAfterMs / 8)),
    fenceAfterMs: Math.round(deadAfterMs * 0.6),
    deadAfterMs,
    mainStallLimitMs: Math.max(10_000, deadAfterMs * 5),
  };
}

export const DEFAULT_TIMING: MembershipTiming = membershipTiming(2_000);

/** The KV bucket the heartbeats go to (under the deployment's namespace). */
export const MEMBERSHIP_BUCKET = "caliopen_nodes";

/** The rule a node applies to another's heartbeats: unseen for this long (local monotonic time), it is dead. */
export function silentTooLong(silentForMs: number, timing: MembershipTiming): boolean {
  return silentForMs >= timing.deadAfterMs;
}

export interface Member {
  node: string;
  leaving: boolean;
  info: Record<string, unknown>;
  /** Listening time (see Membership.listeningTime) of the last heartbeat seen. */
  lastSeen: number;
}

export type MembershipEvent = { type: "changed"; live: string[] } | { type: "fenced" } | { type: "recovered" };

export class Membership {
  private readonly members = new Map<string, Member>();
  private readonly revisions = new Map<string, number>();
  // This node's own heartbeats, as seen through the watch: proof that the watch itself is current.
  private lastSelfSeen = -Infinity;
  private watchStartedAt = -Infinity;
  private rewatching = false;
  private readonly listeners = new Set<(event: MembershipEvent) => void>();
  private live: string[] = [];
  private healthySince = -Infinity;
  private gapsSeen = 0;
  private clockReadAt = performance.now();
  private stalledMs = 0;
  private fenced = true;
  private timers: NodeJS.Timeout[] = [];
  private watchStop: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly kv: KV,
    readonly nodeId: string,
    /** Writes this node's heartbeats into `kv`. */
    private readonly beats: HeartbeatThread,
    private readonly logger: Logger,
    readonly timing: MembershipTiming = DEFAULT_TIMING,
    /** Heartbeats stop while this says no (the connection the actors use is down): the node then fences itself. */
    private readonly canServe: () => boolean = () => true,
  ) {}

  async start(): Promise<void> {
    await this.beats.start(this.canServe());
    await this.watch();
    this.timers.push(setInterval(() => this.check(), this.checkEveryMs()));
    this.check();
  }

  /**
   * Watches the heartbeats: updates first, then the current entries, so nothing is missed (revisions
   * sort out the overlap). Called again when the watch has stalled.
   */
  private async watch(): Promise<void> {
    this.watchStop?.();
    const watcher = await this.kv.watch({ include: "updates" });
    this.watchStop = () => watcher.stop();
    this.watchStartedAt = this.listeningTime();
    void (async () => {
      for await (const entry of watcher) this.observe(entry.key, entry.operation, entry.value, entry.revision);
    })().catch(() => undefined);
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    for (const key of keys) {
      const entry = await this.kv.get(key);
      if (entry !== null) this.observe(entry.key, entry.operation, entry.value, entry.revision);
    }
  }

  /**
   * Local monotonic time without this thread's own stalls: a node is judged silent for the time this
   * thread was able to hear it, so that a main thread blocked for seconds (a full collection, saturated
   * cores) does not wake up taking every node, itself included, for dead. The check timer reads it every
   * 100 ms; a read that comes much later than that is a stall, and the excess is not counted.
   */
  private listeningTime(): number {
    const now = performance.now();
    const elapsed = now - this.clockReadAt;
    const expected = this.checkEveryMs();
    if (elapsed > expected * 2) this.stalledMs += elapsed - expected;
    this.clockReadAt = now;
    return now - this.stalledMs;
  }

  private checkEveryMs(): number {
    return Math.min(100, this.timing.heartbeatMs);
  }

  on(listener: (event: MembershipEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Live nodes that are not leaving, sorted: the candidates for owning shards. */
  liveNodes(): string[] {
    return this.live;
  }

  /** Known = has a heartbeat entry. A node that left cleanly, or died long ago, is not known. */
  isKnown(node: string): boolean {
    return this.members.has(node);
  }

  /**
   * Reads the node's heartbeat entry directly: a node writes its heartbeat before it claims anything,
   * so a claim seen before the heartbeat (two watchers, no order between them) is not taken for an
   * abandoned one.
   */
  async confirmGone(node: string): Promise<boolean> {
    const entry = await this.kv.get(node);
    if (entry !== null) this.observe(entry.key, entry.operation, entry.value, entry.revision);
    return entry === null || entry.operation !== "PUT";
  }

  isAlive(node: string): boolean {
    const member = this.members.get(node);
    return member !== undefined && !silentTooLong(this.listeningTime() - member.lastSeen, this.timing);
  }

  /** This node's own heartbeat is current: it may run actors. */
  get healthy(): boolean {
    return !this.fenced;
  }

  /**
   * This node has been healthy for long enough to trust its view of who is dead: after a partition it
   * must first see the others' heartbeats again before taking anything over.
   */
  get mayTakeOver(): boolean {
    const now = this.listeningTime();
    return !this.fenced && now - this.healthySince >= this.timing.deadAfterMs && this.watchIsCurrent(now);
  }

  /** A watch that stopped delivering would make every other node look dead: trust it only while it shows our own beats. */
  private watchIsCurrent(now: number): boolean {
    return now - this.lastSelfSeen < this.timing.fenceAfterMs;
  }

  /**
   * Before taking a silent node's shards: read its heartbeat directly. If it moved on since we last saw
   * it, our watch was lagging and the node is alive.
   */
  async confirmSilent(node: string): Promise<boolean> {
    const before = this.revisions.get(node) ?? 0;
    const entry = await this.kv.get(node);
    if (entry === null || entry.operation !== "PUT") return true;
    if (entry.revision > before) {
      this.observe(entry.key, entry.operation, entry.value, entry.revision);
      return false;
    }
    return true;
  }

  /** Announces that this node is leaving: the others stop counting it as an owner. */
  async leave(): Promise<void> {
    await this.beats.leave();
    this.recompute();
  }

  /** Removes this node's heartbeat so the others notice at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.watchStop?.();
    await this.beats.stop();
    await this.kv.delete(this.nodeId).catch(() => undefined);
  }

  private observe(node: string, operation: string, value: Uint8Array, revision: number): void {
    const lastRevision = this.revisions.get(node) ?? 0;
    if (revision <= lastRevision) return;
    this.revisions.set(node, revision);
    if (operation !== "PUT") {
      if (this.members.delete(node)) this.logger.info({ member: node }, "node left");
      this.recompute();
      return;
    }
    const decoded = decodeJson(value);
    const body = decoded.ok && isJsonObject(decoded.value) ? decoded.value : {};
    if (node === this.nodeId) this.lastSelfSeen = this.listeningTime();
    const known = this.members.get(node);
    const leaving = body.leaving === true;
    if (known === undefined) this.logger.info({ member: node }, "node seen");
    else if (leaving && !known.leaving) this.logger.info({ member: node }, "node leaving");
    this.members.set(node, { node, leaving, info: isJsonObject(body.info) ? body.info : {}, lastSeen: this.listeningTime() });
    this.recompute();
  }

  private check(): void {
    if (this.stopped) return;
    const now = this.listeningTime();
    // A gap between two beats fences even when it has already ended: others may have taken us for dead.
    const gaps = this.beats.gaps();
    const gapped = gaps !== this.gapsSeen;
    this.gapsSeen = gaps;
    const current = !gapped && monotonicMs() - this.beats.beatConfirmedAt() < this.timing.fenceAfterMs;
    if (this.fenced && current) {
      this.fenced = false;
      this.healthySince = now;
      this.emit({ type: "recovered" });
    } else if (!this.fenced && !current) {
      this.fenced = true;
      const why = gapped ? "own heartbeats had a gap (process frozen, or heartbeats stopped)" : "own heartbeat not renewed";
      this.logger.error({ fenceAfterMs: this.timing.fenceAfterMs }, `${why}: fencing this node off`);
      this.emit({ type: "fenced" });
    }
    // (Not before the first watch began: start() beats once before it watches.)
    const watching = this.watchStop !== null;
    if (watching && !this.fenced && !this.watchIsCurrent(now) && now - this.watchStartedAt > this.timing.fenceAfterMs && !this.rewatching) {
      // Our beats are written but not seen: the watch stalled (e.g. its stream moved to another server).
      this.rewatching = true;
      this.logger.warn("heartbeat watch stalled: watching again");
      void this.watch()
        .catch((err: Error) => this.logger.warn({ err: err.message }, "could not watch heartbeats again"))
        .finally(() => (this.rewatching = false));
    }
    for (const member of this.members.values()) {
      if (member.node !== this.nodeId && now - member.lastSeen >= this.timing.deadAfterMs * 4) {
        // Long dead: forget it (its KV entry stays until the bucket's max age removes it).
        this.members.delete(member.node);
      }
    }
    this.recompute();
    // After the fencing decision: a thread that resumes from a stall first sees whether it must fence.
    this.beats.mainAlive(this.canServe());
  }

  private recompute(): void {
    const now = this.listeningTime();
    const live = [...this.members.values()]
      .filter((member) => !member.leaving && !silentTooLong(now - member.lastSeen, this.timing))
      .map((member) => member.node)
      .sort();
    if (live.length === this.live.length && live.every((node, i) => node === this.live[i])) return;
    const joined = live.filter((node) => !this.live.includes(node));
    const gone = this.live.filter((node) => !live.includes(node));
    this.logger.info({ live, joined, gone }, "membership changed");
    this.live = live;
    this.emit({ type: "changed", live });
  }

  private emit(event: MembershipEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error({ err: (err as Error).message, event: event.type }, "membership listener failed");
      }
    }
  }
}
