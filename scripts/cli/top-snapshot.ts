// What `caliopen top` shows at one moment: every node's description and the live actors, read from the
// debug subjects in one round (caliopen.debug.nodes and caliopen.debug.actors, asked together).
import type { ActorSummary } from "../../runtime/actor-cell.ts";
import type { DebugClient, JsonObject } from "../../runtime/debug-client.ts";
import { isJsonObject } from "../../runtime/json.ts";

export interface TopFilter {
  kind?: string;
  node?: string;
}

export interface NodeLine {
  node: string;
  /** False for a node another one counts as live but that did not answer. */
  answered: boolean;
  healthy: boolean | null;
  ownedShards: number | null;
  shards: number | null;
  actors: number | null;
  /** Orders over all of the node's entry points; null when the node does not report them. */
  orders: { received: number; rejected: number; failed: number } | null;
  startedAt: string | null;
}

export interface TopSnapshot {
  at: number;
  nodes: NodeLine[];
  /** Most recent state change first. */
  actors: ActorSummary[];
  /** Live actors matching the filter on the nodes that answered (may exceed `actors` if a page was cut). */
  total: number;
}

export async function takeSnapshot(client: DebugClient, filter: TopFilter, now: () => number = Date.now): Promise<TopSnapshot> {
  const [described, listing] = await Promise.all([client.nodes(), client.actors(filter)]);
  const nodes = nodeLines(described).filter((line) => filter.node === undefined || line.node === filter.node);
  const actors = [...listing.actors].sort((a, b) => sinceMs(b) - sinceMs(a) || a.kind.localeCompare(b.kind) || a.key.localeCompare(b.key));
  return { at: now(), nodes, actors, total: listing.total };
}

/** The nodes that answered, plus those they count as live that did not (stuck, or cut off from us). */
export function nodeLines(described: readonly JsonObject[]): NodeLine[] {
  const lines = described.map(nodeLine);
  const answered = new Set(lines.map((line) => line.node));
  const silent = new Set<string>();
  for (const node of described) {
    const live = isJsonObject(node.cluster) && Array.isArray(node.cluster.liveNodes) ? node.cluster.liveNodes : [];
    for (const id of live) if (typeof id === "string" && !answered.has(id)) silent.add(id);
  }
  for (const node of [...silent].sort()) {
    lines.push({ node, answered: false, healthy: null, ownedShards: null, shards: null, actors: null, orders: null, startedAt: null });
  }
  return lines;
}

function nodeLine(node: JsonObject): NodeLine {
  const cluster = isJsonObject(node.cluster) ? node.cluster : {};
  return {
    node: String(node.node ?? "?"),
    answered: true,
    healthy: typeof cluster.healthy === "boolean" ? cluster.healthy : null,
    ownedShards: numberOrNull(cluster.ownedShards),
    shards: numberOrNull(cluster.shards),
    actors: numberOrNull(node.actors),
    orders: orderTotals(node.entryPoints),
    startedAt: typeof node.startedAt === "string" ? node.startedAt : null,
  };
}

// Checked loosely: the reply comes from a node that may run another version.
function orderTotals(entryPoints: unknown): NodeLine["orders"] {
  if (!Array.isArray(entryPoints)) return null;
  const totals = { received: 0, rejected: 0, failed: 0 };
  for (const entry of entryPoints) {
    if (!isJsonObject(entry)) continue;
    totals.received += numberOrNull(entry.received) ?? 0;
    totals.rejected += numberOrNull(entry.rejected) ?? 0;
    totals.failed += numberOrNull(entry.failed) ?? 0;
  }
  return totals;
}

function numberOrNull(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function sinceMs(actor: ActorSummary): number {
  const at = Date.parse(actor.since);
  return Number.isNaN(at) ? 0 : at;
}
