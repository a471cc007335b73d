// The report's section on live IMAP accounts at scale (scripts/bench/live-accounts-scenario.ts): tables of
// what was measured, a sentence on what dominates each figure, an extrapolation to 100,000 accounts, and
// the verdicts on the issue's aims.
import type { Outcome } from "./bench-run.ts";
import type { FaultFigures, Latency, LiveAccountsResult, NodeFootprint } from "./live-accounts-results.ts";
import { backgroundLine, failureText, mib, seconds } from "./report-format.ts";
import { formatBytes, formatCount, formatMs } from "./stats.ts";

/** The issue's aims. */
const AIMS = { newMailP99Ms: 2_000, tickLatenessP99Ms: 1_000, idleBackMs: 10_000 };
/** The extrapolation's size. */
const TARGET_ACCOUNTS = 100_000;
const MACHINES = [3, 10, 25];

export interface LiveAccountsVerdict {
  target: string;
  measured: string;
  met: boolean;
}

const sum = (nodes: NodeFootprint[], pick: (node: NodeFootprint) => number) => nodes.reduce((total, node) => total + pick(node), 0);
const lat = (value: Latency) =>
  value.count === 0 ? "no samples" : `${formatMs(value.p50)} / ${formatMs(value.p99)} / ${formatMs(value.max)} (${value.count})`;

/** What one account costs a node, from the idle nodes to the loaded ones (sums over the nodes). */
export function perAccount(r: LiveAccountsResult): { heap: number; fds: number; connections: number; rss: number } {
  const accounts = r.config.accounts;
  return {
    heap: (sum(r.loadedNodes, (node) => node.heapUsed) - sum(r.idleNodes, (node) => node.heapUsed)) / accounts,
    rss: (sum(r.loadedNodes, (node) => node.rss) - sum(r.idleNodes, (node) => node.rss)) / accounts,
    fds: (sum(r.loadedNodes, (node) => node.openFds) - sum(r.idleNodes, (node) => node.openFds)) / accounts,
    connections: sum(r.loadedNodes, (node) => node.imapConnections) / accounts,
  };
}

export function liveAccountsVerdicts(outcome: Outcome<LiveAccountsResult> | null): LiveAccountsVerdict[] {
  if (outcome === null) return [];
  const targets = [
    `New mail (APPEND → stored) p99 ≤ ${seconds(AIMS.newMailP99Ms)} with live accounts over 3 nodes`,
    `Poll ticks' lateness p99 ≤ ${seconds(AIMS.tickLatenessP99Ms)}`,
    `Every account's IDLE back on a survivor ≤ ${seconds(AIMS.idleBackMs)} after kill -9 of a node`,
    "No mail missed through kill -9 and a join",
    "No mail imported twice through kill -9 and a join",
  ];
  if (!outcome.ok) return targets.map((target) => ({ target, measured: "the scenario failed", met: false }));
  const r = outcome.value;
  const x = r.faults;
  if (x === null)
    return targets.map((target) => ({
      target,
      measured: `not measured: the ramp did not bring all ${formatCount(r.config.accounts)} accounts to IDLE`,
      met: false,
    }));
  const n = formatCount(r.config.accounts);
  return [
    {
      target: targets[0] as string,
      measured: `p99 ${formatMs(x.newMail.p99)} (${n} accounts)`,
      met: x.newMail.count > 0 && x.newMail.p99 <= AIMS.newMailP99Ms,
    },
    {
      target: targets[1] as string,
      measured: `p99 ${formatMs(x.tickLateness.p99)} (${x.tickLateness.count} ticks)`,
      met: x.tickLateness.count > 0 && x.tickLateness.p99 <= AIMS.tickLatenessP99Ms,
    },
    {
      target: targets[2] as string,
      measured: Number.isFinite(x.failover.idleBackMs)
        ? `${seconds(x.failover.idleBackMs)} for ${formatCount(x.failover.victimAccounts)} accounts`
        : `${formatCount(x.failover.accountsBack)} of ${formatCount(x.failover.victimAccounts)} accounts back within the wait`,
      met: Number.isFinite(x.failover.idleBackMs) && x.failover.idleBackMs <= AIMS.idleBackMs,
    },
    { target: targets[3] as string, measured: `${x.delivery.missed} of ${formatCount(x.delivery.sent)}`, met: x.delivery.missed === 0 },
    {
      target: targets[4] as string,
      measured: `${x.delivery.storedTwice} stored twice (${x.delivery.fetchedTwice} fetched twice, folded by the import)`,
      met: x.delivery.storedTwice === 0,
    },
  ];
}

