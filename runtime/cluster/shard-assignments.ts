// Which node owns each shard, mirrored from a KV bucket. Ownership only changes by compare-and-swap on
// the revision the writer saw, so two nodes can never both believe they took the same shard.
import type { KV } from "@nats-io/kv";
import type { Logger } from "pino";
import { decodeJson, encodeJson, isJsonObject } from "../json.ts";

export interface Assignment {
  shard: number;
  node: string;
  epoch: number;
  revision: number;
}

export class ShardAssignments {
  private readonly byShard = new Map<number, Assignment>();
  private readonly listeners = new Set<(shard: number) => void>();
  private stopWatch: (() => void) | null = null;

  constructor(
    private readonly kv: KV,
    readonly shards: number,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const watcher = await this.kv.watch({ include: "updates" });
    this.stopWatch = () => watcher.stop();
    void (async () => {
      for await (const entry of watcher) this.apply(entry.key, entry.operation, entry.value, entry.revision);
    })().catch(() => undefined);
    await this.refresh();
  }

  /** Reads every shard's entry directly. */
  async refresh(): Promise<void> {
    await Promise.all(
      Array.from({ length: this.shards }, async (_, shard) => {
        const entry = await this.kv.get(keyOf(shard));
        if (entry !== null) this.apply(entry.key, entry.operation, entry.value, entry.revision);
      }),
    );
  }

  stop(): void {
    this.stopWatch?.();
  }

  on(listener: (shard: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(shard: number): Assignment | undefined {
    return this.byShard.get(shard);
  }

  all(): Assignment[] {
    return [...this.byShard.values()];
  }

  /** Moves the shard to `node` if nobody changed it since `expected` (undefined: nobody owns it). */
  async transfer(shard: number, node: string, expected: Assignment | undefined): Promise<boolean> {
    const epoch = (expected?.epoch ?? 0) + 1;
    const data = encodeJson({ shard, node, epoch });
    try {
      const revision = expected === undefined ? await this.kv.create(keyOf(shard), data) : await this.kv.update(keyOf(shard), data, expected.revision);
      this.apply(keyOf(shard), "PUT", data, revision);
      return true;
    } catch (err) {
      this.logger.debug({ shard, node, err: (err as Error).message }, "shard transfer lost a race");
      // Our view was stale: refresh it so the next reconcile decides on current data.
      const entry = await this.kv.get(keyOf(shard)).catch(() => null);
      if (entry !== null) this.apply(entry.key, entry.operation, entry.value, entry.revision);
      return false;
    }
  }

  private apply(key: string, operation: string, value: Uint8Array, revision: number): void {
    const shard = Number(key.slice(1));
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.shards) return;
    const known = this.byShard.get(shard);
    if (known !== undefined && known.revision >= revision) return;
    if (operation !== "PUT") {
      this.byShard.delete(shard);
    } else {
      const decoded = decodeJson(value);
      if (!decoded.ok || !isJsonObject(decoded.value) || typeof decoded.value.node !== "string") return;
      this.byShard.set(shard, { shard, node: decoded.value.node, epoch: Number(decoded.value.epoch) || 0, revision });
    }
    for (const listener of this.listeners) listener(shard);
  }
}

function keyOf(shard: number): string {
  return `s${shard}`;
}
