// Live accounts at scale (issue 16, items 2 and 4). One Dovecot holding `accounts` mailboxes; three node
// processes with IDLE push on; one user per account, each with a remote IMAP identity created in the store
// and announced with `add_identity`, as the API does; a tenth of them polled every minute. Measured:
//  - the ramp: from the add_identity orders until Dovecot has shown every account IDLEing (the titles of
//    its imap processes); each node's heap, fds and Dovecot connections before and after;
//  - new mail: a steady stream of APPENDs to random accounts, each until its message document is stored;
//  - poll ticks: how late each tick ran after the time it was due (the identity's last_poll and next_poll);
//  - kill -9 of the node holding most accounts: until each of its accounts runs on a survivor and IDLEs
//    on a new connection, until a mail dropped into each of its mailboxes right after the kill is stored,
//    and the logins per second Dovecot took meanwhile (the reconnect storm);
//  - a new node joins: until the placement settles and every account it took IDLEs on a new connection;
//  - at the end, every mail sent stored exactly once (by Message-ID and by the raws' bytes).
import { readFileSync } from "node:fs";
import type { NatsConnection } from "@nats-io/transport-node";
import { encodeJson } from "../../runtime/json.ts";
import { childMain } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import { processCpuMs } from "./cpu-meter.ts";
import type {
  DeliveryTally,
  DovecotFigures,
  FaultFigures,
  JoinFigures,
  Latency,
  LiveAccountsResult,
  LiveAccountsTask,
  NodeFootprint,
  RampSample,
} from "./live-accounts-results.ts";
import {
  clusterSettled,
  connectionsByPid,
  imapPlacement,
  type LiveNode,
  openFds,
  probeNode,
  reached,
  spawnLiveNode,
  stopLiveNode,
  type WorkerPlace,
} from "./live-cluster.ts";
import { dropMail, idleSessions, imapProcesses, type LiveDovecot, loginsBetween, startLiveDovecot } from "./live-dovecot.ts";
import { startKvProbe } from "./live-kv-probe.ts";
import { startMailStream } from "./live-mail-stream.ts";
import { watchStore } from "./live-store-watch.ts";
import { benchUser, newSecretKey, openMailStore, PASSWORD } from "./mail-bench.ts";
import { corpusMessage, corpusMessageId, crlf } from "./mail-corpus.ts";
import { epochNow, percentile } from "./stats.ts";

const DOVECOT_SETTINGS =
  "`manyConnections`: up to 10,000 imap processes (one per connection) and clients per service, imap-login in high-performance mode, IDLE checks every second where inotify is exhausted, the command each imap process runs in its title";
/** Concurrent store writes while creating users and identities. */
const SETUP_CONCURRENCY = 16;
/** Mail still arriving when the stream stops is waited for this long before it counts as missed (a failover can delay some by a minute and more). */
const DRAIN_MS = 180_000;
/** How long the failover and the join may take before they count as not done (and the scenario goes on). */
const FAULT_WAIT_MS = 180_000;
/** The join is settled once the placement has not changed for this long. */
const STABLE_MS = 3_000;

interface Account {
  login: string;
  userId: string;
  identityId: string;
  polling: boolean;
}

