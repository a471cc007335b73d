// Two mailboxes imported at once, by one node and then by two. Each node is a process of its own
// (scripts/bench/mail-node-process.ts) on the scenario's nats-server. Users and identities are picked so
// that, with two nodes, each mailbox's imap worker and its user's inbound actor land on the same node and
// the two mailboxes on different nodes (rendezvous owner of their shards); the debug subject
// `caliopen.debug.actors` confirms where the workers run before the clock starts, and where the inbound
// actors ran once done.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { NatsConnection } from "@nats-io/transport-node";
import { IMAP_KIND } from "../../actors/imap/imap-worker.ts";
import { INBOUND_KIND } from "../../actors/inbound/inbound-processor.ts";
import { rendezvousOwner, shardOf } from "../../runtime/cluster/rendezvous.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { NATS_ENV, natsEndpointEnv } from "../../runtime/nats-endpoint.ts";
import { nodeConfigFromEnv } from "../../supervisors/node-config.ts";
import { registerCleanup } from "./cleanup.ts";
import { processCpuMs } from "./cpu-meter.ts";
import { startIoMeter } from "./io-meter.ts";
import { type BenchDovecot, benchUser, imapIdentity, type MailStore, openMailStore, retireIdentity } from "./mail-bench.ts";
import type { MailNodeTask } from "./mail-node-process.ts";
import type { ImapPairRun, ImapTask } from "./results.ts";

const NODE_SCRIPT = fileURLToPath(new URL("./mail-node-process.ts", import.meta.url));
const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** The nodes' shard count: their default, as `npm start` would run them. */
const SHARDS = nodeConfigFromEnv({}).shards;
const SETTLE_MS = 60_000;

interface NodeProcess {
  id: string;
  child: ChildProcess;
  exited: Promise<void>;
  warnings: Record<string, number>;
}

/** Our environment without any NATS_* setting of the operator's: the node must use the bench server's alone. */
function environmentWithoutNats(): NodeJS.ProcessEnv {
  const names = new Set<string>(Object.values(NATS_ENV));
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !names.has(name)));
}

