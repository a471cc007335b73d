// The tasks the orchestrator hands to bench processes and the figures they hand back (JSON both ways).

import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import type { BenchConfig } from "./bench-config.ts";
import type { IoCounters } from "./io-meter.ts";
import type { MemorySample, MemoryTrace } from "./memory-sampler.ts";

export type OrdersVariant = "raw" | "raw-durable" | "entry" | "actor-none" | "actor-snapshot";

export interface OrdersTask {
  endpoint: NatsEndpoint;
  /** The nats-server's pid, to account its CPU time. */
  serverPid: number;
  variant: OrdersVariant;
  /** Orders per timed round. */
  count: number;
  /** Paced rounds: at most this many orders published and not yet processed. */
  window: number;
  keys: number;
  rounds: number;
  warmup: number;
  flushEvery: number;
  /** Node variants: have another process watch the node's heartbeats meanwhile (the orders section's actor rows). */
  observeLiveness?: boolean;
}

/** One timed pass of `count` orders. */
export interface OrdersRound {
  /** From the first order available to the last one processed by the consumer. */
  elapsedMs: number;
  perSecond: number;
  /** Actor variants: until every keyed order was acknowledged, i.e. applied and its state saved. */
  settledMs: number | null;
  /** Snapshot variant: KV writes made for this round (coalesced per actor by its write loop). */
  kvWrites: number | null;
  /** Snapshot variant: orders published in the round minus those reflected in KV once settled (negative: applied twice). */
  lostUpdates: number | null;
  /** CPU time of the consumer process and of the nats-server during `elapsedMs`. */
  consumerCpuMs: number;
  serverCpuMs: number;
  /** The publisher process's CPU time while it published the round (before the clock, for backlog rounds). */
  publisherCpuMs: number;
  /** I/O of the consumer process (its NATS sockets) during `elapsedMs`. */
  consumerIo: IoCounters;
}

export interface OrdersResult {
  variant: OrdersVariant;
  count: number;
  keys: number;
  /** The consumer drains a backlog: its capacity, independent of the publisher's speed. */
  backlog: OrdersRound[];
  /** Closed loop: the publisher keeps at most `window` orders unprocessed (a sustainable rate). */
  paced: OrdersRound[];
  /** What the runtime logged at warn/error level during the scenario, by message. */
  warnings: Record<string, number>;
  /** The node's liveness as another process saw it, when the task asked for it. */
  liveness: OrdersLiveness | null;
}

/** The parts of an orders scenario whose liveness is watched: the untimed warm-up, then the timed rounds. */
export type OrdersPhase = "warm-up" | "backlog" | "paced";

export interface HeartbeatObserverTask {
  endpoint: NatsEndpoint;
  /** The node whose heartbeats are watched. */
  node: string;
  /** Its failure-detection window (CALIOPEN_FAILURE_DETECTION_MS). */
  failureDetectionMs: number;
  /** Where the observer says it watches, and where it is told each phase's start and when to stop. */
  readySubject: string;
  controlSubject: string;
}

/** The measured node's heartbeats as the observer saw them during one phase (its local monotonic time). */
export interface HeartbeatsSeen {
  phase: OrdersPhase;
  /** The phase's length, from its start to the next one's (or the stop). */
  ms: number;
  heartbeats: number;
  /** Longest time between two heartbeats ending in this phase, or since the last one at the stop. */
  longestGapMs: number;
  /** Gaps that reached the window: each time, another node would have declared the node dead. */
  declaredDead: number;
}

export interface HeartbeatObservation {
  /** The failure-detection window the gaps were held to (runtime/cluster/membership.ts's rule). */
  windowMs: number;
  phases: HeartbeatsSeen[];
  /** The observer's own event loop's worst delay: a late observer would see longer gaps than a node would. */
  observerLoopMaxMs: number;
}

/** Per phase, what the observer saw, with what the node itself went through meanwhile. */
export interface LivenessPhase extends HeartbeatsSeen {
  /** Times the node fenced itself off ("fencing this node off", from its log). */
  fenced: number;
  /** The node process's event loop's worst delay (perf_hooks monitorEventLoopDelay). */
  nodeLoopMaxMs: number;
}

export interface OrdersLiveness {
  windowMs: number;
  observerLoopMaxMs: number;
  phases: LivenessPhase[];
}

/** `moleculer`: the same-stack peer, a Moleculer broker's action called by a Moleculer broker (section 2 only). */
export type RequestsVariant = "raw" | "entry" | "actor" | "moleculer";

