// Cold start at scale: N remote identities stored; a first node gives each a poller (the check made once
// for the cluster, as after an upgrade); once the pollers rest, timed starts of one node, then of three
// nodes together (whose check claim was dropped, so all three race for it): how long until each takes
// orders with its pollers scheduled, how many pollers it restored rather than placed resting, its memory,
// and how many checks over all identities the nodes made in total.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import pLimit from "p-limit";
import { openStore } from "../../actors/store/store.ts";
import { decodeJson, isJsonObject } from "../../runtime/json.ts";
import { scanLatest } from "../../runtime/kv-scan.ts";
import { NATS_ENV, natsEndpointEnv } from "../../runtime/nats-endpoint.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { connectBench } from "./bench-connection.ts";
import { childMain } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import type { ColdStartNode, ColdStartResult, ColdStartTask, NodeStates } from "./scale-results.ts";

const root = new URL("../..", import.meta.url).pathname;
const SEED_CONCURRENCY = 256;
const LONG_CHECK_PERIOD_MS = 6 * 60 * 60_000;

interface NodeProcess {
  id: string;
  child: ChildProcess;
  spawnedAt: number;
  ready: Promise<ColdStartNode>;
  check: Promise<{ missing: number | null; ms?: number; error?: string }>;
  lines: string[];
  /** Who waits for a line with a given prefix (see waitForLine). */
  waiters: { prefix: string; resolve: (rest: string) => void; reject: (err: Error) => void }[];
  exited: Promise<unknown>;
}

function environmentWithoutNats(): NodeJS.ProcessEnv {
  const names = new Set<string>(Object.values(NATS_ENV));
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !names.has(name)));
}

/** Resolves with the rest of the first line starting with `prefix` printed from line `after` on. */
function waitForLine(node: NodeProcess, prefix: string, after = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const found = node.lines.slice(after).find((line) => line.startsWith(`${prefix} `));
    if (found !== undefined) return resolve(found.slice(prefix.length + 1));
    node.waiters.push({ prefix, resolve, reject });
  });
}