function nodeRows(label: string, nodes: NodeFootprint[]): string[] {
  return nodes.map(
    (node) =>
      `| ${label} | ${node.node} | ${formatCount(node.accounts)} | ${formatCount(node.watching)} | ${formatCount(node.imapConnections)} | ${formatCount(node.openFds)} | ${mib(node.heapUsed)} | ${mib(node.rss)} | ${formatMs(node.loopDelayP99Ms)} / ${formatMs(node.loopDelayMaxMs)} |`,
  );
}

/** The nodes' warnings, phase by phase. */
function warningsByPhase(r: LiveAccountsResult): string[] {
  const phases = Object.entries(r.warnings);
  const failed = Object.entries(r.appendFailures);
  if (phases.length === 0 && failed.length === 0) return ["", "The nodes logged no warning; every APPEND succeeded."];
  return [
    "",
    "Warnings and errors the nodes logged, by phase, and APPENDs that failed:",
    "",
    ...phases.map(
      ([phase, counts]) =>
        `- **${phase}**: ${Object.entries(counts)
          .sort((a, b) => b[1] - a[1])
          .map(([message, times]) => `"${message}" × ${formatCount(times)}`)
          .join(", ")}`,
    ),
    ...(failed.length === 0 ? [] : [`- **APPENDs failed**: ${failed.map(([reason, times]) => `"${reason}" × ${formatCount(times)}`).join(", ")}`]),
  ];
}

function extrapolation(r: LiveAccountsResult): string[] {
  const cost = perAccount(r);
  const baseHeap = sum(r.idleNodes, (node) => node.heapUsed) / r.idleNodes.length;
  const baseRss = sum(r.idleNodes, (node) => node.rss) / r.idleNodes.length;
  const baseFds = sum(r.idleNodes, (node) => node.openFds) / r.idleNodes.length;
  const dovecotPerConnection = r.ramp.dovecot.imapProcesses > 0 ? r.ramp.dovecot.pssBytes / r.ramp.dovecot.imapProcesses : Number.NaN;
  // How fast accounts came back to IDLE when they all had to at once: the kill's, the ramp being paced.
  const takeover = r.faults === null ? Number.NaN : (r.faults.failover.victimAccounts * 1000) / r.faults.failover.idleBackMs;
  const rows = MACHINES.map((machines) => {
    const each = TARGET_ACCOUNTS / machines;
    return `| ${machines} | ${formatCount(each)} | ${mib(baseHeap + each * cost.heap)} | ${mib(baseRss + each * cost.rss)} | ${formatCount(baseFds + each * cost.fds)} | ${formatCount(each * cost.connections)} |`;
  });
  const connections = TARGET_ACCOUNTS * cost.connections;
  return [
    "",
    `**Towards ${formatCount(TARGET_ACCOUNTS)} accounts.** Per account a node pays ${formatBytes(cost.heap)} of heap, ${formatBytes(cost.rss)} of RSS, ${cost.fds.toFixed(2)} file descriptors and ${cost.connections.toFixed(2)} IMAP connections (from the idle nodes to the loaded ones, over ${formatCount(r.config.accounts)} accounts); linearly, one node process per machine:`,
    "",
    "| machines | accounts each | heap | RSS | open fds | IMAP connections |",
    "|---:|---:|---:|---:|---:|---:|",
    ...rows,
    "",
    `Descriptors are one per account: \`ulimit -n\` must pass the accounts a process holds (${formatCount(r.fdLimit)} here). Memory is linear too, measured here over ${formatCount(r.config.accounts)} accounts, which also counts what a node's first work warms up (caches, compiled code, the users' inbound actors): more accounts per node cost less each. A heap of several GiB needs V8's limit raised (\`--max-old-space-size\`), or more node processes per machine. **The IMAP provider**: ${formatCount(connections)} connections held open at once — a Dovecot like this one spends a process per connection (${formatBytes(dovecotPerConnection)} PSS each here, ${mib(connections * dovecotPerConnection)} for all), and real providers cap connections per user and per client address, so the accounts' IDLEs spread over many providers in practice and a single source address needs their blessing. **Restarts**: after the kill the survivors brought ${formatCount(takeover)} accounts/s back to IDLE (logins, a sync, SELECT, IDLE, with Dovecot and the nodes on the same 2 cores); at that rate the share of one of ${MACHINES[0]} machines (${formatCount(TARGET_ACCOUNTS / (MACHINES[0] as number))} accounts) takes ${seconds((TARGET_ACCOUNTS * 1000) / (MACHINES[0] as number) / takeover)} to come back, and nothing but the survivors' own speed paces that reconnect storm towards the provider. **nats-server**: idle accounts cost it nothing per second (IDLE is between the node and the provider); each new mail is a few orders and KV writes, and each account's poller and worker an actor snapshot: ${formatCount(TARGET_ACCOUNTS * 2)} snapshots in the KV, written on each tick and sync.`,
  ];
}

