// The cold-start scenario's task and figures (scale section; the paging and live-accounts scenarios
// of the same section have their own files).
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";

export interface ColdStartTask {
  endpoint: NatsEndpoint;
  identities: number;
  /** Longest wait for any one phase (giving every identity its poller, their passivation). */
  timeoutMs: number;
}

/** A node's actors by state, what bridge orders it took, and its memory. */
export interface NodeStates {
  actors: Record<string, number>;
  bridgeOrders: { add_worker: number; sync: number };
  memory: { rss: number; heapUsed: number };
}

export interface ColdStartNode {
  id: string;
  /** From spawning the process (Node and tsx loading included) until the node takes orders. */
  spawnToReadyMs: number;
  /** From the script's first line until startNode resolved: connect, join, resume its shards, take orders. */
  startMs: number;
  /** Its actors by state when it became ready: `resting` ones were placed with a timer, not restored. */
  actors: Record<string, number>;
}

export interface PollerCheckOutcome {
  /** Pollers the check found missing and gave; null when another node made this period's check. */
  missing: number | null;
  ms?: number;
  error?: string;
}

export interface ColdStartResult {
  identities: number;
  seedMs: number;
  /** `recordedResting`: pollers the registry recorded as resting before the node stopped. */
  firstStart: { node: ColdStartNode; check: PollerCheckOutcome; rested: NodeStates; recordedResting: number };
  oneNode: { node: ColdStartNode; check: PollerCheckOutcome; after: NodeStates };
  threeNodes: { nodes: ColdStartNode[]; checks: PollerCheckOutcome[]; after: NodeStates[] };
}
