// Node processes for multi-process tests, and a continuous check of who runs which actor, read through
// the debug subject as an operator would.
import { type ChildProcess, spawn } from "node:child_process";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeJson } from "../../runtime/json.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";

const root = new URL("../..", import.meta.url).pathname;

export interface NodeProcess {
  id: string;
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

/** `nats` is the NATS_* environment of the server to join (TestNats.env). */
export async function spawnNode(nats: Record<string, string>, id: string, env: Record<string, string> = {}): Promise<NodeProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/helpers/cluster-node-process.ts"], {
    cwd: root,
    env: { ...process.env, ...nats, CALIOPEN_NODE_ID: id, CALIOPEN_SHARDS: "32", LOG_LEVEL: "warn", ...env },
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const node = { id, child, output: () => output, exited };
  await waitFor(`node ${id} ready`, () => output.includes("ready"), 20_000);
  return node;
}

export interface ActorSighting {
  key: string;
  node: string;
  since: number;
  at: number;
}

interface ActorsPage {
  node: string;
  at: string;
  actors: { key: string; status: string; activeSince: string }[];
  /** Set when the node has more actors than one reply holds (a page is at most 1,000 actors). */
  next_offset?: number | null;
}

const ask = (query: Record<string, unknown>) => new TextEncoder().encode(JSON.stringify(query));

/** One round of `caliopen.debug.actors`: every actor each node reports, with when it reported it. */
export async function sightings(nc: NatsConnection): Promise<ActorSighting[]> {
  const out: ActorSighting[] = [];
  const pages: ActorsPage[] = [];
  const replies = await nc.requestMany("caliopen.debug.actors", ask({ limit: 100_000 }), {
    strategy: "stall",
    stall: 150,
    maxWait: 2_000,
  });
  for await (const msg of replies) {
    const decoded = decodeJson(msg.data);
    if (decoded.ok && Array.isArray((decoded.value as ActorsPage).actors)) pages.push(decoded.value as ActorsPage);
  }
  // A node with more than one page of actors is asked for the rest.
  for (const first of [...pages]) {
    let next = first.next_offset;
    while (typeof next === "number") {
      const decoded = decodeJson((await nc.request("caliopen.debug.actors", ask({ node: first.node, limit: 100_000, offset: next }), { timeout: 2_000 })).data);
      if (!decoded.ok) break;
      const page = decoded.value as ActorsPage;
      pages.push(page);
      next = page.actors.length > 0 ? page.next_offset : null;
    }
  }
  for (const page of pages) {
    for (const actor of page.actors) {
      if (actor.status === "stopped") continue;
      out.push({ key: actor.key, node: page.node, since: Date.parse(actor.activeSince), at: Date.parse(page.at) });
    }
  }
  return out;
}

/**
 * Polls the debug subject and records every key seen live on two nodes during overlapping intervals
 * (each node was running it from `since` to at least `at`).
 */
export class OwnershipWatch {
  readonly violations: string[] = [];
  latest = new Map<string, string>();
  private timer: NodeJS.Timeout | null = null;
  private busy = false;

  constructor(private readonly nc: NatsConnection) {}

  start(everyMs = 100): void {
    this.timer = setInterval(() => void this.sample().catch(() => undefined), everyMs);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
  }

  async sample(): Promise<Map<string, string>> {
    if (this.busy) return this.latest;
    this.busy = true;
    try {
      const seen = await sightings(this.nc);
      const byKey = new Map<string, ActorSighting[]>();
      for (const sighting of seen) byKey.set(sighting.key, [...(byKey.get(sighting.key) ?? []), sighting]);
      const latest = new Map<string, string>();
      for (const [key, list] of byKey) {
        latest.set(key, list[0]!.node);
        for (let i = 0; i < list.length; i++) {
          for (let j = i + 1; j < list.length; j++) {
            const a = list[i]!;
            const b = list[j]!;
            if (a.node !== b.node && Math.max(a.since, b.since) < Math.min(a.at, b.at)) this.violations.push(`${key} live on ${a.node} and ${b.node}`);
          }
        }
      }
      this.latest = latest;
      return latest;
    } finally {
      this.busy = false;
    }
  }
}
