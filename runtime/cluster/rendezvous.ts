// Which node owns a shard, and which shard holds a key. Rendezvous (highest random weight) hashing:
// every node computes the same owner from the same set of live nodes, and when a node joins only the
// shards it wins move to it.
import { createHash } from "node:crypto";

export function rendezvousOwner(nodes: readonly string[], shard: number): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const node of nodes) {
    const score = createHash("sha1").update(`${node}\u0000${shard}`).digest().readUInt32BE(0);
    if (score > bestScore || (score === bestScore && best !== undefined && node < best)) {
      best = node;
      bestScore = score;
    }
  }
  return best;
}

/** FNV-1a over the actor's identity: cheap enough for every order. */
export function shardOf(kind: string, key: string, shards: number): number {
  let hash = 0x811c9dc5;
  const text = `${kind}/${key}`;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % shards;
}