async function spawnNode(task: ColdStartTask, id: string, dataDir: string, env: NodeJS.ProcessEnv): Promise<NodeProcess> {
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", "scripts/bench/cold-start-node.ts"], {
    cwd: root,
    env: {
      ...environmentWithoutNats(),
      ...natsEndpointEnv(task.endpoint),
      CALIOPEN_NODE_ID: id,
      CALIOPEN_DATA_DIR: join(dataDir, id),
      LOG_LEVEL: "warn",
      ...env,
    },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines: string[] = [];
  const waiters: NodeProcess["waiters"] = [];
  let partial = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const complete = text.split("\n");
    partial = complete.pop() ?? "";
    for (const line of complete) {
      // The node's own log lines (warnings and errors: LOG_LEVEL=warn) go to the bench's stderr.
      if (!/^(ready|check|states) /.test(line)) {
        process.stderr.write(`${id}: ${line}\n`);
        continue;
      }
      lines.push(line);
      const index = waiters.findIndex((waiter) => line.startsWith(`${waiter.prefix} `));
      const waiter = index < 0 ? undefined : waiters.splice(index, 1)[0];
      waiter?.resolve(line.slice(waiter.prefix.length + 1));
    }
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  void exited.then(() => {
    for (const waiter of waiters.splice(0)) waiter.reject(new Error(`node ${id} exited before printing "${waiter.prefix}"`));
  });
  const unregister = registerCleanup(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  void exited.then(unregister);
  const node = { id, child, spawnedAt, lines, waiters, exited } as NodeProcess;
  node.ready = waitForLine(node, "ready").then((json) => {
    const ready = JSON.parse(json) as { startMs: number; actors: Record<string, number> };
    return { id, spawnToReadyMs: performance.now() - spawnedAt, startMs: ready.startMs, actors: ready.actors };
  });
  node.check = waitForLine(node, "check").then((json) => JSON.parse(json) as { missing: number | null; ms?: number; error?: string });
  return node;
}

async function askStates(node: NodeProcess): Promise<NodeStates> {
  const after = node.lines.length;
  node.child.stdin?.write("states\n");
  return JSON.parse(await waitForLine(node, "states", after)) as NodeStates;
}

async function stopNode(node: NodeProcess): Promise<void> {
  node.child.kill("SIGTERM");
  await node.exited;
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 500): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Polls `count` until it reaches `target` or stays the same for 10 s; returns the last count. */
async function settledCount(count: () => Promise<number>, target: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = -1;
  let since = Date.now();
  for (;;) {
    const now = await count();
    if (now >= target || Date.now() > deadline) return now;
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since > 10_000) return now;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/** How many actors the registry records as resting. */
async function restingInRegistry(nc: NatsConnection): Promise<number> {
  let resting = 0;
  await scanLatest(jetstream(nc), "caliopen_actor_registry", ">", (entry) => {
    const decoded = decodeJson(entry.value);
    if (decoded.ok && isJsonObject(decoded.value) && "wakeAt" in decoded.value) resting += 1;
  });
  return resting;
}

const progress = (message: string) => process.stderr.write(`bench: cold start: ${message}\n`);

childMain<ColdStartTask>(async (task): Promise<ColdStartResult> => {
  const nc = await connectBench(task.endpoint, "cold-start-bench");
  const dataDir = await mkdtemp(join(tmpdir(), "caliopen-cold-start-"));
  registerCleanup(() => rm(dataDir, { recursive: true, force: true }));
  const store = await openStore({ nc, subjects: new Subjects(""), secrets: null });

  const seedBegan = performance.now();
  const limit = pLimit(SEED_CONCURRENCY);
  const userIds = Array.from({ length: Math.ceil(task.identities / 10) }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`);
  await Promise.all(
    Array.from({ length: task.identities }, (_, i) =>
      limit(() =>
        store.identities.create({
          user_id: userIds[i % userIds.length] as string,
          type: "remote",
          protocol: "imap",
          identifier: `account-${i}@example.net`,
          infos: { inserver: "imap.example.net:993", poll_interval: "15" },
        }),
      ),
    ),
  );
  const seedMs = performance.now() - seedBegan;
  progress(`${task.identities} identities stored in ${(seedMs / 1000).toFixed(1)} s`);

  // The first start after an upgrade: no poller exists, the node's check gives each identity one.
  // Setup, not measured: one node giving 100,000 pollers starves its own event loop on 2 cores, so it
  // gets a failure-detection window long enough not to fence itself off meanwhile.
  const quickRest = {
    CALIOPEN_PASSIVATE_AFTER_MS: "2000",
    CALIOPEN_FAILURE_DETECTION_MS: "60000",
    BENCH_POLLER_CHECK_EVERY_MS: String(LONG_CHECK_PERIOD_MS),
  };
  const first = await spawnNode(task, "cold-seed", dataDir, quickRest);
  const firstReady = await first.ready;
  const firstCheck = await first.check;
  if (firstCheck.missing !== task.identities) {
    throw new Error(
      `the first node's check gave ${firstCheck.missing} pollers, expected ${task.identities}${firstCheck.error === undefined ? "" : `: ${firstCheck.error}`}`,
    );
  }
  progress(`first node: pollers for all ${task.identities} identities in ${((firstCheck.ms ?? 0) / 1000).toFixed(1)} s`);
  await until(
    "every poller resting",
    async () => {
      const { actors } = await askStates(first);
      return (actors.resting ?? 0) + (actors.passivated ?? 0) >= task.identities && (actors.running ?? 0) === 0;
    },
    task.timeoutMs,
  );
  const seeded = await askStates(first);
  // Rests are recorded once each passivated poller's state is saved: wait until the registry has them all.
  // Rests are recorded once each passivated poller's state is saved: wait until the registry has them
  // all, or stops getting more (a rest not recorded only means that poller is restored at once).
  const resting = await settledCount(() => restingInRegistry(nc), task.identities, task.timeoutMs);
  progress(`${resting} of ${task.identities} pollers recorded as resting`);
  await stopNode(first);

  const longPeriod = { BENCH_POLLER_CHECK_EVERY_MS: String(LONG_CHECK_PERIOD_MS) };
  const single = await spawnNode(task, "cold-one", dataDir, longPeriod);
  const singleReady = await single.ready;
  const singleCheck = await single.check;
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const singleAfter = await askStates(single);
  progress(`one node ready in ${(singleReady.startMs / 1000).toFixed(2)} s (${singleReady.spawnToReadyMs.toFixed(0)} ms from spawn)`);
  await stopNode(single);

  // A check period that ran out: three nodes starting together race for one check.
  const tasks = await new Kvm(nc).open("caliopen_cluster_tasks");
  await tasks.purge("poller-check");
  const trio = await Promise.all(["cold-x", "cold-y", "cold-z"].map((id) => spawnNode(task, id, dataDir, longPeriod)));
  const trioReady = await Promise.all(trio.map((node) => node.ready));
  const trioChecks = await Promise.all(trio.map((node) => node.check));
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const trioAfter = await Promise.all(trio.map((node) => askStates(node)));
  progress(`three nodes ready in ${Math.max(...trioReady.map((ready) => ready.startMs / 1000)).toFixed(2)} s`);
  await Promise.all(trio.map((node) => stopNode(node)));
  await nc.close();

  return {
    identities: task.identities,
    seedMs,
    firstStart: { node: firstReady, check: firstCheck, rested: seeded, recordedResting: resting },
    oneNode: { node: singleReady, check: singleCheck, after: singleAfter },
    threeNodes: { nodes: trioReady, checks: trioChecks, after: trioAfter },
  };
});