function rampLines(r: LiveAccountsResult): string[] {
  const c = r.config;
  const last = r.ramp.timeline.at(-1);
  return [
    "",
    "| Ramp: add_identity × all → | time |",
    "|---|---:|",
    `| every account's worker running | ${seconds(r.ramp.allRunningMs)} |`,
    `| every account's worker watching | ${seconds(r.ramp.allWatchingMs)} |`,
    `| Dovecot has shown every account IDLEing | ${r.ramp.completed ? seconds(r.ramp.allIdleMs) : `**never**: ${formatCount(last?.idle ?? 0)} of ${formatCount(c.accounts)} after ${seconds(last?.atMs ?? Number.NaN)}`} |`,
    `| Dovecot logins from the nodes: busiest second / all | ${formatCount(r.ramp.dovecot.peakLoginsPerSecond)}/s / ${formatCount(r.ramp.dovecot.logins)} |`,
    `| Dovecot imap processes, their PSS, its CPU over the ramp | ${formatCount(r.ramp.dovecot.imapProcesses)}, ${mib(r.ramp.dovecot.pssBytes)}, ${seconds(r.ramp.dovecot.cpuMs)} |`,
    "",
    r.ramp.completed
      ? `The announcements took ${seconds((c.accounts * 1000) / c.rampPerSecond)}; each account is a poller reading its identity, an \`add_worker\`, a first sync (LOGIN, SELECT, SEARCH, one message fetched and imported) and then the watch's own login, SELECT and IDLE, with Dovecot forking an imap process per login on the same two cores.`
      : `**The ramp did not complete**, so nothing after it was measured. Running / watching / seen IDLEing, every tenth second: ${r.ramp.timeline
          .filter((_, index) => index % 10 === 0)
          .map((sample) => `${formatCount(sample.running)}/${formatCount(sample.watching)}/${formatCount(sample.idle)}`)
          .join(
            ", ",
          )}. Workers that stop running (the count falls) are those of a node that fenced itself off (see its warnings below): it stops every actor it holds, the others take them, and each one's sync starts over.`,
  ];
}

function perAccountLines(r: LiveAccountsResult): string[] {
  const cost = perAccount(r);
  const loadedConnections = sum(r.loadedNodes, (node) => node.imapConnections);
  return [
    `**Per account**: ${formatBytes(cost.heap)} of heap, ${formatBytes(cost.rss)} of RSS, ${cost.fds.toFixed(2)} file descriptors, ${cost.connections.toFixed(2)} IMAP connections (${formatCount(loadedConnections)} for ${formatCount(r.config.accounts)} accounts). The descriptors are the IMAP sockets; the heap is two actors per account (the poller and the imap worker, with their snapshots' writers) and the open imapflow clients with their buffers.`,
  ];
}