/** The request scenario's sizes, as configured for the run. */
type RequestSizes = BenchConfig["requests"];

export interface RequestsTask extends RequestSizes {
  endpoint: NatsEndpoint;
  serverPid: number;
  variant: RequestsVariant;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface ConcurrentRound {
  count: number;
  inFlight: number;
  elapsedMs: number;
  perSecond: number;
  latency: LatencySummary;
  /** The client process's own CPU time per request: if it is near elapsed/request, the client is the bottleneck. */
  clientCpuMicrosPerRequest: number;
}

export interface RequestsResult {
  variant: RequestsVariant;
  sequential: LatencySummary;
  concurrent: ConcurrentRound[];
  /** Replies that were errors or not JSON: must be 0 for the figures to mean anything. */
  badReplies: number;
  /** Responder-process and nats-server CPU time per request, over the whole run (all phases). */
  responderCpuMicrosPerRequest: number;
  serverCpuMicrosPerRequest: number;
  /** The responder's I/O (its NATS sockets) per request, over the same span. */
  responderIoPerRequest: IoCounters;
  warnings: Record<string, number>;
}

/** What the load generator measures; the responder adds its own CPU figures. */
export type RequestLoadResult = Omit<
  RequestsResult,
  "variant" | "responderCpuMicrosPerRequest" | "serverCpuMicrosPerRequest" | "responderIoPerRequest" | "warnings"
> & { requests: number };

export interface DispatchTask {
  endpoint: NatsEndpoint;
  keys: number;
  events: number;
  warmup: number;
}

/** CPU cost per order of one layer of the actor path, measured in-process. */
export interface DispatchStep {
  step: string;
  /** This process's CPU per order (for in-process layers, also the wall time). */
  microsPerEvent: number;
  /** Layers that wait on the nats-server: wall time per order with their concurrency. */
  wallMicrosPerEvent: number | null;
}

export interface DispatchResult {
  steps: DispatchStep[];
}

export type ActivationMode = "actors" | "passivated" | "subscriptions" | "machines" | "snapshots";

export interface ActivationTask {
  /** null for modes that need no NATS. */
  endpoint: NatsEndpoint | null;
  mode: ActivationMode;
  persistence: "none" | "snapshot";
  count: number;
  /** How many activations run concurrently. */
  window: number;
}

export interface ActivationResult {
  mode: ActivationMode;
  persistence: "none" | "snapshot";
  count: number;
  /** Until every actor runs and the server has its subscription (a flush round trip). */
  elapsedMs: number;
  perSecond: number;
  /** Snapshot actors: until every first snapshot is in KV. */
  persistedMs: number | null;
  before: MemorySample;
  after: MemorySample;
  heapPerItem: number;
  externalPerItem: number;
  rssPerItem: number;
}

export interface PublishTask {
  kind: "publish";
  endpoint: NatsEndpoint;
  count: number;
  keys: number;
  flushEvery: number;
  /** Closed loop: wait for the consumer's progress (published on `progressSubject`) to stay within `window`. */
  pacing?: { window: number; progressSubject: string };
}

export interface PublishResult {
  count: number;
  startedAt: number;
  finishedAt: number;
  /** This process's CPU time from startedAt to finishedAt. */
  cpuMs: number;
}

export interface RequestLoadTask extends RequestSizes {
  kind: "request";
  endpoint: NatsEndpoint;
  timeoutMs: number;
}

export type LoadTask = PublishTask | RequestLoadTask;

// ---------------------------------------------------------------------------------------------------
// Mail scenarios (5–7): each against real servers, with its baseline measured in the same process run.

type MailSizes = BenchConfig["mail"];

export interface ImapTask {
  endpoint: NatsEndpoint;
  serverPid: number;
  messages: MailSizes["imapMessages"];
  appendSample: MailSizes["appendSample"];
}

/** One side's time over the whole mailbox and the CPU it cost. */
export interface ImapRun {
  ms: number;
  perSecond: number;
  /** CPU of the syncing program itself (mbsync, or the node process). */
  cpuMs: number;
  /** CPU of Dovecot (master and every process it ran) meanwhile. */
  dovecotCpuMs: number;
}

export interface ImapResult {
  messages: number;
  bytes: number;
  kinds: Record<"plain" | "alternative" | "mixed", number>;
  fill: { method: "maildir"; writeMs: number; indexMs: number; append: { count: number; ms: number; perSecond: number } };
  /** One imapflow connection reading every message once (UID FLAGS BODY.PEEK[]), also warming Dovecot's caches. */
  rawFetch: ImapRun;
  /** `mbsync --version`. */
  mbsyncVersion: string;
  /** `mbsync` with its defaults (FSync on), and again with `FSync no`, each into a fresh local Maildir. */
  mbsync: ImapRun & { files: number };
  mbsyncNoFsync: (ImapRun & { files: number }) | null;
  /** The node: `add_worker`, then `fullfetch` timed until the worker's history shows the run finished. */
  node: ImapRun & {
    /** From `fullfetch` to the worker's connected state (login, EXAMINE). */
    connectedMs: number | null;
    done: number;
    total: number;
    failed: number;
    /** Messages in the store for the user once done (keys of the messages bucket). */
    stored: number;
    natsCpuMs: number;
    /** done/elapsed at each progress sample (every second). */
    rateSamples: number[];
    /** NATS messages the node's connection sent and received per imported mail (requests, replies, JetStream acks). */
    natsMessagesPerMail: number;
    /** The node process's memory every 100 ms during the fullfetch, against the idle node's just before. */
    memory: MemoryTrace;
    /**
     * The node process's memory once the import is over, settled by full GCs as the idle figure is: what
     * it kept of the import (absent from runs before it was measured).
     */
    retained?: MemorySample;
  };
  /** Two mailboxes of `messages` each imported at once, by one node process then by two, in alternated rounds. */
  pair: { ok: true; oneNode: ImapPairRun[]; twoNodes: ImapPairRun[] } | { ok: false; error: string };
  warnings: Record<string, number>;
}

/** Several mailboxes imported at once by `nodes` node processes. */
export interface ImapPairRun {
  nodes: number;
  mailboxes: number;
  /** Over all mailboxes. */
  messages: number;
  /** From the fullfetches sent until the last mailbox's run finished. */
  ms: number;
  perSecond: number;
  /** Each mailbox's own time. */
  mailboxMs: number[];
  /** CPU of each node process, of the nats-server and of Dovecot over `ms`. */
  nodeCpuMs: number[];
  natsCpuMs: number;
  dovecotCpuMs: number;
  /** Read and write system calls of each node process (its NATS and IMAP sockets) and of the nats-server over `ms`: fewer per message, more messages per call. */
  nodeSyscalls: number[];
  natsSyscalls: number;
  /** Per mailbox: the node meant to run it, and where its imap worker and its user's inbound actor ran (caliopen.debug.actors). */
  placement: { node: string; worker: string; inbound: string }[];
  warnings: Record<string, number>;
}

export interface SmtpTask {
  endpoint: NatsEndpoint;
  serverPid: number;
  messages: MailSizes["smtpMessages"];
  sessions: MailSizes["smtpSessions"];
  size: MailSizes["smtpSize"];
}

export interface SmtpRun {
  messages: number;
  ms: number;
  perSecond: number;
  /** CPU of the receiving process (the bare server, or the node) and of the nats-server. */
  cpuMs: number;
  natsCpuMs: number;
  /** Messages the receiver ended up with (read by the sink; stored as messages by the node). */
  received: number;
  /** CPU of smtp-source itself. */
  loadCpuMs: number;
}

export interface SmtpResult {
  sessions: number;
  size: number;
  warmup: number;
  baseline: SmtpRun;
  node: SmtpRun;
  warnings: Record<string, number>;
}

export interface PushTask {
  endpoint: NatsEndpoint;
  serverPid: number;
  appends: MailSizes["pushAppends"];
  spacingMs: MailSizes["pushSpacingMs"];
}

/** From just before each APPEND is sent. */
export interface PushLatency {
  samples: number[];
  median: number;
  p90: number;
  max: number;
  /** APPENDs never seen within the wait. */
  missed: number;
}

export interface PushResult {
  appends: number;
  spacingMs: number;
  /** The APPEND command itself, until Dovecot's OK. */
  append: PushLatency;
  /** A plain imapflow client IDLEing on the mailbox in a process of its own: until its EXISTS. */
  idle: PushLatency;
  /** The node: until the message's document appears in the messages bucket (a KV watch). */
  node: PushLatency;
  /** Per APPEND, the node's time minus the IDLE client's: what the node adds to raw IDLE. */
  overhead: PushLatency;
  warnings: Record<string, number>;
}
