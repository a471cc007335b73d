// Which node owns the actor of a (kind, key). This is the seam that makes placement multi-node: a
// single node owns everything; a cluster placement (rendezvous hashing over live nodes, with leases)
// implements the same interface.

export interface Placement {
  /** The id of the node that should run the actor. */
  ownerOf(kind: string, key: string): string;
  /** True when this node should run the actor. */
  isLocal(kind: string, key: string): boolean;
}

export class SingleNodePlacement implements Placement {
  constructor(private readonly nodeId: string) {}

  ownerOf(): string {
    return this.nodeId;
  }

  isLocal(): boolean {
    return true;
  }
}