function joinLine(x: FaultFigures): string {
  const join = x.join;
  if (join === null) return `**A new node joins: it did not start.** ${x.joinError?.split("\n")[0] ?? ""}`;
  const perNode = Object.entries(join.accountsPerNode)
    .sort()
    .map(([node, count]) => `${node} ${formatCount(count)}`)
    .join(", ");
  const moved = join.settled
    ? `the ${formatCount(join.movedAccounts)} accounts that moved all IDLEd on new connections after ${seconds(join.idleBackMs)}`
    : `**it did not settle within the wait**: ${formatCount(join.movedIdle)} of the ${formatCount(join.movedAccounts)} accounts that moved IDLEd on new connections`;
  return `**A new node joins** (${join.node}): ready ${seconds(join.startMs)} after its process started (loading the code, connecting, joining the cluster); from that start, the placement settled after ${seconds(join.rebalanceMs)} and ${moved}; accounts per node: ${perNode}; Dovecot's busiest second of logins then: ${formatCount(join.peakLoginsPerSecond)}/s.`;
}

function faultLines(r: LiveAccountsResult, x: FaultFigures): string[] {
  const c = r.config;
  const f = x.failover;
  return [
    "",
    "| Latency (p50 / p99 / max (samples)) | steady | from the kill to the join | during the join |",
    "|---|---:|---:|---:|",
    `| new mail: APPEND sent → message stored | ${lat(x.newMail)} | ${lat(x.newMailDuringFailover)} | ${lat(x.newMailDuringJoin)} |`,
    `| poll tick ran − due (every ${c.pollMinutes} min) | ${lat(x.tickLateness)} | ${lat(x.tickLatenessDuringFaults)} (from the kill to the end) | |`,
    "",
    `New mail: ${formatCount(c.appendsPerSecond)} APPENDs/s to accounts picked at random, ${c.steadySeconds} s steady, then on through the kill and the join. Its latency is Dovecot telling the IDLEing connection (inotify, or its once-a-second look when the kernel's 128 inotify instances per user are taken), the worker's incremental sync (on the watching connection, borrowed: NOOP, SEARCH, FETCH), the raw stored, and the import by the user's inbound actor. A tick's lateness is the poller's timer firing, its read of the identity, and the node's event loop being busy with everything else; ticks that fell due while their poller's node was dead run when it is back on a survivor, hence the second column.`,
    "",
    `| kill -9 of ${f.victim} (${formatCount(f.victimAccounts)} accounts) → | time |`,
    "|---|---:|",
    `| each of its accounts' worker running on a survivor | ${seconds(f.runningMs)} |`,
    `| each IDLEing on a new connection (IDLE back) | ${Number.isFinite(f.idleBackMs) ? seconds(f.idleBackMs) : `**not within the wait**: ${formatCount(f.accountsBack)} of ${formatCount(f.victimAccounts)}`} |`,
    `| a mail dropped into each of its mailboxes right after the kill stored | ${Number.isFinite(f.probesStoredMs) ? seconds(f.probesStoredMs) : `**not within the wait**: ${formatCount(f.probesStored)} of ${formatCount(f.victimAccounts)}`} |`,
    `| Dovecot logins from the nodes meanwhile: busiest second / all (the reconnect storm) | ${formatCount(f.dovecot.peakLoginsPerSecond)}/s / ${formatCount(f.dovecot.logins)} |`,
    `| Dovecot CPU meanwhile | ${seconds(f.dovecot.cpuMs)} |`,
    "",
    `The failover is the survivors noticing the death (the node heartbeat's timeout), taking the dead node's shards, and each actor restarting from its snapshot on the first order or deadline; the watch then reconnects (in its turn: CALIOPEN_IMAP_CONNECTS_PER_SECOND per node) and syncs on that connection. The storm is ${(f.dovecot.logins / Math.max(1, f.victimAccounts)).toFixed(2)} logins per moved account, ${formatCount(f.dovecot.peakLoginsPerSecond)} in the busiest second.`,
    "",
    joinLine(x),
    "",
    `**Every mail, once.** ${formatCount(x.delivery.sent)} mails sent (the APPENDs and the probes), ${formatCount(x.delivery.stored)} stored, **${x.delivery.missed} missed** within 3 min of the stream's end${
      x.delivery.missed === 0
        ? ""
        : ` (sent during: ${Object.entries(x.delivery.missedByPhase)
            .map(([phase, count]) => `${phase} ${count}`)
            .join(", ")})`
    }, **${x.delivery.storedTwice} stored twice** (a Message-ID in two message documents, or listed as a conflicting copy); ${x.delivery.fetchedTwice} fetched twice (the same bytes in two raws: a sync that ran again over mail already taken, which the import folds into the one message).`,
  ];
}

