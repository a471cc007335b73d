// The live-accounts scenario's node processes (scripts/bench/live-node-process.ts): starting, stopping and
// killing them, and what each one holds, read from the outside: the imap workers it runs and whether
// their new-mail watch is on (the debug subject, paged), its open file descriptors (/proc), its
// connections to the Dovecot (ss) and its heap (its own answer, after a full GC).
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { IMAP_KIND } from "../../actors/imap/imap-worker.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { NATS_ENV, type NatsEndpoint, natsEndpointEnv } from "../../runtime/nats-endpoint.ts";
import { nodeConfigFromEnv } from "../../supervisors/node-config.ts";
import { registerCleanup } from "./cleanup.ts";
import type { MemorySample } from "./memory-sampler.ts";

export interface LiveNodeTask {
  endpoint: NatsEndpoint;
  secretKey: string;
  nodeId: string;
  admit: string[];
  /** The nodes' failure detection time, when not their default. */
  failureDetectionMs?: number;
}

/** `<subject>.<node id>`: the node answers with a NodeProbe. */
export const LIVE_MEMORY_SUBJECT = "bench.live.memory";

/** A node's memory after a full GC, and its event loop's delays since the previous probe. */
export interface NodeProbe extends MemorySample {
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** A warning a node logged, when. */
export interface NodeWarning {
  node: string;
  at: number;
  message: string;
}

const NODE_SCRIPT = fileURLToPath(new URL("./live-node-process.ts", import.meta.url));
const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** The nodes' shard count: their default, as `npm start` would run them. */
const SHARDS = nodeConfigFromEnv({}).shards;
/** The debug subject's largest page. */
const PAGE = 1_000;

export interface LiveNode {
  id: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<void>;
  /** What the node's runtime logged as warnings, as it logged them. */
  warnings: NodeWarning[];
}

/** Our environment without any NATS_* setting of the operator's: the node must use the bench server's alone. */
function environmentWithoutNats(): NodeJS.ProcessEnv {
  const names = new Set<string>(Object.values(NATS_ENV));
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !names.has(name)));
}

