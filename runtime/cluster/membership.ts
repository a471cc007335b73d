// Which nodes are alive, judged without comparing clocks across machines: each node writes a heartbeat
// into a KV bucket every `heartbeatMs`; a node is alive while this node keeps *seeing* its heartbeats
// (local monotonic time), and dead after `deadAfterMs` without one. A node that cannot write its own
// heartbeat for `fenceAfterMs` (< deadAfterMs) considers itself fenced off and must stop its actors
// before anyone may take them over.
//
// Works on nats-server 2.9: no per-key TTL and no watch event for expiry are needed.
import { performance } from "node:perf_hooks";
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { decodeJson, encodeJson, isJsonObject } from "../json.ts";

export interface MembershipTiming {
  heartbeatMs: number;
  fenceAfterMs: number;
  deadAfterMs: number;
}

/**
 * Timing from one figure, the failure-detection window: a node unseen for that long is dead; a node
 * that could not renew its own heartbeat for 60 % of it fences itself, leaving margin for the time it
 * takes to stop its actors and for a busy event loop; heartbeats go eight times per window.
 */
export function membershipTiming(deadAfterMs: number): MembershipTiming {
  return { heartbeatMs: Math.max(25, Math.round(deadAfterMs / 8)), fenceAfterMs: Math.round(deadAfterMs * 0.6), deadAfterMs };
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
  /** Local monotonic time of the last heartbeat seen. */
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
  private leaving = false;
  private beat = 0;
  private beatInFlight = false;
  private lastBeatOk = -Infinity;
  private healthySince = -Infinity;
  private fenced = true;
  private timers: NodeJS.Timeout[] = [];
  private watchStop: (() => void) | null = null;
  private stopped = false;

  constructor(
    private readonly kv: KV,
    readonly nodeId: string,
    private readonly info: Record<string, unknown>,
    private readonly logger: Logger,
    readonly timing: MembershipTiming = DEFAULT_TIMING,
    /** Heartbeats stop while this says no (the connection the actors use is down): the node then fences itself. */
    private readonly canServe: () => boolean = () => true,
  ) {}

  async start(): Promise<void> {
    await this.heartbeat();
    await this.watch();
    this.timers.push(setInterval(() => void this.heartbeat(), this.timing.heartbeatMs));
    this.timers.push(setInterval(() => this.check(), Math.min(100, this.timing.heartbeatMs)));
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
    this.watchStartedAt = performance.now();
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
    return member !== undefined && !silentTooLong(performance.now() - member.lastSeen, this.timing);
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
    const now = performance.now();
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
    this.leaving = true;
    await this.heartbeat();
    this.recompute();
  }

  /** Removes this node's heartbeat so the others notice at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    this.watchStop?.();
    await this.kv.delete(this.nodeId).catch(() => undefined);
  }

  private async heartbeat(): Promise<void> {
    if (this.beatInFlight || this.stopped) return;
    if (!this.canServe()) return this.check();
    this.beatInFlight = true;
    const sentAt = performance.now();
    try {
      this.beat += 1;
      await this.kv.put(this.nodeId, encodeJson({ node: this.nodeId, leaving: this.leaving, beat: this.beat, info: this.info }));
      this.lastBeatOk = sentAt;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, "heartbeat failed");
    } finally {
      this.beatInFlight = false;
    }
    this.check();
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
    if (node === this.nodeId) this.lastSelfSeen = performance.now();
    const known = this.members.get(node);
    const leaving = body.leaving === true;
    if (known === undefined) this.logger.info({ member: node }, "node seen");
    else if (leaving && !known.leaving) this.logger.info({ member: node }, "node leaving");
    this.members.set(node, { node, leaving, info: isJsonObject(body.info) ? body.info : {}, lastSeen: performance.now() });
    this.recompute();
  }

  private check(): void {
    if (this.stopped) return;
    const now = performance.now();
    const current = now - this.lastBeatOk < this.timing.fenceAfterMs;
    if (this.fenced && current) {
      this.fenced = false;
      this.healthySince = now;
      this.emit({ type: "recovered" });
    } else if (!this.fenced && !current) {
      this.fenced = true;
      this.logger.error({ fenceAfterMs: this.timing.fenceAfterMs }, "own heartbeat not renewed: fencing this node off");
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
  }

  private recompute(): void {
    const now = performance.now();
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
