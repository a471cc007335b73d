// Failover and rebalance, measured on real node processes: N actors over three nodes; kill -9 the busiest
// node and time until every actor runs on a survivor; start a new node and time until it holds its
// share; count the orders sent during both that were lost or applied twice.
import { type ChildProcess, spawn } from "node:child_process";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { NATS_ENV, type NatsEndpoint, natsEndpointEnv } from "../../runtime/nats-endpoint.ts";
import { subjectToken } from "../../runtime/subjects.ts";
import { connectBench } from "./bench-connection.ts";
import { BENCH_KIND } from "./bench-family.ts";
import { childMain } from "./child-protocol.ts";

export interface FailoverTask {
  endpoint: NatsEndpoint;
  actors: number;
  runs: number;
}

export interface FailoverRun {
  failoverMs: number;
  rebalanceMs: number;
  lost: number;
  duplicated: number;
}

export interface FailoverResult {
  actors: number;
  nodes: number;
  runs: FailoverRun[];
}

const root = new URL("../..", import.meta.url).pathname;

interface NodeProcess {
  id: string;
  child: ChildProcess;
  exited: Promise<unknown>;
}

/** Our environment without any NATS_* setting of the operator's: the node must use the bench server's alone. */
function environmentWithoutNats(): NodeJS.ProcessEnv {
  const names = new Set<string>(Object.values(NATS_ENV));
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !names.has(name)));
}

async function spawnNode(endpoint: NatsEndpoint, id: string): Promise<NodeProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/bench/cluster-bench-node.ts"], {
    cwd: root,
    env: { ...environmentWithoutNats(), ...natsEndpointEnv(endpoint), CALIOPEN_NODE_ID: id, LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  await new Promise<void>((resolve, reject) => {
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("ready")) resolve();
    });
    void exited.then(() => reject(new Error(`node ${id} exited before it was ready`)));
  });
  return { id, child, exited };
}

/** Which node runs each actor, from the debug subject. */
async function placement(nc: NatsConnection): Promise<Map<string, string>> {
  const where = new Map<string, string>();
  const replies = await nc.requestMany("caliopen.debug.actors", encodeJson({ limit: 1_000_000 }), { strategy: "stall", stall: 100, maxWait: 2_000 });
  for await (const msg of replies) {
    const decoded = decodeJson(msg.data);
    if (!decoded.ok) continue;
    const reply = decoded.value as { node: string; actors: { key: string; status: string }[] };
    for (const actor of reply.actors) if (actor.status === "running") where.set(actor.key, reply.node);
  }
  return where;
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export async function runFailover(task: FailoverTask): Promise<FailoverResult> {
  const nc = await connectBench(task.endpoint, "bench failover driver");
  const keys = Array.from({ length: task.actors }, (_, i) => `r${i}`);
  const expected = new Map<string, number>();
  const nodes = new Map<string, NodeProcess>();
  let nextId = 1;
  const addNode = async () => {
    const id = `bench-${nextId++}`;
    nodes.set(id, await spawnNode(task.endpoint, id));
    return id;
  };
  const syncAll = () => {
    for (const key of keys) {
      nc.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: key, user_id: "u" }));
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
  };
  const jsm = await jetstreamManager(nc);
  // The intake empty: every order taken by a node that died has come back and been applied.
  const drained = async () => (await jsm.streams.info("caliopen_intake")).state.messages === 0;
  const snapshots = await new Kvm(nc).open("caliopen_actor_snapshots");
  const tally = async (): Promise<{ lost: number; duplicated: number }> => {
    let lost = 0;
    let duplicated = 0;
    await Promise.all(
      keys.map(async (key) => {
        const entry = await snapshots.get(`${BENCH_KIND}.${subjectToken(key)}`);
        const decoded = entry === null ? null : decodeJson(entry.value);
        const syncs = decoded?.ok ? Number((decoded.value as { snapshot: { context: { syncs: number } } }).snapshot.context.syncs) : 0;
        const want = expected.get(key) ?? 0;
        if (syncs < want) lost += want - syncs;
        if (syncs > want) duplicated += syncs - want;
      }),
    );
    return { lost, duplicated };
  };

  try {
    for (let i = 0; i < 3; i++) await addNode();
    for (const key of keys) nc.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: key, user_id: "u" }));
    await until("every actor running", async () => (await placement(nc)).size === task.actors, 60_000, 200);
    syncAll();
    await until("orders drained", drained, 60_000, 100);

    const runs: FailoverRun[] = [];
    for (let run = 0; run < task.runs; run++) {
      const before = await placement(nc);
      const load = new Map<string, number>();
      for (const node of before.values()) load.set(node, (load.get(node) ?? 0) + 1);
      const busiest = [...load.entries()].sort((a, b) => b[1] - a[1])[0];
      if (busiest === undefined) throw new Error("no node holds an actor: nothing to fail over");
      const [victimId] = busiest;
      const victim = nodes.get(victimId);
      if (victim === undefined) throw new Error(`the actors' placement names node ${victimId}, which this scenario did not start`);
      const killedAt = performance.now();
      victim.child.kill("SIGKILL");
      nodes.delete(victimId);
      syncAll();
      await until(
        "failover",
        async () => {
          const now = await placement(nc);
          return now.size === task.actors && ![...now.values()].includes(victimId);
        },
        30_000,
      );
      const failoverMs = performance.now() - killedAt;
      await until("orders drained after failover", drained, 60_000, 100);

      const joinerId = await addNode();
      const readyAt = performance.now();
      syncAll();
      let lastChange = performance.now();
      let previous = "";
      await until(
        "rebalance",
        async () => {
          const now = await placement(nc);
          const signature = [...now.entries()].sort().join();
          if (signature !== previous) {
            previous = signature;
            lastChange = performance.now();
          }
          const share = [...now.values()].filter((node) => node === joinerId).length;
          return now.size === task.actors && share > 0 && performance.now() - lastChange > 1_000;
        },
        30_000,
        50,
      );
      const rebalanceMs = lastChange - readyAt;
      await until("orders drained after rebalance", drained, 60_000, 100);
      runs.push({ failoverMs, rebalanceMs, ...(await tally()) });
    }
    return { actors: task.actors, nodes: 3, runs };
  } finally {
    for (const node of nodes.values()) node.child.kill("SIGKILL");
    await Promise.all([...nodes.values()].map((node) => node.exited));
    await nc.close();
  }
}

if (process.env.BENCH_TASK !== undefined) childMain<FailoverTask>(runFailover);