export function liveAccountsSection(outcome: Outcome<LiveAccountsResult> | null): string[] {
  if (outcome === null) return [];
  const lines = ["### Live IMAP accounts over three nodes: IDLE push, poll ticks, kill -9 and a join", ""];
  if (!outcome.ok) return [...lines, failureText(outcome.error), ...backgroundLine([outcome])];
  const r = outcome.value;
  const c = r.config;
  lines.push(
    `One Dovecot (scripts/local-servers/dovecot.ts, ${r.dovecotSettings}) holds ${formatCount(c.accounts)} mailboxes; three node processes (scripts/bench/live-node-process.ts: the Caliopen services as \`npm start\` wires them, IDLE push on, soft fd limit ${formatCount(r.fdLimit)}, failure detection ${c.failureDetectionMs === null ? "their default" : seconds(c.failureDetectionMs)}) share one nats-server. Each account is a user with a remote IMAP identity, created in the store and announced with \`add_identity\` on \`identitiesWorker\` as the API does, ${formatCount(c.rampPerSecond)} per second; ${formatCount(c.pollingAccounts)} of them are polled every ${c.pollMinutes} min, the others every 15 min (push is a node setting: all of them IDLE). Setup (mailboxes, users, identities) took ${seconds(r.setupMs)}.`,
    `**How it is read.** "Running" and "watching": the worker runs, and its push region is \`watching\` (the debug subject \`caliopen.debug.actors\`, paged per node; a worker restored from its snapshot says \`watching\` before its connection is up). "IDLE": Dovecot's imap process for a connection of that user has \`IDLE\` in its title (\`ps\`, one process per connection), and after a kill or a join it must be a new process. "Stored": the message document with that Message-ID appears in the messages bucket (a KV watch). A tick's lateness: the identity's \`last_poll\` minus the \`next_poll\` its previous tick set (both written by the poller). APPENDs come from 127.0.0.2 (scripts/bench/live-appender.ts), so that Dovecot's log tells the nodes' logins from theirs.`,
    ...rampLines(r),
    "",
    "| | node | accounts | watching | IMAP connections | open fds | heap (after GC) | RSS | event loop delay p99 / max since the row above |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ...nodeRows("before any account", r.idleNodes),
    ...nodeRows(r.ramp.completed ? "every account IDLEing" : "at the end of the ramp", r.loadedNodes),
    ...(r.faults === null ? [] : nodeRows(`after kill -9 of ${r.faults.failover.victim}`, r.faults.survivorNodes)),
    "",
    ...(r.ramp.completed ? perAccountLines(r) : []),
    ...(r.faults === null ? [] : faultLines(r, r.faults)),
    ...(r.ramp.completed ? extrapolation(r) : []),
    ...warningsByPhase(r),
    "",
    `A KV put seen by a client of its own (one every 250 ms; a node's heartbeat is such a write, and a node whose heartbeat is not renewed for 60 % of the failure detection time fences itself off), p50 / p99 / max (samples) by phase: ${Object.entries(
      r.kvPut,
    )
      .map(([phase, value]) => `${phase} ${lat(value)}`)
      .join("; ")}. The nats-server used ${seconds(r.natsServer.cpuMs)} of CPU over the run, ${mib(r.natsServer.rss)} RSS at the end.`,
    ...backgroundLine([outcome]),
  );
  return lines;
}
