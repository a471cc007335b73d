// The live-accounts scenario (issue 16, items 2 and 4): its sizes, its task and what it measures. Many
// remote IMAP accounts with IDLE push spread over three node processes and one Dovecot; a steady stream
// of APPENDs; then kill -9 of one node and the join of a new one.
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";

export interface LiveAccountsConfig {
  /** Remote IMAP identities, one per user and Dovecot account. */
  accounts: number;
  /** Of those, how many poll every `pollMinutes` (the rest keep the default interval): tick lateness. */
  pollingAccounts: number;
  pollMinutes: number;
  /** The steady stream of APPENDs to random accounts. */
  appendsPerSecond: number;
  steadySeconds: number;
  /** add_identity orders per second in the ramp: users adding their accounts, not one burst. */
  rampPerSecond: number;
  /** The nodes' failure detection time (CALIOPEN_FAILURE_DETECTION_MS); null: their default. */
  failureDetectionMs: number | null;
}

export function liveAccountsConfig(env: NodeJS.ProcessEnv = process.env): LiveAccountsConfig {
  const quick = env.BENCH_QUICK === "1" || env.BENCH_QUICK === "true";
  const accounts = Number(env.BENCH_LIVE_ACCOUNTS ?? (quick ? 200 : 2_000));
  if (!Number.isInteger(accounts) || accounts < 10) throw new Error(`BENCH_LIVE_ACCOUNTS must be an integer of at least 10, not ${env.BENCH_LIVE_ACCOUNTS}`);
  return {
    accounts,
    pollingAccounts: Math.max(5, Math.round(accounts / 10)),
    pollMinutes: 1,
    appendsPerSecond: 10,
    // At least one tick of every polled account falls within it.
    steadySeconds: quick ? 75 : 90,
    rampPerSecond: Number(env.BENCH_LIVE_RAMP_PER_SECOND ?? 20),
    failureDetectionMs: env.BENCH_LIVE_FAILURE_DETECTION_MS === undefined ? null : Number(env.BENCH_LIVE_FAILURE_DETECTION_MS),
  };
}

export interface LiveAccountsTask extends LiveAccountsConfig {
  endpoint: NatsEndpoint;
  /** The nats-server's process, for its CPU and memory. */
  serverPid: number;
}

