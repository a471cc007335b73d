import type { Placement } from "./placement.ts";
import { shardOf } from "./rendezvous.ts";
import type { ShardAssignments } from "./shard-assignments.ts";
import type { ShardRunner } from "./shard-runner.ts";

/** An actor lives on the node that runs its shard. */
export class ClusterPlacement implements Placement {
  constructor(
    private readonly assignments: ShardAssignments,
    private readonly runner: () => ShardRunner | null,
    private readonly shards: number,
  ) {}

  ownerOf(kind: string, key: string): string {
    return this.assignments.get(shardOf(kind, key, this.shards))?.node ?? "(no node yet)";
  }

  isLocal(kind: string, key: string): boolean {
    return this.runner()?.isRunning(shardOf(kind, key, this.shards)) ?? false;
  }
}
