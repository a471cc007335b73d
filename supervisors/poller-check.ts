// Gives a poller to every active, polled remote identity that has none (stored by an earlier version,
// or whose add_identity never applied). Pollers keep their schedules themselves and their shards' owners
// bring them back, so this is a safety net: one node of the cluster runs it per period, at a node's
// start and then every period, reading the identities once and the pollers' registry keys once.
import type { Logger } from "pino";
import { SYNC_SUBJECT } from "../actors/identities/poll-schedule.ts";
import { POLLER_KIND } from "../actors/identities/poller.ts";
import type { Store } from "../actors/store/store.ts";
import { pollerInput } from "./identities-worker.ts";
import type { ServiceContext } from "./services.ts";

export const DEFAULT_POLLER_CHECK_EVERY_MS = 6 * 60 * 60_000;
const TASK = "poller-check";
/** Nodes of a cluster starting together come within this of each other: one of them checks. */
const CLUSTER_START_CLAIM_MS = 5 * 60_000;
/** Pollers given at once: each is an order applied by its shard's owner. */
const CONCURRENCY = 32;

export class PollerCheck {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  /** Ends a running check: the node is stopping (its orders could not be applied any more). */
  private readonly stopping = new AbortController();

  constructor(
    private readonly store: Store,
    private readonly context: ServiceContext,
    private readonly logger: Logger,
    private readonly everyMs: number = DEFAULT_POLLER_CHECK_EVERY_MS,
  ) {}

  /**
   * Runs this period's check if no node did, in the background, and again every period. A node that
   * starts alone starts the cluster: it checks unless a node did in the last CLUSTER_START_CLAIM_MS
   * (nodes starting together), so that every start of the cluster rebuilds the schedules from the store.
   */
  start(): void {
    const alone = this.context.cluster.membership.liveNodes().every((node) => node === this.context.cluster.membership.nodeId);
    this.tryNow(alone ? Math.min(this.everyMs, CLUSTER_START_CLAIM_MS) : this.everyMs);
    this.timer = setInterval(() => this.tryNow(this.everyMs), Math.max(this.everyMs, 1_000));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.stopping.abort();
    await this.running;
  }

  private tryNow(periodMs: number): void {
    if (this.running !== null || this.stopping.signal.aborted) return;
    this.running = this.checkIfClaimed(periodMs)
      .catch((err: Error) => {
        if (this.stopping.signal.aborted) this.logger.info({ err: err.message }, "pollers check stopped with the node: the next node's check will finish it");
        else this.logger.warn({ err: err.message }, "could not check the pollers against the store: the next period's check will");
      })
      .finally(() => {
        this.running = null;
      });
  }

  /** Returns how many pollers were missing, or null when another node made this period's check. */
  async checkIfClaimed(periodMs: number = this.everyMs): Promise<number | null> {
    const tasks = this.context.cluster.tasks;
    if (!(await tasks.claim(TASK, periodMs))) return null;
    try {
      return await this.check();
    } catch (err) {
      // Not done: the next node to start (or this one's next period) does it.
      await tasks.release(TASK).catch(() => undefined);
      throw err;
    }
  }

  private async check(): Promise<number> {
    const [identities, registered] = await Promise.all([this.store.identities.listAll({ type: "remote" }), this.context.cluster.registeredKeys(POLLER_KIND)]);
    // Only what an order needs is kept: the check may go over a hundred thousand identities.
    const missing = identities
      .filter((identity) => identity.status === "active" && SYNC_SUBJECT[identity.protocol] !== undefined && !registered.has(identity.identity_id))
      .map((identity) => ({ identity_id: identity.identity_id, user_id: identity.user_id }));
    const checked = identities.length;
    const failed: string[] = [];
    const giving = new Set<Promise<void>>();
    const { signal } = this.stopping;
    for (const { identity_id, user_id } of missing) {
      if (signal.aborted) break;
      const payload = { order: "add_identity", identity_id, user_id };
      const given: Promise<void> = this.context.keyed
        .apply("tell", POLLER_KIND, identity_id, { message: { type: "add_identity", payload }, input: pollerInput(payload), signal })
        .then(
          () => undefined,
          (err: Error) => void failed.push(err.message),
        )
        .finally(() => giving.delete(given));
      giving.add(given);
      if (giving.size >= CONCURRENCY) await Promise.race(giving);
    }
    await Promise.all(giving);
    if (signal.aborted) throw new Error("the node stopped during the check");
    this.logger.info({ identities: checked, missing: missing.length, failed: failed.length }, "pollers checked against the store's identities");
    // The others got their poller; the next check gives theirs to those that failed.
    if (failed.length > 0) throw new Error(`${failed.length} of ${missing.length} missing pollers could not be given, first: ${failed[0]}`);
    return missing.length;
  }
}