async function spawnMailNode(task: MailNodeTask): Promise<NodeProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", NODE_SCRIPT], {
    cwd: REPO_ROOT,
    env: { ...environmentWithoutNats(), ...natsEndpointEnv(task.endpoint), BENCH_MAIL_NODE: JSON.stringify(task) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const unregister = registerCleanup(async () => void child.kill("SIGKILL"));
  const node: NodeProcess = {
    id: task.nodeId,
    child,
    warnings: {},
    exited: new Promise((resolve) =>
      child.once("exit", () => {
        unregister();
        resolve();
      }),
    ),
  };
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${task.nodeId} not ready within 30 s: ${output.slice(-500)}`)), 30_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("ready\n")) {
        clearTimeout(timer);
        resolve();
      }
      const line = output.split("\n").find((candidate) => candidate.startsWith("warnings "));
      if (line !== undefined) node.warnings = JSON.parse(line.slice("warnings ".length)) as Record<string, number>;
    });
    child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(chunk));
    child.once("exit", (code) => reject(new Error(`node ${task.nodeId} exited with ${code} before it was ready: ${output.slice(-500)}`)));
  });
  return node;
}

async function stopNode(node: NodeProcess): Promise<void> {
  node.child.kill("SIGTERM");
  const killed = setTimeout(() => node.child.kill("SIGKILL"), 15_000);
  await node.exited;
  clearTimeout(killed);
}

/** Every reply to a debug subject that every node answers. */
async function askAll(nc: NatsConnection, subject: string, query: Record<string, unknown>): Promise<Record<string, unknown>[]> {
  const replies: Record<string, unknown>[] = [];
  for await (const msg of await nc.requestMany(subject, encodeJson(query), { strategy: "stall", stall: 200, maxWait: 2_000 })) {
    const decoded = decodeJson(msg.data);
    if (decoded.ok && typeof decoded.value === "object" && decoded.value !== null) replies.push(decoded.value as Record<string, unknown>);
  }
  return replies;
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = SETTLE_MS): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Waits until every node sees all of them live and together they own every shard. */
function clusterSettled(nc: NatsConnection, ids: string[]): Promise<true> {
  const wanted = [...ids].sort().join(",");
  return until(`the nodes ${wanted} sharing the shards`, async () => {
    const nodes = (await askAll(nc, "caliopen.debug.nodes", {})).filter((reply) => ids.includes(String(reply.node)));
    const clusters = nodes.map((reply) => reply.cluster as { ownedShards: number; liveNodes: string[] });
    const agreed = clusters.every((cluster) => [...cluster.liveNodes].sort().join(",") === wanted);
    const owned = clusters.reduce((sum, cluster) => sum + cluster.ownedShards, 0);
    return nodes.length === ids.length && agreed && owned === SHARDS ? true : undefined;
  });
}

/** Where each actor of `kind` runs, by key, as the nodes report it. */
async function actorNodes(nc: NatsConnection, kind: string): Promise<Map<string, string>> {
  const where = new Map<string, string>();
  for (const page of await askAll(nc, "caliopen.debug.actors", { kind, limit: 1_000 })) {
    for (const actor of (page.actors as { key: string; status: string }[] | undefined) ?? [])
      if (actor.status !== "stopped") where.set(actor.key, String(page.node));
  }
  return where;
}

interface Mailbox {
  login: string;
  userId: string;
  identityId: string;
  /** The node meant to run both its worker and its user's inbound actor. */
  node: string;
}

/** A user whose inbound actor, and an identity whose imap worker, both hash to a shard `node` owns. */
async function placedMailbox(view: MailStore, dovecot: BenchDovecot, ids: string[], node: string, login: string, name: string): Promise<Mailbox> {
  const owner = (kind: string, key: string) => rendezvousOwner(ids, shardOf(kind, key, SHARDS));
  for (let attempt = 0; attempt < 64; attempt++) {
    const { userId } = await benchUser(view.store, `${name}-${attempt}`);
    if (owner(INBOUND_KIND, userId) !== node) continue;
    for (let variant = 0; variant < 64; variant++) {
      const identity = await imapIdentity(view.store, userId, dovecot, login, `${login}+${variant}@remote.test`);
      if (owner(IMAP_KIND, identity.identity_id) === node) return { login, userId, identityId: identity.identity_id, node };
      await retireIdentity(view.store, userId, identity.identity_id);
    }
  }
  throw new Error(`no user and identity found whose actors hash to ${node}`);
}

/** `nodeCount` node processes import every login's mailbox, all fullfetches sent at once. */
export async function importTogether(
  task: ImapTask,
  dovecot: BenchDovecot,
  secretKey: string,
  logins: string[],
  nodeCount: number,
  label: string,
): Promise<ImapPairRun> {
  const ids = Array.from({ length: nodeCount }, (_, index) => `bench-imap-${label}-${index + 1}`);
  const nodes: NodeProcess[] = [];
  const view = await openMailStore(task.endpoint, secretKey);
  let retire = async (): Promise<unknown> => undefined;
  try {
    for (const nodeId of ids) nodes.push(await spawnMailNode({ endpoint: task.endpoint, secretKey, nodeId, admit: [dovecot.server] }));
    await clusterSettled(view.nc, ids);
    const mailboxes: Mailbox[] = [];
    retire = () => Promise.all(mailboxes.map((box) => retireIdentity(view.store, box.userId, box.identityId)));
    for (const [index, login] of logins.entries()) {
      mailboxes.push(await placedMailbox(view, dovecot, ids, ids[index % ids.length] as string, login, `pair-${label}-${index}`));
    }
    for (const box of mailboxes) view.nc.publish("imap_worker", encodeJson({ order: "add_worker", remote_id: box.identityId, user_id: box.userId }));
    const workersPlaced = await until("the imap workers running where their shards are", async () => {
      const where = await actorNodes(view.nc, IMAP_KIND);
      return mailboxes.every((box) => where.get(box.identityId) === box.node) ? mailboxes.map((box) => where.get(box.identityId) as string) : undefined;
    });

    const pids = nodes.map((node) => node.child.pid ?? Number.NaN);
    const cpuBefore = pids.map(processCpuMs);
    const nodeIo = pids.map(startIoMeter);
    const natsIo = startIoMeter(task.serverPid);
    const natsBefore = processCpuMs(task.serverPid);
    const dovecotBefore = dovecot.cpuMs();
    const startedIso = new Date().toISOString();
    const started = performance.now();
    for (const box of mailboxes) view.nc.publish("IMAPfetcher", encodeJson({ order: "fullfetch", remote_id: box.identityId, user_id: box.userId }));
    const finishedMs: (number | null)[] = mailboxes.map(() => null);
    const deadline = started + Math.max(180_000, logins.length * task.messages * 60);
    while (finishedMs.some((ms) => ms === null)) {
      await Promise.all(
        mailboxes.map(async (box, index) => {
          if (finishedMs[index] !== null) return;
          // The last step of a run: the worker writes the identity's last_sync once every import was answered.
          const identity = await view.store.identities.get(box.userId, box.identityId);
          const lastSync = identity?.infos.last_sync;
          if (typeof lastSync === "string" && lastSync >= startedIso) finishedMs[index] = performance.now() - started;
        }),
      );
      if (performance.now() > deadline) throw new Error(`${label}: the fullfetches did not finish within ${((deadline - started) / 1000).toFixed(0)} s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const ms = performance.now() - started;
    const cpuMs = pids.map((pid, index) => processCpuMs(pid) - (cpuBefore[index] ?? Number.NaN));
    const natsCpuMs = processCpuMs(task.serverPid) - natsBefore;
    const nodeSyscalls = nodeIo.map((meter) => meter().syscalls);
    const natsSyscalls = natsIo().syscalls;
    const dovecotCpuMs = dovecot.cpuMs() - dovecotBefore;

    const stored = await Promise.all(mailboxes.map((box) => view.storedMessages(box.userId)));
    if (stored.some((count) => count !== task.messages))
      throw new Error(`${label}: ${stored.join(" and ")} messages stored, ${task.messages} expected in each mailbox`);
    const inbound = await actorNodes(view.nc, INBOUND_KIND);
    const inboundPlaced = mailboxes.map((box) => inbound.get(box.userId) ?? "not running");
    if (mailboxes.some((box, index) => inboundPlaced[index] !== box.node))
      throw new Error(`${label}: inbound actors ran on ${inboundPlaced.join(", ")}, expected ${mailboxes.map((box) => box.node).join(", ")}`);
    const messages = task.messages * logins.length;
    const run: ImapPairRun = {
      nodes: nodeCount,
      mailboxes: logins.length,
      messages,
      ms,
      perSecond: (messages * 1000) / ms,
      mailboxMs: finishedMs.map((value) => value ?? Number.NaN),
      nodeCpuMs: cpuMs,
      natsCpuMs,
      dovecotCpuMs,
      nodeSyscalls,
      natsSyscalls,
      placement: mailboxes.map((box, index) => ({ node: box.node, worker: workersPlaced[index] ?? "", inbound: inboundPlaced[index] ?? "" })),
      warnings: {},
    };
    await Promise.all(nodes.map(stopNode));
    for (const node of nodes) for (const [message, times] of Object.entries(node.warnings)) run.warnings[message] = (run.warnings[message] ?? 0) + times;
    return run;
  } finally {
    await Promise.all(nodes.map(stopNode));
    await retire();
    await view.close();
  }
}
