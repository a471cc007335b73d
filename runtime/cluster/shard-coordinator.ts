// Keeps this node's shards in line with the membership: each shard belongs to the live node that wins
// its rendezvous hash. When a node joins, the current owners hand the shards it wins over to it; when a
// node dies, the winners among the survivors take its shards over; when this node leaves, it hands all
// of its shards to the others. Every ownership change is a compare-and-swap on the shard's KV entry.
import type { Logger } from "pino";
import { RuntimeMetrics } from "../metrics.ts";
import type { Membership } from "./membership.ts";
import { rendezvousOwner } from "./rendezvous.ts";
import type { ShardAssignments } from "./shard-assignments.ts";
import type { ShardRunner } from "./shard-runner.ts";

/** A periodic pass catches what events missed (e.g. a claim that lost a race). */
const SWEEP_MS = 1_000;
const HANDOFF_CONCURRENCY = 16;

export class ShardCoordinator {
  private running: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly membership: Membership,
    private readonly assignments: ShardAssignments,
    private readonly runner: ShardRunner,
    private readonly logger: Logger,
    private readonly metrics: RuntimeMetrics = new RuntimeMetrics(),
  ) {}

  start(): void {
    this.unsubscribe.push(this.membership.on(() => this.poke()));
    this.unsubscribe.push(this.assignments.on(() => this.poke()));
    this.timer = setInterval(() => {
      // The sweep also re-reads ownership directly, in case the assignments watch lags.
      void this.assignments
        .refresh()
        .catch(() => undefined)
        .finally(() => this.poke());
    }, SWEEP_MS);
    this.poke();
  }

  /** Runs a reconciliation now, or once more after the one in progress. */
  poke(): void {
    if (this.closed) return;
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.reconcile();
        } catch (err) {
          this.logger.error({ err: (err as Error).message }, "shard reconciliation failed");
        }
      } while (this.again && !this.closed);
    })().finally(() => (this.running = null));
  }

  /** Resolves when no reconciliation is running. */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  /** Shards this node still owns (for a graceful leave to wait on). */
  ownedShards(): number[] {
    return this.assignments
      .all()
      .filter((a) => a.node === this.membership.nodeId)
      .map((a) => a.shard);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    for (const off of this.unsubscribe) off();
    await this.idle();
  }

  private async reconcile(): Promise<void> {
    const me = this.membership.nodeId;
    if (!this.membership.healthy) {
      // Fenced: our heartbeat is stale, others may take our shards at any moment. Stop first.
      if (this.runner.owned().length > 0) {
        this.logger.warn({ shards: this.runner.owned().length }, "fenced: stopping every shard of this node");
        await this.runner.stopAll();
      }
      return;
    }
    const live = this.membership.liveNodes();
    const handoffs: (() => Promise<void>)[] = [];
    const starts: (() => Promise<void>)[] = [];
    // Logged once per node at the end, not once per shard: a restart takes over every shard at once.
    const handedTo = new Map<string, number[]>();
    const takenFrom = new Map<string, number[]>();
    for (let shard = 0; shard < this.assignments.shards; shard++) {
      const current = this.assignments.get(shard);
      const desired = rendezvousOwner(live, shard);
      if (current?.node === me) {
        if (desired !== undefined && desired !== me && this.membership.isAlive(desired)) {
          handoffs.push(async () => {
            await this.runner.stop(shard);
            if (await this.assignments.transfer(shard, desired, current)) {
              handedTo.set(desired, [...(handedTo.get(desired) ?? []), shard]);
              this.metrics.shardHandedOff();
            }
          });
        } else if (!this.runner.isRunning(shard)) {
          starts.push(() => this.runner.start(shard));
        }
        continue;
      }
      if (this.runner.isRunning(shard)) {
        // Someone else owns it now (we were taken for dead): stop at once.
        this.logger.warn({ shard, owner: current?.node }, "shard owned elsewhere: stopping it here");
        await this.runner.stop(shard);
      }
      if (desired !== me) continue;
      // An owner that left cleanly (or was never seen) is gone for sure; one that went silent is only
      // taken for dead once this node has itself been healthy for a whole dead-after window.
      const gone = current === undefined || !this.membership.isKnown(current.node);
      const silent = current !== undefined && !this.membership.isAlive(current.node) && this.membership.mayTakeOver;
      if (gone || silent) {
        starts.push(async () => {
          if (gone && current !== undefined && !(await this.membership.confirmGone(current.node))) return;
          if (silent && current !== undefined && !(await this.membership.confirmSilent(current.node))) return;
          if (await this.assignments.transfer(shard, me, current)) {
            if (current !== undefined) {
              takenFrom.set(current.node, [...(takenFrom.get(current.node) ?? []), shard]);
              this.metrics.shardTakenOver();
            }
            await this.runner.start(shard);
          }
        });
      }
    }
    await inBatches(starts, HANDOFF_CONCURRENCY);
    await inBatches(handoffs, HANDOFF_CONCURRENCY);
    for (const [from, shards] of takenFrom) this.logger.info({ from, count: shards.length, shards: shards.sort((a, b) => a - b) }, "shards taken over");
    for (const [to, shards] of handedTo) this.logger.info({ to, count: shards.length, shards: shards.sort((a, b) => a - b) }, "shards handed off");
  }
}

async function inBatches(work: (() => Promise<void>)[], size: number): Promise<void> {
  for (let i = 0; i < work.length; i += size) await Promise.all(work.slice(i, i + size).map((job) => job()));
}