const progress = (message: string) => process.stderr.write(`bench:   live: ${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function inBatches<T>(items: readonly T[], concurrency: number, run: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let index = next++; index < items.length; index = next++) await run(items[index] as T, index);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** How many times each value occurs. */
function tally(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}

function latency(samples: number[]): Latency {
  return {
    count: samples.length,
    p50: percentile(samples, 50),
    p99: percentile(samples, 99),
    max: samples.length === 0 ? Number.NaN : Math.max(...samples),
  };
}

function softFdLimit(): number {
  const line = readFileSync("/proc/self/limits", "utf8")
    .split("\n")
    .find((candidate) => candidate.startsWith("Max open files"));
  return Number(line?.split(/\s{2,}/)[1] ?? Number.NaN);
}

function rssOf(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8")
      .split("\n")
      .find((candidate) => candidate.startsWith("VmRSS:"));
    return Number(line?.replace(/\D+/g, "") ?? Number.NaN) * 1024;
  } catch {
    return Number.NaN;
  }
}

/** Each node's figures now. */
async function footprints(nc: NatsConnection, nodes: LiveNode[], dovecot: LiveDovecot, placement: Map<string, WorkerPlace>): Promise<NodeFootprint[]> {
  // Sockets and descriptors read together, before the nodes are asked anything.
  const connections = connectionsByPid(dovecot.port);
  const fds = new Map(nodes.map((node) => [node.id, openFds(node.pid)]));
  return Promise.all(
    nodes.map(async (node) => {
      const probe = await probeNode(nc, node.id);
      const held = [...placement.values()].filter((place) => place.node === node.id);
      return {
        node: node.id,
        accounts: held.length,
        watching: held.filter((place) => place.watching).length,
        imapConnections: connections.get(node.pid) ?? 0,
        openFds: fds.get(node.id) ?? Number.NaN,
        heapUsed: probe.heapUsed,
        rss: probe.rss,
        loopDelayP99Ms: probe.loopDelayP99Ms,
        loopDelayMaxMs: probe.loopDelayMaxMs,
      };
    }),
  );
}

/** Marks, for each of `accounts` not yet marked, the moment Dovecot shows it IDLEing on a connection not in `before`. */
function noteIdle(dovecot: LiveDovecot, accounts: readonly Account[], idleAt: Map<string, number>, before: ReadonlySet<number>, now: number): void {
  const sessions = idleSessions(dovecot);
  for (const account of accounts) {
    if (idleAt.has(account.login)) continue;
    if ([...(sessions.get(account.login) ?? [])].some((pid) => !before.has(pid))) idleAt.set(account.login, now);
  }
}

/** Every pid of an IDLEing imap process now. */
const idlePids = (dovecot: LiveDovecot) => new Set([...idleSessions(dovecot).values()].flatMap((pids) => [...pids]));

async function dovecotFigures(dovecot: LiveDovecot, fromEpoch: number, toEpoch: number, cpuBefore: number): Promise<DovecotFigures> {
  const processes = imapProcesses(dovecot);
  const logins = await loginsBetween(dovecot, fromEpoch, toEpoch);
  return {
    imapProcesses: processes.count,
    pssBytes: processes.pssBytes,
    peakLoginsPerSecond: logins.peakPerSecond,
    logins: logins.total,
    cpuMs: dovecot.cpuMs() - cpuBefore,
  };
}

childMain<LiveAccountsTask>(async (task): Promise<LiveAccountsResult> => {
  const setupStarted = performance.now();
  const natsCpuBefore = processCpuMs(task.serverPid);
  const dovecot = await startLiveDovecot();
  const tag = `live-${Date.now()}`;
  const logins = Array.from({ length: task.accounts }, (_, index) => `live${index}`);
  // One mail in each mailbox: it exists, and the first sync imports something.
  await inBatches(logins, SETUP_CONCURRENCY, (login, index) =>
    dropMail(dovecot, login, Buffer.from(crlf(corpusMessage(index, { to: `${login}@remote.test`, tag: `${tag}-first`, maxBytes: 4 * 1024 }).text))),
  );

  const secretKey = newSecretKey();
  const nodes = new Map<string, LiveNode>();
  /** Every node started, the killed one too: their warnings. */
  const started: LiveNode[] = [];
  let nextNode = 1;
  const addNode = async () => {
    const id = `live-${nextNode++}`;
    const node = await spawnLiveNode({
      endpoint: task.endpoint,
      secretKey,
      nodeId: id,
      admit: [dovecot.server],
      ...(task.failureDetectionMs !== null && { failureDetectionMs: task.failureDetectionMs }),
    });
    nodes.set(id, node);
    started.push(node);
    return id;
  };
  const stopNodes = async () => {
    await Promise.all([...nodes.values()].map(stopLiveNode));
    nodes.clear();
  };
  /** When each phase began (epoch ms), to tell in which one a node warned. */
  const phases: { name: string; at: number }[] = [{ name: "setup", at: Date.now() }];
  const phase = (name: string) => phases.push({ name, at: Date.now() });
  const view = await openMailStore(task.endpoint, secretKey);
  registerCleanup(() => view.close());
  try {
    for (let n = 0; n < 3; n++) await addNode();
    await clusterSettled(view.nc, [...nodes.keys()]);
    progress(`3 nodes up; creating ${task.accounts} users and identities…`);

    const accounts: Account[] = [];
    await inBatches(logins, SETUP_CONCURRENCY, async (login, index) => {
      const polling = index < task.pollingAccounts;
      const { userId } = await benchUser(view.store, login);
      const identity = await view.store.identities.create({
        user_id: userId,
        type: "remote",
        protocol: "imap",
        identifier: `${login}@remote.test`,
        display_name: login,
        infos: { inserver: dovecot.server, outserver: "127.0.0.1:1", poll_interval: polling ? String(task.pollMinutes) : "15" },
        credentials: { username: login, password: PASSWORD },
      });
      accounts[index] = { login, userId, identityId: identity.identity_id, polling };
    });
    const setupMs = performance.now() - setupStarted;
    const polled = new Set(accounts.filter((account) => account.polling).map((account) => account.identityId));
    const watch = await watchStore(view.nc, polled);
    registerCleanup(() => watch.stop());
    const kvProbe = await startKvProbe(task.endpoint);
    registerCleanup(() => kvProbe.stop());

    const nodeIds = () => [...nodes.keys()];
    const placementNow = () => imapPlacement(view.nc, nodeIds());
    const idleNodes = await footprints(view.nc, [...nodes.values()], dovecot, await placementNow());

    // The ramp: every identity announced as the API does.
    progress(`setup done in ${(setupMs / 1000).toFixed(1)} s; add_identity × ${task.accounts}…`);
    phase("ramp");
    const dovecotCpuRamp = dovecot.cpuMs();
    const rampEpoch = Date.now();
    const rampStarted = performance.now();
    // Paced on a grid, as users adding their accounts one after another would.
    const announcing = (async () => {
      for (const [index, account] of accounts.entries()) {
        const due = rampStarted + (index * 1000) / task.rampPerSecond;
        if (due > performance.now()) await sleep(due - performance.now());
        view.nc.publish("identitiesWorker", encodeJson({ order: "add_identity", identity_id: account.identityId, user_id: account.userId }));
      }
      await view.nc.flush();
    })();
    let allRunningMs = Number.NaN;
    let allWatchingMs = Number.NaN;
    const idleAt = new Map<string, number>();
    const timeline: RampSample[] = [];
    const rampLimitMs = (task.accounts * 1000) / task.rampPerSecond + Math.max(180_000, task.accounts * 60);
    while (idleAt.size < task.accounts && performance.now() - rampStarted < rampLimitMs) {
      const placement = await placementNow();
      const now = performance.now() - rampStarted;
      if (Number.isNaN(allRunningMs) && placement.size >= task.accounts) allRunningMs = now;
      const watching = [...placement.values()].filter((place) => place.watching).length;
      if (Number.isNaN(allWatchingMs) && watching >= task.accounts) allWatchingMs = now;
      noteIdle(dovecot, accounts, idleAt, new Set(), now);
      timeline.push({ atMs: now, running: placement.size, watching, idle: idleAt.size });
      progress(`ramp: ${placement.size} running, ${watching} watching, ${idleAt.size} seen IDLEing`);
      await sleep(1_000);
    }
    await announcing;
    const completed = idleAt.size === task.accounts;
    const allIdleMs = completed ? Math.max(...idleAt.values()) : Number.NaN;
    const ramp = { completed, timeline, allRunningMs, allWatchingMs, allIdleMs, dovecot: await dovecotFigures(dovecot, rampEpoch, Date.now(), dovecotCpuRamp) };
    progress(
      completed ? `all ${task.accounts} accounts IDLEing after ${(allIdleMs / 1000).toFixed(1)} s` : `only ${idleAt.size} accounts seen IDLEing: stopping`,
    );
    phase("steady");
    const steadyEpoch = Date.now();
    if (completed) await sleep(5_000);
    const loadedNodes = await footprints(view.nc, [...nodes.values()], dovecot, await placementNow());
    /** What every result carries, read once the nodes are stopped. */
    const closing = async () => {
      watch.stop();
      const natsServer = { cpuMs: processCpuMs(task.serverPid) - natsCpuBefore, rss: rssOf(task.serverPid) };
      await kvProbe.stop();
      const phaseOf = (at: number) => phases.filter((candidate) => candidate.at <= at).at(-1)?.name ?? "setup";
      const kvPut: Record<string, Latency> = {};
      for (const { name } of phases) kvPut[name] = latency(kvProbe.samples.filter((sample) => phaseOf(sample.at) === name).map((sample) => sample.ms));
      await stopNodes();
      const warnings: Record<string, Record<string, number>> = {};
      for (const warning of started.flatMap((node) => node.warnings)) {
        const during = phaseOf(warning.at);
        const counts = warnings[during] ?? {};
        counts[warning.message] = (counts[warning.message] ?? 0) + 1;
        warnings[during] = counts;
      }
      return {
        config: {
          accounts: task.accounts,
          pollingAccounts: task.pollingAccounts,
          pollMinutes: task.pollMinutes,
          appendsPerSecond: task.appendsPerSecond,
          steadySeconds: task.steadySeconds,
          rampPerSecond: task.rampPerSecond,
          failureDetectionMs: task.failureDetectionMs,
        },
        nodes: 3,
        dovecotSettings: DOVECOT_SETTINGS,
        fdLimit: softFdLimit(),
        setupMs,
        idleNodes,
        loadedNodes,
        ramp,
        natsServer,
        warnings,
        kvPut,
      };
    };
    if (!completed) return { ...(await closing()), faults: null, appendFailures: {} };

    // The steady stream.
    const stream = startMailStream({ port: dovecot.port, password: PASSWORD, logins, perSecond: task.appendsPerSecond, tag, phase: "steady" });
    registerCleanup(() => stream.stop());
    await sleep(task.steadySeconds * 1000);

    // kill -9 of the node holding most accounts.
    const before = await placementNow();
    const load = new Map<string, number>();
    for (const place of before.values()) load.set(place.node, (load.get(place.node) ?? 0) + 1);
    const victimId = [...load.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    const victim = victimId === undefined ? undefined : nodes.get(victimId);
    if (victim === undefined || victimId === undefined) throw new Error("no node holds an account: nothing to fail over");
    const victimAccounts = accounts.filter((account) => before.get(account.identityId)?.node === victimId);
    const dovecotCpuFailover = dovecot.cpuMs();
    const idleBeforeKill = idlePids(dovecot);
    stream.setPhase("failover");
    phase("failover");
    const killEpoch = epochNow();
    const killed = performance.now();
    victim.child.kill("SIGKILL");
    await victim.exited;
    nodes.delete(victimId);
    progress(`killed ${victimId} (${victimAccounts.length} accounts); dropping a mail into each of its mailboxes`);
    const probes: { messageId: string; login: string; sentAt: number }[] = [];
    await inBatches(victimAccounts, SETUP_CONCURRENCY, async (account, index) => {
      const probeTag = `${tag}-probe`;
      const raw = Buffer.from(crlf(corpusMessage(index, { to: `${account.login}@remote.test`, tag: probeTag, maxBytes: 4 * 1024 }).text));
      const sentAt = epochNow();
      await dropMail(dovecot, account.login, raw);
      probes.push({ messageId: corpusMessageId(index, probeTag), login: account.login, sentAt });
    });
    let runningMs = Number.NaN;
    let probesStoredMs = Number.NaN;
    const backAt = new Map<string, number>();
    const failoverDone = await reached(
      async () => {
        const placement = await placementNow();
        const survivors = nodeIds();
        const now = performance.now() - killed;
        if (Number.isNaN(runningMs) && victimAccounts.every((account) => survivors.includes(placement.get(account.identityId)?.node ?? ""))) runningMs = now;
        noteIdle(dovecot, victimAccounts, backAt, idleBeforeKill, now);
        if (Number.isNaN(probesStoredMs) && probes.length === victimAccounts.length && probes.every((probe) => watch.stored.has(probe.messageId)))
          probesStoredMs = now;
        return Number.isFinite(runningMs) && Number.isFinite(probesStoredMs) && backAt.size === victimAccounts.length;
      },
      FAULT_WAIT_MS,
      250,
    );
    const idleBackMs = backAt.size === victimAccounts.length ? Math.max(...backAt.values()) : Number.NaN;
    if (!failoverDone) progress(`failover: not complete after ${FAULT_WAIT_MS / 1000} s`);
    progress(
      `failover: running after ${runningMs.toFixed(0)} ms, IDLE back after ${idleBackMs.toFixed(0)} ms, probes stored after ${probesStoredMs.toFixed(0)} ms`,
    );
    const failover = {
      victim: victimId,
      victimAccounts: victimAccounts.length,
      runningMs,
      idleBackMs,
      probesStoredMs,
      accountsBack: backAt.size,
      probesStored: probes.filter((probe) => watch.stored.has(probe.messageId)).length,
      dovecot: await dovecotFigures(
        dovecot,
        killEpoch,
        failoverDone ? killEpoch + Math.max(idleBackMs, probesStoredMs) + 5_000 : epochNow(),
        dovecotCpuFailover,
      ),
    };
    await sleep(5_000);
    const survivorNodes = await footprints(view.nc, [...nodes.values()], dovecot, await placementNow());

    // A new node joins.
    stream.setPhase("join");
    phase("join");
    const beforeJoin = await placementNow();
    const idleBeforeJoin = idlePids(dovecot);
    const joinEpoch = Date.now();
    const joining = performance.now();
    let join: JoinFigures | null = null;
    let joinError: string | null = null;
    const joinerId = await addNode().catch((err: Error) => {
      joinError = err.message;
      progress(`join: the new node did not start: ${err.message.split("\n")[0]}`);
      return null;
    });
    if (joinerId !== null) {
      const startMs = performance.now() - joining;
      let lastChange = joining;
      let signature = "";
      let settledPlacement = new Map<string, WorkerPlace>();
      const movedIdleAt = new Map<string, number>();
      let moved: Account[] = [];
      const joinDone = await reached(
        async () => {
          const placement = await placementNow();
          const now = performance.now();
          const current = [...placement.entries()]
            .map(([key, place]) => `${key}@${place.node}`)
            .sort()
            .join();
          if (current !== signature) {
            signature = current;
            lastChange = now;
          }
          settledPlacement = placement;
          moved = accounts.filter((account) => {
            const now = placement.get(account.identityId)?.node;
            return now !== undefined && now !== beforeJoin.get(account.identityId)?.node;
          });
          noteIdle(dovecot, moved, movedIdleAt, idleBeforeJoin, now - joining);
          const share = [...placement.values()].filter((place) => place.node === joinerId).length;
          const settled = placement.size === task.accounts && share > 0 && now - lastChange >= STABLE_MS;
          return settled && moved.every((account) => movedIdleAt.has(account.login));
        },
        FAULT_WAIT_MS,
        250,
      );
      const accountsPerNode: Record<string, number> = {};
      for (const place of settledPlacement.values()) accountsPerNode[place.node] = (accountsPerNode[place.node] ?? 0) + 1;
      join = {
        node: joinerId,
        startMs,
        movedAccounts: moved.length,
        rebalanceMs: lastChange - joining,
        idleBackMs: joinDone ? Math.max(0, ...movedIdleAt.values()) : Number.NaN,
        settled: joinDone,
        movedIdle: movedIdleAt.size,
        accountsPerNode,
        peakLoginsPerSecond: (await loginsBetween(dovecot, joinEpoch, Date.now())).peakPerSecond,
      };
      progress(`join: ${moved.length} accounts moved, placement settled after ${join.rebalanceMs.toFixed(0)} ms, ${JSON.stringify(accountsPerNode)}`);
    }

    // Every mail stored once.
    phase("drain");
    await stream.stop();
    const sent = [...stream.sent, ...probes.map((probe) => ({ ...probe, phase: "probe" }))];
    const drainUntil = performance.now() + DRAIN_MS;
    while (sent.some((mail) => !watch.stored.has(mail.messageId)) && performance.now() < drainUntil) await sleep(250);
    const storedOf = (messageId: string) => watch.stored.get(messageId);
    const delays = (phase: string) =>
      sent.filter((mail) => mail.phase === phase && storedOf(mail.messageId) !== undefined).map((mail) => (storedOf(mail.messageId)?.at ?? 0) - mail.sentAt);
    const sentIds = new Set(sent.map((mail) => mail.messageId));
    const delivery: DeliveryTally = {
      sent: sent.length,
      stored: sent.filter((mail) => watch.stored.has(mail.messageId)).length,
      missed: sent.filter((mail) => !watch.stored.has(mail.messageId)).length,
      missedByPhase: tally(sent.filter((mail) => !watch.stored.has(mail.messageId)).map((mail) => mail.phase)),
      storedTwice: [...watch.stored.entries()].filter(([id, mail]) => sentIds.has(id) && (mail.keys.size > 1 || mail.conflicted)).length,
      fetchedTwice: [...watch.raws.values()].filter((ids) => ids.size > 1).length,
    };
    if (Object.keys(stream.failures).length > 0) progress(`APPENDs that failed: ${JSON.stringify(stream.failures)}`);
    const tickLate = (from: number, to: number) => watch.ticks.filter((tick) => tick.dueAt >= from && tick.dueAt < to).map((tick) => tick.ranAt - tick.dueAt);
    const faults: FaultFigures = {
      newMail: latency(delays("steady")),
      newMailDuringFailover: latency(delays("failover")),
      newMailDuringJoin: latency(delays("join")),
      tickLateness: latency(tickLate(steadyEpoch, killEpoch)),
      tickLatenessDuringFaults: latency(tickLate(killEpoch, Number.POSITIVE_INFINITY)),
      failover,
      survivorNodes,
      join,
      joinError,
      delivery,
    };
    return { ...(await closing()), faults, appendFailures: { ...stream.failures } };
  } finally {
    await stopNodes();
    await view.close();
    await dovecot.stop();
  }
});