export async function spawnLiveNode(task: LiveNodeTask): Promise<LiveNode> {
  // BENCH_PROCESS_PROFILE=<dir>: a V8 CPU profile of each node's life, as child-protocol.ts does for scenarios.
  const profileDir = process.env.BENCH_PROCESS_PROFILE;
  const profile = profileDir === undefined || profileDir === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
  const child = spawn(process.execPath, ["--expose-gc", ...profile, "--import", "tsx", NODE_SCRIPT], {
    cwd: REPO_ROOT,
    env: { ...environmentWithoutNats(), ...natsEndpointEnv(task.endpoint), BENCH_LIVE_NODE: JSON.stringify(task), LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const unregister = registerCleanup(() => void child.kill("SIGKILL"));
  const node: LiveNode = {
    id: task.nodeId,
    child,
    pid: child.pid ?? Number.NaN,
    warnings: [],
    exited: new Promise((resolve) =>
      child.once("exit", () => {
        unregister();
        resolve();
      }),
    ),
  };
  let output = "";
  let partial = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${task.nodeId} not ready within 60 s: ${output.slice(-500)}`)), 60_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const warning = /^warn (\d+) (.*)$/.exec(line);
        if (warning !== null) node.warnings.push({ node: task.nodeId, at: Number(warning[1]), message: warning[2] as string });
        else output = `${output}${line}\n`.slice(-10_000);
        if (line === "ready") {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(chunk));
    child.once("exit", (code) => reject(new Error(`node ${task.nodeId} exited with ${code} before it was ready: ${output.slice(-500)}`)));
  });
  return node;
}

export async function stopLiveNode(node: LiveNode): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  node.child.kill("SIGTERM");
  const killed = setTimeout(() => node.child.kill("SIGKILL"), 20_000);
  await node.exited;
  clearTimeout(killed);
}

export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Like `until`, but a timeout is an answer (false), for waits whose failure is itself a figure. */
export async function reached(check: () => Promise<boolean>, timeoutMs: number, everyMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Every reply to a debug subject that every node answers. */
async function askAll(nc: NatsConnection, subject: string, query: Record<string, unknown>): Promise<Record<string, unknown>[]> {
  const replies: Record<string, unknown>[] = [];
  for await (const msg of await nc.requestMany(subject, encodeJson(query), { strategy: "stall", stall: 300, maxWait: 5_000 })) {
    const decoded = decodeJson(msg.data);
    if (decoded.ok && typeof decoded.value === "object" && decoded.value !== null) replies.push(decoded.value as Record<string, unknown>);
  }
  return replies;
}

/** Waits until every node sees exactly `ids` live and together they own every shard. */
export function clusterSettled(nc: NatsConnection, ids: string[], timeoutMs = 60_000): Promise<true> {
  const wanted = [...ids].sort().join(",");
  return until(
    `the nodes ${wanted} sharing the shards`,
    async () => {
      const nodes = (await askAll(nc, "caliopen.debug.nodes", {})).filter((reply) => ids.includes(String(reply.node)));
      const clusters = nodes.map((reply) => reply.cluster as { ownedShards: number; liveNodes: string[] });
      const agreed = clusters.every((cluster) => [...cluster.liveNodes].sort().join(",") === wanted);
      const owned = clusters.reduce((sum, cluster) => sum + cluster.ownedShards, 0);
      return nodes.length === ids.length && agreed && owned === SHARDS ? true : undefined;
    },
    timeoutMs,
    500,
  );
}

export interface WorkerPlace {
  node: string;
  /** Its new-mail watch runs (the push region is `watching`). */
  watching: boolean;
}

/** Where each imap worker runs, by identity id, as each of `nodeIds` reports it (page by page). */
export async function imapPlacement(nc: NatsConnection, nodeIds: string[]): Promise<Map<string, WorkerPlace>> {
  const where = new Map<string, WorkerPlace>();
  await Promise.all(
    nodeIds.map(async (node) => {
      let offset: number | null = 0;
      while (offset !== null) {
        const reply = await nc
          .request("caliopen.debug.actors", encodeJson({ kind: IMAP_KIND, node, limit: PAGE, offset }), { timeout: 10_000 })
          .catch(() => null);
        const decoded = reply === null ? null : decodeJson(reply.data);
        if (decoded === null || !decoded.ok) return;
        const page = decoded.value as { actors?: { key: string; status: string; state: unknown }[]; next_offset?: number | null };
        for (const actor of page.actors ?? []) {
          if (actor.status !== "running") continue;
          where.set(actor.key, { node, watching: JSON.stringify(actor.state).includes('"push":"watching"') });
        }
        offset = page.next_offset ?? null;
      }
    }),
  );
  return where;
}

/** The node's memory after a full GC and its event loop's delays, as it reports them. */
export async function probeNode(nc: NatsConnection, nodeId: string): Promise<NodeProbe> {
  const reply = await nc.request(`${LIVE_MEMORY_SUBJECT}.${nodeId}`, new Uint8Array(), { timeout: 30_000 });
  const decoded = decodeJson(reply.data);
  if (!decoded.ok) throw new Error(`node ${nodeId} answered its memory with ${decoded.error}`);
  return decoded.value as NodeProbe;
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** Established TCP connections to `port` on this machine, by the pid of the process holding them. */
export function connectionsByPid(port: number): Map<number, number> {
  const out = execFileSync("ss", ["-tnpH", "state", "established", "dport", "=", `:${port}`], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const counts = new Map<number, number>();
  for (const match of out.matchAll(/pid=(\d+)/g)) counts.set(Number(match[1]), (counts.get(Number(match[1])) ?? 0) + 1);
  return counts;
}