/** A distribution of samples, in milliseconds. */
export interface Latency {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

/** One node process at one moment. */
export interface NodeFootprint {
  node: string;
  /** Imap workers (accounts) it runs. */
  accounts: number;
  /** Of those, the ones whose new-mail watch runs (push `watching`). */
  watching: number;
  /** Its connections to the Dovecot (ss, by process). */
  imapConnections: number;
  openFds: number;
  /** After a forced full GC. */
  heapUsed: number;
  rss: number;
  /** The event loop's delays since the previous footprint (or the node's start). */
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** Dovecot's side: processes and logins. */
export interface DovecotFigures {
  /** Its imap processes (one per logged-in connection) and their memory (PSS, shared pages split). */
  imapProcesses: number;
  pssBytes: number;
  /** The most logins it logged in one second from the nodes, and in all, within a window. */
  peakLoginsPerSecond: number;
  logins: number;
  cpuMs: number;
}

/** Where the ramp stood, second by second. */
export interface RampSample {
  atMs: number;
  running: number;
  watching: number;
  /** Accounts Dovecot has shown IDLEing so far. */
  idle: number;
}

export interface RampFigures {
  /** Every account was seen IDLEing within the ramp's time limit. */
  completed: boolean;
  timeline: RampSample[];
  /** From the add_identity orders until every account's worker runs somewhere. */
  allRunningMs: number;
  /** Until every account's worker says it watches (its push region is `watching`). */
  allWatchingMs: number;
  /** Until Dovecot has shown a connection of every account in IDLE. */
  allIdleMs: number;
  dovecot: DovecotFigures;
}

export interface FailoverFigures {
  victim: string;
  /** Accounts whose worker ran on the killed node. */
  victimAccounts: number;
  /** From kill -9 until each of those runs on a survivor. */
  runningMs: number;
  /** Until Dovecot shows each of those accounts IDLEing on a new connection: IDLE is back. */
  idleBackMs: number;
  /** Until a mail dropped into each of those mailboxes right after the kill is stored. */
  probesStoredMs: number;
  /** Of those accounts, how many were seen IDLEing again, and how many probes stored, when the wait ended. */
  accountsBack: number;
  probesStored: number;
  /** Logins Dovecot took from the nodes from the kill until IDLE was back, + 5 s: the reconnect storm. */
  dovecot: DovecotFigures;
}

export interface JoinFigures {
  node: string;
  /** From its start (a new process) until it said it was ready (joined the cluster). */
  startMs: number;
  /** Accounts whose worker moved to another node. */
  movedAccounts: number;
  /** From its start until the placement stopped changing. */
  rebalanceMs: number;
  /** From its start until Dovecot shows each moved account IDLEing on a new connection. */
  idleBackMs: number;
  /** The placement settled and every moved account IDLEd within the wait; how many moved accounts did. */
  settled: boolean;
  movedIdle: number;
  /** Accounts per node once settled. */
  accountsPerNode: Record<string, number>;
  peakLoginsPerSecond: number;
}

export interface DeliveryTally {
  /** Mails put into the mailboxes (APPENDs and the failover's probes). */
  sent: number;
  stored: number;
  /** Sent and never stored, within the wait at the end. */
  missed: number;
  /** Those by the phase they were sent in (steady, failover, join, probe). */
  missedByPhase: Record<string, number>;
  /** Message-IDs stored as more than one message document, or listed as conflicting copies. */
  storedTwice: number;
  /** Mails whose bytes were fetched into more than one raw (a second fetch, deduplicated at the import). */
  fetchedTwice: number;
}

export interface LiveAccountsResult {
  config: LiveAccountsConfig;
  nodes: number;
  /** The Dovecot settings the scenario needed (scripts/local-servers/dovecot.ts `manyConnections`). */
  dovecotSettings: string;
  /** `ulimit -n` of the processes (soft). */
  fdLimit: number;
  /** Preparing the mailboxes, users and identities (not timed against any aim). */
  setupMs: number;
  /** Each node before any account (the baseline), and at the end of the ramp (every account watching). */
  idleNodes: NodeFootprint[];
  loadedNodes: NodeFootprint[];
  ramp: RampFigures;
  /** The steady stream, the kill and the join: null when the ramp did not complete. */
  faults: FaultFigures | null;
  natsServer: { cpuMs: number; rss: number };
  /** What the nodes logged as warnings, by phase (setup, ramp, steady, failover, join, drain), by message. */
  warnings: Record<string, Record<string, number>>;
  /** A KV put's time, by phase, as a client of the nats-server sees it (scripts/bench/live-kv-probe.ts). */
  kvPut: Record<string, Latency>;
  /** APPENDs that failed, by reason. */
  appendFailures: Record<string, number>;
}

export interface FaultFigures {
  /** APPEND (sent) → its message document stored, during the steady stream. */
  newMail: Latency;
  /** The same, for APPENDs sent from the kill until the join began, and during the join. */
  newMailDuringFailover: Latency;
  newMailDuringJoin: Latency;
  /** How late each poll tick was (its `last_poll` after the `next_poll` it was due at), before the kill. */
  tickLateness: Latency;
  /** The ticks due from the kill on (pollers moved to a survivor). */
  tickLatenessDuringFaults: Latency;
  failover: FailoverFigures;
  /** The survivors holding everything. */
  survivorNodes: NodeFootprint[];
  /** Null when the new node did not start: `joinError` says why. */
  join: JoinFigures | null;
  joinError: string | null;
  delivery: DeliveryTally;
}
