// Turns one bench run into BENCHMARKS.md (also printed to stdout): machine, one table per scenario with
// the raw baseline, the actor figure and their ratio, the targets and whether they are met.

import type { BenchConfig } from "./bench-config.ts";
import { BENCH_SECURITIES, type BenchSecurity } from "./bench-security.ts";
import type { FailoverResult } from "./failover-scenario.ts";
import { fastestRun, keyFigures, type OrdersFigures, type RequestFigures } from "./figures.ts";
import type { IoCounters } from "./io-meter.ts";
import type { MachineInfo } from "./machine-info.ts";
import type {
  ActivationResult,
  DispatchResult,
  ImapPairRun,
  ImapResult,
  ImapRun,
  OrdersResult,
  OrdersRound,
  PushLatency,
  PushResult,
  RequestsResult,
  SmtpResult,
  SmtpRun,
} from "./results.ts";
import { formatBytes, formatCount, formatMicros, formatMs, formatPercent, formatRatio, median } from "./stats.ts";

/** One scenario process's result, with the load other processes put on the machine meanwhile (cores). */
export type Outcome<T> = ({ label: string; ok: true; value: T } | { label: string; ok: false; error: string }) & { backgroundCores: number };

/** A scenario of section 8: the request or orders scenario against a server secured as `security` says. */
export type SecuredOutcome =
  | { security: BenchSecurity; kind: "requests"; outcome: Outcome<RequestsResult> }
  | { security: BenchSecurity; kind: "orders"; outcome: Outcome<OrdersResult> };

export interface BenchRun {
  machine: MachineInfo;
  config: BenchConfig;
  durationMs: number;
  /** Cores kept busy by processes that are not this bench, on average over the run. */
  backgroundCores: number;
  orders: Outcome<OrdersResult>[];
  dispatch: Outcome<DispatchResult> | null;
  requests: Outcome<RequestsResult>[];
  activation: Outcome<ActivationResult>[];
  failover: Outcome<FailoverResult> | null;
  imap: Outcome<ImapResult> | null;
  smtp: Outcome<SmtpResult> | null;
  push: Outcome<PushResult> | null;
  tls: SecuredOutcome[];
}

export const TARGETS = {
  ordersRatio: 0.5,
  requestP50Ratio: 1.5,
  bytesPerActor: 6 * 1024,
  /** The issue's aim for a first IMAP import: at most this many times mbsync's time for the same mailbox. */
  imapRatio: 1.5,
  /** The issue's aim for two nodes importing two mailboxes at once: at most this share of one node's time for both. */
  imapTwoNodesRatio: 0.6,
  /** heapUsed + external of the importing node at its peak, over the idle node's (the parts: IMPORT_HEAP_BOUND). */
  importHeapMiB: 0,
  /** What the node still holds once the import is over (settled by full GCs) over the idle node's: what growing with the mailbox would show. */
  importGrowthMiB: 16,
};

const MiB = 1024 * 1024;

/**
 * What the design lets a node hold during a fullfetch, whatever the mailbox's size, each part in MiB:
 * the worker's messages in flight (two import batches) at up to 1 MiB each; the inbound actor's parsers
 * (actors/inbound/inbound-processor.ts BATCH_PARSERS: 16 raws of a batch at a time), each raw read back and
 * parsed (decoded parts and strings, about twice the raw); V8's young generation, where the garbage of
 * all this waits for a scavenge (3 × a 16 MiB semi-space on 64 bits); the node's bounded caches and slack.
 */
export const IMPORT_HEAP_BOUND = { inFlightRaws: 64 * 1, parsers: 16 * 1 * 2, youngGeneration: 3 * 16, cachesAndSlack: 16 };
TARGETS.importHeapMiB = Object.values(IMPORT_HEAP_BOUND).reduce((sum, part) => sum + part, 0);

interface Verdict {
  target: string;
  measured: string;
  met: boolean | null;
}

const found = <T>(outcomes: Outcome<T>[], pick: (value: T) => boolean): T | undefined => {
  for (const outcome of outcomes) if (outcome.ok && pick(outcome.value)) return outcome.value;
  return undefined;
};

/** Background load per scenario process, flagged when it could have moved the figures. */
function backgroundLine(outcomes: Outcome<unknown>[]): string[] {
  if (outcomes.length === 0) return [];
  const parts = outcomes.map((outcome) => `${outcome.label} ${outcome.backgroundCores.toFixed(2)}`);
  const worst = Math.max(...outcomes.map((outcome) => outcome.backgroundCores));
  return [
    "",
    `Cores kept busy by other processes during each run: ${parts.join(", ")}${worst > 0.2 ? " — **figures of the runs above 0.2 were disturbed**" : ""}.`,
  ];
}

const failures = (outcomes: Outcome<unknown>[]): string[] =>
  outcomes.flatMap((outcome) => (outcome.ok ? [] : [`- **${outcome.label} failed**: ${outcome.error.split("\n")[0] ?? ""}`]));

const mark = (met: boolean | null) => (met === null ? "not measured" : met ? "✅ met" : "❌ not met");

function spread(rounds: OrdersRound[], pick: (round: OrdersRound) => number | null): { median: number; min: number; max: number } {
  const values = rounds.map(pick).filter((value): value is number => value !== null);
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

function rateCell(rounds: OrdersRound[]): string {
  if (rounds.length === 0) return "n/a";
  const { median: mid, min, max } = spread(rounds, (round) => round.perSecond);
  return rounds.length === 1 ? formatCount(mid) : `${formatCount(mid)} (${formatCount(min)}–${formatCount(max)})`;
}

const ORDER_LABELS: Record<OrdersResult["variant"], string> = {
  raw: "raw nats.js queue subscriber (decode + count)",
  "raw-durable": "raw nats.js durable path (intake stream → consumer → sharded work queue → 64 consumers)",
  entry: "node: intake stream → entry point → counting handler (no actor)",
  "actor-none": "node: intake → entry point → keyed-order stream → actor, persistence `none`",
  "actor-snapshot": "node: the same, persistence `snapshot`",
};

/** The runtime's own warnings and errors during a scenario: a run that "worked" while the runtime struggled must say so. */
function warningLines(
  sources: { label: string; warnings: Record<string, number> }[],
  intro = "Warnings and errors the runtime logged during these runs (for the raw durable baseline: its own failed publishes):",
): string[] {
  const lines: string[] = [];
  for (const { label, warnings } of sources) {
    const entries = Object.entries(warnings).sort((a, b) => b[1] - a[1]);
    if (entries.length === 0) continue;
    lines.push(`- **${label}**: ${entries.map(([message, count]) => `"${message}" × ${formatCount(count)}`).join(", ")}`);
  }
  return lines.length === 0 ? [] : ["", intro, "", ...lines];
}

function ordersSection(run: BenchRun, verdicts: Verdict[]): string[] {
  const { count, durableCount, window, keys, rounds } = run.config.orders;
  const raw = found(run.orders, (value) => value.variant === "raw");
  const rawRate = (pick: (value: OrdersResult) => OrdersRound[]) => (raw === undefined ? Number.NaN : spread(pick(raw), (round) => round.perSecond).median);
  const rawBacklog = rawRate((value) => value.backlog);
  const rawPaced = rawRate((value) => value.paced);
  const durable = found(run.orders, (value) => value.variant === "raw-durable");
  const durableRate = (pick: (value: OrdersResult) => OrdersRound[]) =>
    durable === undefined ? Number.NaN : spread(pick(durable), (round) => round.perSecond).median;
  const durableBacklog = durableRate((value) => value.backlog);
  const durablePaced = durableRate((value) => value.paced);
  const lines = [
    "## 1. Orders/s: entry point → actor vs a raw queue subscriber",
    "",
    `Published \`IMAPfetcher\` orders (\`{"order":"sync","remote_id":"r-<0..${keys - 1}>","user_id":"u-456"}\`) over ${formatCount(keys)} keys: ${formatCount(count)} per round for the core-NATS subscriber, ${formatCount(durableCount)} per round for everything that goes through JetStream (much slower); median of ${rounds} round(s) (min–max).`,
    `The publisher is another Node process on its own connection. **Backlog**: the consumer's event loop is blocked while the publisher publishes the whole round, then the clock measures how fast the consumer drains it — its capacity under a burst, independent of the publisher's speed. **Paced**: a closed loop — the consumer reports its progress every 5 ms and the publisher keeps at most ${formatCount(window)} orders unprocessed — the rate it sustains without a queue building up.`,
    "The actor side is a real node (`startNode`, supervisors/node.ts, 64 shards) running the bench family, with IMAPfetcher `sync` bound to `routeToActor`. A published order is captured by the node's JetStream intake stream as it is sent; the entry point reads it through a durable consumer, validates it and publishes it to the keyed-order stream (awaiting the ack) before acking it; the shard runner hands it to the actor (started by its first order) and acks it once the actor's state is saved. Every key's actor is live before the timed rounds (activation is scenario 3).",
    "The **raw durable** baseline is that same path in bare nats.js with its defaults, without entry point, actors or KV: the subject captured by a work-queue stream, one durable consumer that decodes each order and publishes it (with a message id, awaited) to a second work-queue stream split in 64 shard subjects, then acks it; 64 durable consumers that decode, count and ack. It is the fair yardstick for what the runtime adds on top of its durable design; the plain raw subscriber is the one the targets name.",
    "*CPU/order*: the consumer process's CPU time during a backlog drain divided by the orders; *busy*: CPU time over wall time during the drain (100 % = one core). *Settled*: until every stored order is acknowledged (for actors: applied and saved). *Missing from KV*: orders published minus orders reflected in the stored snapshots once settled, over all rounds (negative: applied twice).",
    "",
    "| Consumer | orders / round | backlog orders/s | ÷ raw | ÷ raw durable | CPU / order | consumer busy | nats-server busy | paced orders/s | ÷ raw | ÷ raw durable | settled (backlog) | KV writes / round | missing from KV |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const outcome of run.orders) {
    if (!outcome.ok) continue;
    const value = outcome.value;
    const backlog = spread(value.backlog, (round) => round.perSecond).median;
    const paced = spread(value.paced, (round) => round.perSecond).median;
    const settled = value.variant === "raw" ? "—" : formatMs(spread(value.backlog, (round) => round.settledMs).median);
    const cpuPerOrder = spread(value.backlog, (round) => (round.consumerCpuMs * 1000) / value.count).median;
    const busy = (pick: (round: OrdersRound) => number) => formatPercent(spread(value.backlog, (round) => pick(round) / round.elapsedMs).median);
    const writes = value.variant === "actor-snapshot" ? formatCount(spread(value.backlog, (round) => round.kvWrites).median) : "—";
    const lost = [...value.backlog, ...value.paced].reduce((sum, round) => sum + (round.lostUpdates ?? 0), 0);
    lines.push(
      `| ${ORDER_LABELS[value.variant]} | ${formatCount(value.count)} | ${rateCell(value.backlog)} | ${formatRatio(backlog / rawBacklog)} | ${formatRatio(backlog / durableBacklog)} | ${formatMicros(cpuPerOrder)} | ${busy((round) => round.consumerCpuMs)} | ${busy((round) => round.serverCpuMs)} | ${rateCell(value.paced)} | ${formatRatio(paced / rawPaced)} | ${formatRatio(paced / durablePaced)} | ${settled} | ${writes} | ${value.variant === "actor-snapshot" ? formatCount(lost) : "—"} |`,
    );
  }
  lines.push(
    ...warningLines(run.orders.flatMap((outcome) => (outcome.ok ? [{ label: ORDER_LABELS[outcome.value.variant], warnings: outcome.value.warnings }] : []))),
  );
  lines.push(...failures(run.orders));
  lines.push(...backgroundLine([...run.orders, ...(run.dispatch === null ? [] : [run.dispatch])]));

  if (run.dispatch !== null) {
    const { events, keys: dispatchKeys } = run.config.dispatch;
    lines.push(
      "",
      "### Per-order cost by layer",
      "",
      `Each layer timed alone in one process, over \`sync\` orders for ${formatCount(dispatchKeys)} keys (${formatCount(events)} per pass for in-process layers, fewer for JetStream ones; median of 3 passes; scripts/bench/dispatch-scenario.ts). For the JetStream layers, *wall / order* is elapsed time over orders with 1,000 in flight, the nats-server working on the other core.`,
      "",
      "| Layer | CPU / order | wall / order |",
      "|---|---:|---:|",
    );
    if (run.dispatch.ok) {
      for (const step of run.dispatch.value.steps) {
        lines.push(
          `| ${step.step} | ${formatMicros(step.microsPerEvent)} | ${step.wallMicrosPerEvent === null ? "—" : formatMicros(step.wallMicrosPerEvent)} |`,
        );
      }
    } else lines.push(...failures([run.dispatch]));
  }

  const actor = found(run.orders, (value) => value.variant === "actor-none");
  for (const [mode, rawFigure, pick] of [
    ["paced, sustainable", rawPaced, (value: OrdersResult) => value.paced],
    ["backlog burst", rawBacklog, (value: OrdersResult) => value.backlog],
  ] as const) {
    const actorFigure = actor === undefined ? Number.NaN : spread(pick(actor), (round) => round.perSecond).median;
    const ratio = actorFigure / rawFigure;
    verdicts.push({
      target: `Orders/s through entry point → actor ≥ ${TARGETS.ordersRatio} × raw (${mode}, persistence none)`,
      measured: Number.isFinite(ratio) ? `${formatRatio(ratio)} (${formatCount(actorFigure)} vs ${formatCount(rawFigure)}/s)` : "n/a",
      met: Number.isFinite(ratio) ? ratio >= TARGETS.ordersRatio : null,
    });
  }
  return lines;
}

function requestsSection(run: BenchRun, verdicts: Verdict[]): string[] {
  const { sequential, concurrent, inFlight, rounds, keys } = run.config.requests;
  const raw = found(run.requests, (value) => value.variant === "raw");
  const actor = found(run.requests, (value) => value.variant === "actor");
  const throughput = (value: RequestsResult) => median(value.concurrent.map((round) => round.perSecond));
  const loadedP50 = (value: RequestsResult) => median(value.concurrent.map((round) => round.latency.p50));
  const loadedP99 = (value: RequestsResult) => median(value.concurrent.map((round) => round.latency.p99));
  const clientCpu = (value: RequestsResult) => median(value.concurrent.map((round) => round.clientCpuMicrosPerRequest));
  const lines = [
    "## 2. Request/reply: actor vs a raw responder",
    "",
    `\`outboundIMAP\` \`deliver\` requests (\`{"order":"deliver","message_id":…,"remote_id":"r-<0..${keys - 1}>","user_id":"u-456"}\`). The client is another Node process publishing with a reply subject into one shared inbox subscription (scripts/bench/inbox-client.ts), identical for both sides; it checks every reply is \`{"error":false,…}\`.`,
    `The raw responder decodes the JSON and replies; the actor path runs on a real node: entry point (mode \`request\`: decode, validate against the contract) → \`routeToActor\` → \`KeyedOrders.forward\` (the owning node is this one, so it hands the request to the actor in-process) → actor (persistence \`none\`, started beforehand by one \`sync\` per key) → \`ports.reply(event.replyTo, …)\`. Sequential: ${formatCount(sequential)} requests one at a time. Loaded: ${formatCount(concurrent)} requests with ${inFlight} in flight, median of ${rounds} round(s).`,
    "",
    "| Responder | seq p50 | seq p99 | loaded req/s | loaded p50 | loaded p99 | responder CPU / req | nats-server CPU / req | client CPU / req (loaded) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const value of [raw, actor]) {
    if (value === undefined) continue;
    const label = value.variant === "raw" ? "raw nats.js responder" : "entry point → actor";
    lines.push(
      `| ${label} | ${formatMs(value.sequential.p50)} | ${formatMs(value.sequential.p99)} | ${formatCount(throughput(value))} | ${formatMs(loadedP50(value))} | ${formatMs(loadedP99(value))} | ${formatMicros(value.responderCpuMicrosPerRequest)} | ${formatMicros(value.serverCpuMicrosPerRequest)} | ${formatMicros(clientCpu(value))} |`,
    );
  }
  if (raw !== undefined && actor !== undefined) {
    lines.push(
      `| **actor ÷ raw** | ${formatRatio(actor.sequential.p50 / raw.sequential.p50)} | ${formatRatio(actor.sequential.p99 / raw.sequential.p99)} | ${formatRatio(throughput(actor) / throughput(raw))} | ${formatRatio(loadedP50(actor) / loadedP50(raw))} | ${formatRatio(loadedP99(actor) / loadedP99(raw))} | ${formatRatio(actor.responderCpuMicrosPerRequest / raw.responderCpuMicrosPerRequest)} | ${formatRatio(actor.serverCpuMicrosPerRequest / raw.serverCpuMicrosPerRequest)} | ${formatRatio(clientCpu(actor) / clientCpu(raw))} |`,
    );
  }
  lines.push(...warningLines(run.requests.flatMap((outcome) => (outcome.ok ? [{ label: outcome.value.variant, warnings: outcome.value.warnings }] : []))));
  const bad = run.requests.flatMap((outcome) => (outcome.ok && outcome.value.badReplies > 0 ? [`${outcome.value.variant}: ${outcome.value.badReplies}`] : []));
  if (bad.length > 0) lines.push("", `**Error replies (figures are void):** ${bad.join("; ")}`);
  lines.push(...failures(run.requests));
  lines.push(...backgroundLine(run.requests));
  const ratio = raw !== undefined && actor !== undefined ? actor.sequential.p50 / raw.sequential.p50 : Number.NaN;
  verdicts.push({
    target: `Request p50 through an actor ≤ ${TARGETS.requestP50Ratio} × raw (sequential)`,
    measured:
      Number.isFinite(ratio) && raw !== undefined && actor !== undefined
        ? `${formatRatio(ratio)} (${formatMs(actor.sequential.p50)} vs ${formatMs(raw.sequential.p50)})`
        : "n/a",
    met: Number.isFinite(ratio) ? ratio <= TARGETS.requestP50Ratio : null,
  });
  return lines;
}

const POPULATION_LABELS: Record<ActivationResult["mode"], string> = {
  actors: "actors via ActorHost.activate",
  passivated: "the same actors once idle and passivated (ActorHost.passivateIdle: XState actor dropped, snapshot kept)",
  subscriptions: "plain nats.js subscriptions (control)",
  machines: "bare XState actors, no NATS (control)",
  snapshots: "persisted snapshots alone, XState actor stopped (control)",
};

function activationSection(run: BenchRun, verdicts: Verdict[]): string[] {
  const lines = [
    "## 3. Activation rate and memory per idle actor",
    "",
    `Each row is its own Node process (\`--expose-gc\`); memory is \`process.memoryUsage()\` after forced full GCs, before and after creating N items, divided by N. Activations run ${run.config.activation.window} at a time; the time includes a flush, so the server holds every actor's subscription. The two control rows split an actor into its parts: its mailbox (a subscription with a callback on the actor's subject) and its XState actor (same machine, started and observed like ActorCell does).`,
    "",
    "| Population | N | per second | heap / item | external / item | RSS / item | first snapshots stored |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const outcome of run.activation) {
    if (!outcome.ok) continue;
    const value = outcome.value;
    const label = value.mode === "actors" ? `${POPULATION_LABELS.actors}, persistence \`${value.persistence}\`` : POPULATION_LABELS[value.mode];
    lines.push(
      `| ${label} | ${formatCount(value.count)} | ${formatCount(value.perSecond)} | ${formatBytes(value.heapPerItem)} | ${formatBytes(value.externalPerItem)} | ${formatBytes(value.rssPerItem)} | ${value.persistedMs === null ? "—" : formatMs(value.persistedMs)} |`,
    );
  }
  lines.push(...failures(run.activation));
  lines.push(...backgroundLine(run.activation));

  const large = run.config.activation.large;
  const actors = found(run.activation, (value) => value.mode === "actors" && value.persistence === "none" && value.count === large);
  const subs = found(run.activation, (value) => value.mode === "subscriptions" && value.count === large);
  const machines = found(run.activation, (value) => value.mode === "machines" && value.count === large);
  if (actors !== undefined && subs !== undefined && machines !== undefined) {
    const rest = actors.heapPerItem - subs.heapPerItem - machines.heapPerItem;
    const share = (part: number) => `${((part / actors.heapPerItem) * 100).toFixed(0)} %`;
    lines.push(
      "",
      `Heap of one idle actor at ${formatCount(large)} actors: ${formatBytes(actors.heapPerItem)} = subscription ${formatBytes(subs.heapPerItem)} (${share(subs.heapPerItem)}) + XState actor ${formatBytes(machines.heapPerItem)} (${share(machines.heapPerItem)}) + the runtime's own cell and bookkeeping ${formatBytes(rest)} (${share(rest)}).`,
    );
  }
  // An idle actor is passivated by the node (CALIOPEN_PASSIVATE_AFTER_MS); a live one keeps its XState actor.
  const idle = found(run.activation, (value) => value.mode === "passivated" && value.count === large);
  for (const [what, figures] of [
    ["idle, passivated", idle],
    ["live, just activated", actors],
  ] as const) {
    verdicts.push({
      target: `Heap per ${what} actor ≤ ${formatBytes(TARGETS.bytesPerActor)} (${formatCount(large)} actors, persistence none)`,
      measured: figures === undefined ? "n/a" : `${formatBytes(figures.heapPerItem)} heap, ${formatBytes(figures.rssPerItem)} RSS`,
      met: figures === undefined ? null : figures.heapPerItem <= TARGETS.bytesPerActor,
    });
  }
  return lines;
}

/** The scenario groups the report is made of, in the order they appear; BENCH_ONLY names them. */
export const PART_NAMES = ["orders", "requests", "activation", "failover", "imap", "smtp", "push", "tls"] as const;
export type PartName = (typeof PART_NAMES)[number];

/**
 * One scenario group's share of the report: its rows of the targets table, its section and its reading.
 * Kept in BENCHMARKS.json, so that a run of some groups (BENCH_ONLY) keeps the others as they were.
 */
export interface ReportPart {
  name: PartName;
  /** The run that measured it. */
  measured: { date: string; commit: string; quick: boolean };
  targets: string[];
  section: string[];
  reading: string[];
}

/** The parts of the groups that ran; `readings` gives each group's reading of the figures, in words. */
export function renderParts(run: BenchRun, ran: ReadonlySet<PartName>, readings: (run: BenchRun) => Partial<Record<PartName, string[]>>): ReportPart[] {
  const measured = { date: run.machine.date, commit: run.machine.commit, quick: run.config.quick };
  const reading = readings(run);
  const builders: Record<PartName, (verdicts: Verdict[]) => string[]> = {
    orders: (verdicts) => ordersSection(run, verdicts),
    requests: (verdicts) => requestsSection(run, verdicts),
    activation: (verdicts) => activationSection(run, verdicts),
    failover: (verdicts) => failoverSection(run.failover, verdicts),
    imap: (verdicts) => imapSection(run, verdicts),
    smtp: () => smtpSection(run),
    push: () => pushSection(run),
    tls: () => tlsSection(run),
  };
  return PART_NAMES.filter((name) => ran.has(name)).map((name) => {
    const verdicts: Verdict[] = [];
    const section = builders[name](verdicts);
    return {
      name,
      measured,
      targets: verdicts.map((verdict) => `| ${verdict.target} | ${verdict.measured} | ${mark(verdict.met)} |`),
      section,
      reading: reading[name] ?? [],
    };
  });
}

/** The whole report: this run's header, then every part (this run's, and earlier runs' for the groups it skipped). */
export function composeReport(run: BenchRun, parts: ReportPart[], general: string[], command: string): string {
  const { machine } = run;
  const ordered = PART_NAMES.flatMap((name) => parts.filter((part) => part.name === name));
  const kept = ordered.filter((part) => part.measured.date !== machine.date);
  const provenance = (part: ReportPart) =>
    part.measured.date === machine.date
      ? []
      : [
          `*Kept from the run of ${part.measured.date} (commit ${part.measured.commit}${part.measured.quick ? ", quick run" : ""}): not re-run by the last one.*`,
          "",
        ];
  const section = (part: ReportPart) => {
    const [heading, ...rest] = part.section;
    return [heading ?? "", ...(rest[0] === "" ? [""] : []), ...provenance(part), ...(rest[0] === "" ? rest.slice(1) : rest)];
  };
  return [
    "# Benchmarks",
    "",
    `Last run: \`${command}\` (scripts/bench/run-benchmarks.ts) on ${machine.date}, ${(run.durationMs / 1000).toFixed(0)} s${run.config.quick ? " — **quick run: small sizes, figures are indicative only**" : ""}; it measured ${
      ordered
        .filter((part) => !kept.includes(part))
        .map((part) => part.name)
        .join(", ") || "nothing"
    }.${kept.length > 0 ? ` The other sections (${kept.map((part) => part.name).join(", ")}) are kept from earlier runs, as BENCHMARKS.json holds them; each says when it was measured.` : ""}`,
    "",
    `Code measured: commit ${machine.commit}${machine.uncommittedRuntimeFiles > 0 ? ` plus uncommitted changes to ${machine.uncommittedRuntimeFiles} file(s) under runtime/, supervisors/ or actors/ (work in progress at the time of the run)` : ""}.`,
    "",
    `Machine: ${machine.cpuCount} × ${machine.cpuModel}, ${formatBytes(machine.memoryBytes)} RAM, ${machine.kernel}; Node ${machine.node}; nats-server ${machine.natsServer}; nats.js (@nats-io/nats-core) ${machine.natsJs}; XState ${machine.xstate}.`,
    `Other processes on the machine kept ${run.backgroundCores.toFixed(2)} of its ${machine.cpuCount} cores busy on average during the run (1-minute load average ${machine.loadAtStart.toFixed(2)} at the start)${run.backgroundCores > 0.2 ? ": **the machine was shared, so figures are noisier and lower than on an idle machine**" : ""}.`,
    "Every scenario process gets a fresh nats-server (JetStream on, loopback) started with runtime/embedded-nats-server.ts, which admits only the nkey it makes, as a node's embedded server does (section 8 also runs servers with mutual TLS, with and without the node role's permissions); raw baseline and actor runtime face the same server binary, the same payload bytes and the same load generator.",
    "",
    "## Targets",
    "",
    "| Target | Measured | Verdict |",
    "|---|---|---|",
    ...ordered.flatMap((part) => part.targets),
    "",
    ...ordered.flatMap((part) => [...section(part), ""]),
    "## Interpretation",
    "",
    ...ordered.flatMap((part) => part.reading),
    ...general,
    "",
  ].join("\n");
}

/** Scale-out: failover after kill -9, rebalance when a node joins, orders lost or applied twice. */
function failoverSection(outcome: Outcome<FailoverResult> | null, verdicts: Verdict[]): string[] {
  if (outcome === null) return [];
  const lines = ["## 4. Failover and rebalance across node processes", ""];
  if (!outcome.ok) return [...lines, `Failed: ${outcome.error}`];
  const { runs, actors, nodes } = outcome.value;
  const ms = (values: number[]) => values.map((v) => `${(v / 1000).toFixed(2)} s`);
  const middle = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
  const failover = runs.map((r) => r.failoverMs);
  const rebalance = runs.map((r) => r.rebalanceMs);
  const lost = runs.reduce((sum, r) => sum + r.lost, 0);
  const duplicated = runs.reduce((sum, r) => sum + r.duplicated, 0);
  verdicts.push({
    target: `Failover after kill -9 ≤ 5 s (aim ≤ 2 s), ${actors} actors`,
    measured: `median ${(middle(failover) / 1000).toFixed(2)} s, max ${(Math.max(...failover) / 1000).toFixed(2)} s`,
    met: Math.max(...failover) <= 5_000,
  });
  verdicts.push({
    target: "Orders lost during failover and rebalance = 0",
    measured: `${lost} lost, ${duplicated} applied twice`,
    met: lost === 0 && duplicated === 0,
  });
  return [
    ...lines,
    `${actors} actors (persistence \`snapshot\`) over ${nodes} node processes (scripts/bench/cluster-bench-node.ts, default failure detection) on one nats-server. Each run: kill -9 the node running the most actors and send one \`sync\` per actor at once; **failover** is the time from the kill until the debug subject shows every actor running on a survivor. Then start a new node and send one \`sync\` per actor; **rebalance** is the time from its \`ready\` until placement stops changing (last change, with the new node holding a share). After each run both streams drain and every actor's saved \`syncs\` is compared with the orders sent.`,
    "",
    "| run | failover | rebalance | orders lost | applied twice |",
    "|---:|---:|---:|---:|---:|",
    ...runs.map((r, i) => `| ${i + 1} | ${ms([r.failoverMs])[0]} | ${ms([r.rebalanceMs])[0]} | ${r.lost} | ${r.duplicated} |`),
    `| median | ${(middle(failover) / 1000).toFixed(2)} s | ${(middle(rebalance) / 1000).toFixed(2)} s | | |`,
    `| max | ${(Math.max(...failover) / 1000).toFixed(2)} s | ${(Math.max(...rebalance) / 1000).toFixed(2)} s | ${lost} (total) | ${duplicated} (total) |`,
    "",
    "The failover budget: the failure-detection window (2 s: survivors take a node for dead after 2 s without seeing its heartbeat) plus the takeover (claim the shards by compare-and-swap, rewrite and restore each actor's snapshot, start the shard consumers: a few hundred ms for 1,000 actors). Orders the dead node had taken come back after the streams' ack wait (5–10 s), which the drain above includes.",
  ];
}

const NODE_WARNINGS = "Warnings and errors the node logged during the run:";

/** A failed scenario in one line: how the process ended, and the error it printed. */
function failureText(error: string): string {
  const [first, ...rest] = error.split("\n");
  const cause = rest.find((line) => /^\s*(\w*Error|error)\b.*:/.test(line) || /^Error/.test(line.trim()));
  return `**Failed**: ${first ?? ""}${cause === undefined ? "" : ` — ${cause.trim()}`}`;
}
const seconds = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(ms >= 10_000 ? 1 : 2)} s` : "n/a");
const perMessage = (ms: number, messages: number) => formatMs(ms / messages);

/** Scenario 5: a whole mailbox imported by the node, against mbsync and a bare imapflow FETCH. */
function imapSection(run: BenchRun, verdicts: Verdict[]): string[] {
  const lines = ["## 5. IMAP: a first import of a whole mailbox (fullfetch) vs mbsync", ""];
  const outcome = run.imap;
  if (outcome === null) return [];
  if (!outcome.ok) {
    verdicts.push({ target: `IMAP fullfetch ≤ ${TARGETS.imapRatio} × mbsync's time (aim of the issue)`, measured: "the scenario failed", met: null });
    return [...lines, failureText(outcome.error), ...backgroundLine([outcome])];
  }
  const r = outcome.value;
  const ratio = r.node.ms / r.mbsync.ms;
  verdicts.push({
    target: `IMAP fullfetch of ${formatCount(r.messages)} messages ≤ ${TARGETS.imapRatio} × mbsync's time (aim of the issue)`,
    measured: `${formatRatio(ratio)} (${seconds(r.node.ms)} vs ${seconds(r.mbsync.ms)})`,
    met: ratio <= TARGETS.imapRatio,
  });
  const row = (label: string, value: ImapRun, cpuLabel: string) =>
    `| ${label} | ${seconds(value.ms)} | ${formatCount(value.perSecond)} | ${formatRatio(value.ms / r.mbsync.ms)} | ${formatMs(value.cpuMs / r.messages)} ${cpuLabel} | ${formatMs(value.dovecotCpuMs / r.messages)} |`;
  const kinds = `${formatCount(r.kinds.plain)} text/plain, ${formatCount(r.kinds.alternative)} multipart/alternative (text + HTML), ${formatCount(r.kinds.mixed)} multipart/mixed with a base64 attachment`;
  const steady = r.node.rateSamples.length > 2 ? r.node.rateSamples[r.node.rateSamples.length - 1] : Number.NaN;
  lines.push(
    `A private Dovecot (scripts/local-servers/dovecot.ts) holds ${formatCount(r.messages)} messages in one INBOX, ${formatBytes(r.bytes)} in all (${formatBytes(r.bytes / r.messages)} on average, 2–20 KiB each; ${kinds}; scripts/bench/mail-corpus.ts, the same bytes every run). **Filling**: the Maildir files are written straight into \`<dovecot dir>/mail/<user>/Maildir/new/\` as the \`mail\` user (${seconds(r.fill.writeMs)}), then one STATUS and SELECT let Dovecot index them (${seconds(r.fill.indexMs)}); APPEND over one imapflow connection, timed on ${formatCount(r.fill.append.count)} of the same messages, runs at ${formatCount(r.fill.append.perSecond)}/s, so it would have taken ${seconds((r.messages * 1000) / r.fill.append.perSecond)}.`,
    `Every reader below reads the same mailbox, after one plain imapflow FETCH of everything warmed Dovecot's index and cache and the page cache. **mbsync** (${r.mbsyncVersion}, /usr/bin/mbsync): an \`.mbsyncrc\` with an IMAPAccount on 127.0.0.1 (\`SSLType None\`, \`AuthMechs LOGIN\`), a MaildirStore, a Channel \`Far :far:INBOX\` / \`Near :near:INBOX\` with \`Sync Pull\`, \`Create Near\`, \`SyncState *\`, into a fresh local Maildir; its exit code must be 0 and ${formatCount(r.messages)} files must be there. It runs with its default \`FSync yes\` (the baseline) and again with \`FSync no\`.`,
    `**The node**: a real node (supervisors/caliopen-services.ts on the scenario's nats-server, push off) with a remote IMAP identity pointing at that mailbox; \`add_worker\` on \`imap_worker\`, then, once the worker runs, \`fullfetch\` on \`IMAPfetcher\`. **Completion signal**: the worker's context lists the fullfetch in its \`history\` — \`syncMailbox\` has returned, so every message was fetched, stored as a raw and its import batch (\`import_batch\` to the user's inbound actor) was answered — with \`done = total = ${formatCount(r.messages)}\` and \`failed = 0\`; then the user's keys in the messages bucket are counted (${formatCount(r.node.stored)}). Polled every 20 ms.`,
    "",
    "| Reader | time | messages/s | ÷ mbsync time | CPU / message (reader) | Dovecot CPU / message |",
    "|---|---:|---:|---:|---:|---:|",
    row("imapflow, one UID FETCH (FLAGS BODY.PEEK[]) of everything, dropped (the transport's floor)", r.rawFetch, "(imapflow)"),
    row("**mbsync** (defaults: FSync yes) — baseline", r.mbsync, "(mbsync)"),
    ...(r.mbsyncNoFsync === null ? [] : [row("mbsync, FSync no", r.mbsyncNoFsync, "(mbsync)")]),
    row("**node**: `add_worker` + `fullfetch` → stored messages", r.node, "(node process)"),
    "",
    `The node: connected and fetching ${r.node.connectedMs === null ? "(not seen)" : `${formatMs(r.node.connectedMs)}`} after \`fullfetch\`; ${formatCount(r.node.perSecond)} messages/s over the whole run${Number.isFinite(steady) ? ` (cumulative rate at the last one-second sample: ${formatCount(steady as number)}/s)` : ""}; its process used ${seconds(r.node.cpuMs)} of CPU (${formatPercent(r.node.cpuMs / r.node.ms)} of one core) and the nats-server ${seconds(r.node.natsCpuMs)} (${perMessage(r.node.natsCpuMs, r.messages)} per message); the node's NATS connection carried ${r.node.natsMessagesPerMail.toFixed(1)} messages per imported mail (requests, replies and JetStream acks).`,
    ...warningLines([{ label: "node", warnings: r.warnings }], NODE_WARNINGS),
    ...importMemoryLines(r, verdicts),
    ...importTogetherLines(r, verdicts),
    ...backgroundLine([outcome]),
  );
  return lines;
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const signedMib = (bytes: number) => `${bytes < 0 ? "−" : "+"}${mib(Math.abs(bytes))}`;

/** The in-process node's memory during its import of the first mailbox, and the two targets on it. */
function importMemoryLines(r: ImapResult, verdicts: Verdict[]): string[] {
  const m = r.node.memory;
  const js = (sample: { heapUsed: number; external: number }) => sample.heapUsed + sample.external;
  const growth = m.peakJs - js(m.idle);
  const retained = r.node.retained === undefined ? null : js(r.node.retained) - js(m.idle);
  verdicts.push({
    target: `Node heap (heapUsed + external) during a ${formatCount(r.messages)}-message import ≤ ${TARGETS.importHeapMiB} MiB over the idle node's`,
    measured: `${signedMib(growth)} at the peak (${mib(m.peakJs)} vs ${mib(js(m.idle))} idle)`,
    met: growth <= TARGETS.importHeapMiB * MiB,
  });
  verdicts.push({
    target: `… and it does not grow with the mailbox: what the node still holds once the import is over (settled by full GCs) ≤ the idle node's + ${TARGETS.importGrowthMiB} MiB`,
    measured:
      r.node.retained === undefined || retained === null
        ? "not measured by that run"
        : `${signedMib(retained)} (${mib(js(r.node.retained))} vs ${mib(js(m.idle))} idle)`,
    met: retained === null ? null : retained <= TARGETS.importGrowthMiB * MiB,
  });
  const row = (label: string, idle: number, peak: number, quarters: string) =>
    `| ${label} | ${mib(idle)} | ${mib(peak)} | ${signedMib(peak - idle)} | ${quarters} |`;
  return [
    "",
    "### The node's memory during the import",
    "",
    `The node of the table above runs in the scenario's process, which does nothing else meanwhile but poll the worker. **Idle**: \`process.memoryUsage()\` with the worker started, after four full GCs (\`--expose-gc\`). **During the import**: sampled every ${m.everyMs} ms as it is, garbage included (${formatCount(m.samples)} samples); each peak is the highest sample of that figure. *external* includes *arrayBuffers* (the Buffers: raws on their way); *heapUsed + external* is what the JavaScript side holds, the figure of the targets. *First* and *last quarter*: the highest value in the first and the last 25 % of the run's time. Since V8 lets garbage pile up in the old space until a major GC, the timed peaks mostly say when the last one ran. The samples taken just after each major GC (a \`gc\` performance entry; ${m.majorGcs} major GCs during the run) still hold the import's work in flight (batches, parsers, the young generation). **Once the import is over**: \`process.memoryUsage()\` again after four full GCs, as for the idle figure: what the node kept of the import, which would grow with the mailbox if it kept anything per message.`,
    "",
    "| Figure | idle | peak | peak − idle | peak in first / last quarter |",
    "|---|---:|---:|---:|---:|",
    row("heapUsed", m.idle.heapUsed, m.peak.heapUsed, "—"),
    row("external (incl. arrayBuffers)", m.idle.external, m.peak.external, "—"),
    row("arrayBuffers", m.idle.arrayBuffers, m.peak.arrayBuffers, "—"),
    row("RSS", m.idle.rss, m.peak.rss, "—"),
    row("**heapUsed + external**", js(m.idle), m.peakJs, `${mib(m.firstQuarterPeakJs)} / ${mib(m.lastQuarterPeakJs)}`),
    `| heapUsed + external just after a major GC (in-flight work included) | ${mib(js(m.idle))} | | | ${mib(m.firstQuarterAfterGcJs)} / ${mib(m.lastQuarterAfterGcJs)} |`,
    ...(r.node.retained === undefined
      ? []
      : [
          `| **heapUsed + external once the import is over, settled by full GCs** | ${mib(js(m.idle))} | ${mib(js(r.node.retained))} | ${signedMib(js(r.node.retained) - js(m.idle))} | — |`,
        ]),
  ];
}

/** Two mailboxes at once, one node then two, and the target on their ratio. */
function importTogetherLines(r: ImapResult, verdicts: Verdict[]): string[] {
  const target = `Two nodes importing two mailboxes at once ≤ ${TARGETS.imapTwoNodesRatio} × one node's time for both`;
  const head = ["", "### Two mailboxes at once: one node, then two", ""];
  if (!r.pair.ok) {
    verdicts.push({ target, measured: "the runs failed", met: null });
    return [...head, failureText(r.pair.error)];
  }
  const oneNode = fastestRun(r.pair.oneNode);
  const twoNodes = fastestRun(r.pair.twoNodes);
  if (oneNode === undefined || twoNodes === undefined) {
    verdicts.push({ target, measured: "no round ran", met: null });
    return head;
  }
  const ratio = twoNodes.ms / oneNode.ms;
  verdicts.push({ target, measured: `${formatRatio(ratio)} (${seconds(twoNodes.ms)} vs ${seconds(oneNode.ms)})`, met: ratio <= TARGETS.imapTwoNodesRatio });
  const row = (label: string, value: ImapPairRun) => {
    const perNode = value.nodeCpuMs.map((cpu) => `${perMessage(cpu, value.messages)} (${formatPercent(cpu / value.ms)})`).join(" + ");
    const placed = value.placement.map((entry) => `${entry.worker} / ${entry.inbound}`).join("; ");
    const calls = (count: number) => (count / value.messages).toFixed(1);
    return `| ${label} | ${seconds(value.ms)} | ${value.mailboxMs.map(seconds).join(", ")} | ${formatCount(value.perSecond)} | ${perNode} | ${perMessage(value.natsCpuMs, value.messages)} (${formatPercent(value.natsCpuMs / value.ms)}) | ${perMessage(value.dovecotCpuMs, value.messages)} (${formatPercent(value.dovecotCpuMs / value.ms)}) | ${value.nodeSyscalls.map(calls).join(" + ")} | ${calls(value.natsSyscalls)} | ${placed} |`;
  };
  return [
    ...head,
    `A second Dovecot user holds a second mailbox of the same ${formatCount(r.messages)} corpus messages (other Message-IDs), read once beforehand like the first. Each run starts fresh node processes (scripts/bench/mail-node-process.ts: the same services, push off, ${formatCount(oneNode.messages)} messages in all) on the scenario's nats-server, creates two users with one remote IMAP identity each (one per mailbox), sends \`add_worker\` for both and, once the workers run, both \`fullfetch\` orders at once; time until both identities' \`last_sync\` is written (the worker's last step, once every import batch was answered), polled every 50 ms, then each user's stored messages are counted (${formatCount(r.messages)} each, or the run fails). **Two nodes**: the users and identities are drawn until each mailbox's imap worker (keyed by identity) and its user's inbound actor (keyed by user) hash to shards the same node owns (rendezvous over the two node ids), one mailbox per node; \`caliopen.debug.actors\` must show the workers on those nodes before the clock starts and the inbound actors there once done. The one-node run goes first, so the two-node run works against a store holding ${formatCount(oneNode.messages)} more messages. *CPU / message*: each process's CPU over all ${formatCount(oneNode.messages)} messages of the run (and its share of one core over the run); *syscalls / message*: read and write system calls (/proc/<pid>/io) per message — the node's NATS and IMAP sockets, the nats-server's client sockets and its JetStream files. ${r.pair.oneNode.length} rounds of each, alternated (one node, two nodes, one node, …); the fastest of each, in bold, make the ratio.`,
    "",
    "| Run | time | each mailbox | messages/s | node CPU / message, per node process | nats-server CPU / message | Dovecot CPU / message | node syscalls / message, per process | nats-server syscalls / message | where (worker / inbound actor, per mailbox) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...r.pair.oneNode.map((value, index) => row(`${value === oneNode ? "**one node**" : "one node"}, both mailboxes (round ${index + 1})`, value)),
    ...r.pair.twoNodes.map((value, index) => row(`${value === twoNodes ? "**two nodes**" : "two nodes"}, one mailbox each (round ${index + 1})`, value)),
    `| **two ÷ one** | ${formatRatio(ratio)} | | ${formatRatio(twoNodes.perSecond / oneNode.perSecond)} | | | | | | |`,
    ...warningLines(
      [
        ...r.pair.oneNode.map((value, index) => ({ label: `one node, round ${index + 1}`, warnings: value.warnings })),
        ...r.pair.twoNodes.map((value, index) => ({ label: `two nodes, round ${index + 1}`, warnings: value.warnings })),
      ],
      "Warnings and errors the node processes logged during these runs:",
    ),
  ];
}

function smtpRow(label: string, value: SmtpRun, baseline: SmtpRun): string {
  return `| ${label} | ${formatCount(value.messages)} | ${seconds(value.ms)} | ${formatCount(value.perSecond)} | ${formatRatio(value.perSecond / baseline.perSecond)} | ${formatMs(value.cpuMs / value.messages)} | ${Number.isFinite(value.natsCpuMs) && value.natsCpuMs > 0 ? formatMs(value.natsCpuMs / value.messages) : "—"} | ${formatMs(value.loadCpuMs / value.messages)} |`;
}

/** Scenario 6: inbound SMTP through the node against a bare smtp-server. */
function smtpSection(run: BenchRun): string[] {
  const outcome = run.smtp;
  if (outcome === null) return [];
  const lines = ["## 6. Inbound SMTP: messages/s end to end vs a bare smtp-server", ""];
  if (!outcome.ok) return [...lines, failureText(outcome.error), ...backgroundLine([outcome])];
  const r = outcome.value;
  lines.push(
    `Postfix's \`smtp-source\` (/usr/sbin/smtp-source, C) sends ${formatCount(r.node.messages)} messages over ${r.sessions} parallel SMTP sessions, each keeping its connection (\`-s ${r.sessions} -m ${r.node.messages} -l ${r.size} -d\`: ${formatBytes(r.size)} of body plus smtp-source's From/To/Date/Message-Id/Subject headers, a unique Message-Id each), after an untimed warm-up of ${formatCount(r.warmup)} to the same receiver. Time: from starting smtp-source until it exits 0 (it stops at the first reply that is not 2xx).`,
    `**Baseline**: a bare \`smtp-server\` with the node's settings (no AUTH, no STARTTLS, no reverse lookup) that reads each message to its end and drops it. **The node**: its inbound SMTP server (\`CALIOPEN_SMTP\`, actors/mail/inbound-smtp-server.ts) with one local recipient (a user's local identity); per message it looks the recipient up (RCPT), stores the raw once by content, has the user's inbound actor import it (\`import_batch\`, as \`process_inbound\` on \`inboundSMTP\` would) and answers 250 only when that reply came back. **Completion signal**: smtp-source exiting 0, i.e. 250 for every message, i.e. every message stored; the user's keys in the messages bucket are counted afterwards (${formatCount(r.node.received)} new).`,
    "",
    "| Receiver | messages | time | messages/s | ÷ baseline | receiver CPU / message | nats-server CPU / message | smtp-source CPU / message |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    smtpRow("bare smtp-server, read and drop — baseline", r.baseline, r.baseline),
    smtpRow("**node**: inbound SMTP → raw → inbound actor → stored message", r.node, r.baseline),
    ...warningLines([{ label: "node", warnings: r.warnings }], NODE_WARNINGS),
    ...backgroundLine([outcome]),
  );
  return lines;
}

function latencyRow(label: string, value: PushLatency): string {
  return `| ${label} | ${formatMs(value.median)} | ${formatMs(value.p90)} | ${formatMs(value.max)} | ${value.missed} |`;
}

/** Scenario 7: push latency, APPEND → stored, against a plain IDLE client. */
function pushSection(run: BenchRun): string[] {
  const outcome = run.push;
  if (outcome === null) return [];
  const lines = ["## 7. Push: from an APPEND to the stored message vs a raw IDLE client", ""];
  if (!outcome.ok) return [...lines, failureText(outcome.error), ...backgroundLine([outcome])];
  const r = outcome.value;
  lines.push(
    `A node runs the imap worker of a remote identity with IDLE push on (actors/imap/new-mail-watch.ts: a connection kept open on INBOX in IDLE; an EXISTS makes the worker run an incremental sync on a connection of its own). Another client APPENDs ${r.appends} messages into that INBOX, one at a time, ${seconds(r.spacingMs)} apart; each is timed from just before its APPEND is sent. **Baseline**: a plain imapflow client, in a process of its own, IDLEing on the same INBOX: until it gets the EXISTS (the same APPENDs, observed at the same time). **The node** (**completion signal**): until the message's document appears in the messages bucket, seen by a KV watch on the user's keys and matched by Message-ID.`,
    "",
    "| Observer | median | p90 | max | missed |",
    "|---|---:|---:|---:|---:|",
    latencyRow("APPEND command, until Dovecot's OK", r.append),
    latencyRow("plain imapflow client in IDLE: EXISTS — baseline", r.idle),
    latencyRow("**node**: message stored", r.node),
    latencyRow("node − IDLE client, per APPEND (what the node adds)", r.overhead),
    `| **node ÷ IDLE client** | ${formatRatio(r.node.median / r.idle.median)} | ${formatRatio(r.node.p90 / r.idle.p90)} | ${formatRatio(r.node.max / r.idle.max)} | |`,
    ...warningLines([{ label: "node", warnings: r.warnings }], NODE_WARNINGS),
    ...backgroundLine([outcome]),
  );
  return lines;
}

const SECURITY_LABELS: Record<BenchSecurity, string> = {
  plain: "plain: nkey, no TLS",
  tls: "TLS (mutual) + nkey",
  "tls-role": "**TLS (mutual) + node role**",
};

/** The ratios section 8 shows: TLS itself, TLS with the node role (the issue's figure), and the role's share. */
const SECURITY_RATIOS: readonly (readonly [BenchSecurity, BenchSecurity, string])[] = [
  ["tls", "plain", "TLS ÷ plain (TLS itself)"],
  ["tls-role", "plain", "TLS + node role ÷ plain"],
  ["tls-role", "tls", "node role ÷ TLS alone (the permissions)"],
];

const ioCell = (io: IoCounters, pick: keyof IoCounters) =>
  Number.isFinite(io[pick]) ? (pick === "bytes" ? formatBytes(io[pick]) : io[pick].toFixed(2)) : "n/a";
/** I/O compared by difference (what TLS adds per message is a few bytes), then by ratio. */
const ioChange = (a: IoCounters, b: IoCounters, pick: keyof IoCounters) => {
  const delta = a[pick] - b[pick];
  if (!Number.isFinite(delta)) return "n/a";
  const sign = delta < 0 ? "−" : "+";
  return `${sign}${pick === "bytes" ? formatBytes(Math.abs(delta)) : Math.abs(delta).toFixed(2)} (${formatRatio(a[pick] / b[pick])})`;
};

/** Section 8: the request and orders scenarios against servers secured four ways, each scenario on all four in a row. */
function tlsSection(run: BenchRun): string[] {
  const secured = keyFigures(run).tls;
  const { requests, orders } = run.config.tls;
  const requestRows: string[] = [];
  const requestRow = (label: string, f: RequestFigures) =>
    `| ${label} | ${formatMs(f.p50)} | ${formatMs(f.p99)} | ${formatCount(f.perSecond)} | ${formatMs(f.loadedP50)} | ${formatMicros(f.responderCpu)} | ${formatMicros(f.serverCpu)} | ${formatMicros(f.clientCpu)} | ${ioCell(f.responderIo, "bytes")} | ${ioCell(f.responderIo, "syscalls")} |`;
  const requestRatio = (label: string, a: RequestFigures, b: RequestFigures) =>
    `| ${label} | ${formatRatio(a.p50 / b.p50)} | ${formatRatio(a.p99 / b.p99)} | ${formatRatio(a.perSecond / b.perSecond)} | ${formatRatio(a.loadedP50 / b.loadedP50)} | ${formatRatio(a.responderCpu / b.responderCpu)} | ${formatRatio(a.serverCpu / b.serverCpu)} | ${formatRatio(a.clientCpu / b.clientCpu)} | ${ioChange(a.responderIo, b.responderIo, "bytes")} | ${ioChange(a.responderIo, b.responderIo, "syscalls")} |`;
  for (const variant of ["raw", "actor"] as const) {
    const name = variant === "raw" ? "raw nats.js responder" : "entry point → actor";
    for (const security of BENCH_SECURITIES) {
      const f = secured[security]?.requests[variant];
      if (f !== undefined) requestRows.push(requestRow(`${name} · ${SECURITY_LABELS[security]}`, f));
    }
    for (const [over, under, what] of SECURITY_RATIOS) {
      const a = secured[over]?.requests[variant];
      const b = secured[under]?.requests[variant];
      if (a !== undefined && b !== undefined) requestRows.push(requestRatio(`*${name}: ${what}*`, a, b));
    }
  }
  const ordersRows: string[] = [];
  const ordersRow = (label: string, f: OrdersFigures) =>
    `| ${label} | ${formatCount(f.perSecond)} | ${formatCount(f.pacedPerSecond)} | ${formatMicros(f.cpuPerOrder)} | ${formatMicros(f.serverCpuPerOrder)} | ${formatMicros(f.publisherCpuPerOrder)} | ${ioCell(f.consumerIo, "bytes")} | ${ioCell(f.consumerIo, "syscalls")} |`;
  const ordersRatio = (label: string, a: OrdersFigures, b: OrdersFigures) =>
    `| ${label} | ${formatRatio(a.perSecond / b.perSecond)} | ${formatRatio(a.pacedPerSecond / b.pacedPerSecond)} | ${formatRatio(a.cpuPerOrder / b.cpuPerOrder)} | ${formatRatio(a.serverCpuPerOrder / b.serverCpuPerOrder)} | ${formatRatio(a.publisherCpuPerOrder / b.publisherCpuPerOrder)} | ${ioChange(a.consumerIo, b.consumerIo, "bytes")} | ${ioChange(a.consumerIo, b.consumerIo, "syscalls")} |`;
  for (const variant of ["raw", "actor-none"] as const) {
    const name = variant === "raw" ? "raw nats.js queue subscriber" : "node: entry point → actor";
    for (const security of BENCH_SECURITIES) {
      const f = secured[security]?.orders[variant];
      if (f !== undefined) ordersRows.push(ordersRow(`${name} · ${SECURITY_LABELS[security]}`, f));
    }
    for (const [over, under, what] of SECURITY_RATIOS) {
      const a = secured[over]?.orders[variant];
      const b = secured[under]?.orders[variant];
      if (a !== undefined && b !== undefined) ordersRows.push(ordersRatio(`*${name}: ${what}*`, a, b));
    }
  }
  const outcomes = run.tls.map((entry) => entry.outcome);
  const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? "n/a" : formatRatio(a / b));
  const headline = (over: BenchSecurity) => {
    const req = (security: BenchSecurity) => secured[security]?.requests.actor;
    const ord = (security: BenchSecurity) => secured[security]?.orders["actor-none"];
    return `request p50 ${ratio(req(over)?.p50, req("plain")?.p50)} (sequential), requests/s ${ratio(req(over)?.perSecond, req("plain")?.perSecond)} (${requests.inFlight} in flight); published orders/s ${ratio(ord(over)?.pacedPerSecond, ord("plain")?.pacedPerSecond)} paced, ${ratio(ord(over)?.perSecond, ord("plain")?.perSecond)} on a backlog`;
  };
  const bad = run.tls.flatMap((entry) =>
    entry.kind === "requests" && entry.outcome.ok && entry.outcome.value.badReplies > 0 ? [`${entry.outcome.label}: ${entry.outcome.value.badReplies}`] : [],
  );
  return [
    "## 8. The cost of TLS and credentials",
    "",
    `Through an actor, as ratios to plain measured in the same run — **TLS + node role** (a production deployment): ${headline("tls-role")}. **TLS alone**: ${headline("tls")}.`,
    "",
    `The request scenario (scripts/bench/requests-scenario.ts, both responders) and the orders scenario (scripts/bench/orders-scenario.ts, the \`raw\` subscriber and the \`actor-none\` node), as in sections 1 and 2 but smaller (${formatCount(requests.sequential)} sequential requests, then ${formatCount(requests.concurrent)} with ${requests.inFlight} in flight × ${requests.rounds} round(s); ${formatCount(orders.count)} orders per round for the raw subscriber and ${formatCount(orders.durableCount)} for the node, ${orders.rounds} backlog then ${orders.rounds} paced round(s)), each run against three fresh nats-servers in a row (scripts/bench/bench-security.ts): **plain**, what every other section runs on — the nkey the embedded server makes, allowed everything, no TLS; **TLS + nkey** — the same user, and TLS on the client port with \`verify: true\` (every client shows a certificate of the CA: mutual TLS; ECDSA P-256 certificates from scripts/local-servers/tls-certs.ts); **TLS + node role** — TLS, and the node role's nkey and subject permissions from supervisors/nats-roles.ts as \`caliopen nats-config\` prints them, as the test cluster runs. (The node role has no \`allow_responses\`: with it, nats-server tracked every reply subject it delivered to the node, and this section measured 20× its CPU per request and per order, 0.06× the requests/s and 0.04× the paced orders/s of plain — run of 2026-11-30, commit 8473d1b.) Every connection — node, raw baseline, load generator — signs in the same way; responder or consumer, nats-server and load generator are separate processes.`,
    "*CPU / req*, *CPU / order*: CPU time of the process per request or order (orders: backlog drains; the publisher's own CPU while it published). *bytes*, *syscalls*: from /proc/<pid>/io, read plus written, per request or order, of the responder or consumer process, whose only I/O is its NATS connections: its socket traffic as the kernel carries it, TLS records included. Ratio rows compare I/O by difference, then ratio.",
    "",
    "### Request/reply",
    "",
    "| Responder · server | seq p50 | seq p99 | loaded req/s | loaded p50 | responder CPU / req | nats-server CPU / req | client CPU / req (loaded) | responder bytes / req | responder syscalls / req |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...requestRows,
    "",
    "### Published orders",
    "",
    "| Consumer · server | backlog orders/s | paced orders/s | consumer CPU / order | nats-server CPU / order | publisher CPU / order | consumer bytes / order | consumer syscalls / order |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...ordersRows,
    ...warningLines(
      run.tls.flatMap((entry) => (entry.outcome.ok ? [{ label: entry.outcome.label, warnings: entry.outcome.value.warnings }] : [])),
      "Warnings and errors the runtime logged during these runs:",
    ),
    ...(bad.length > 0 ? ["", `**Error replies (figures are void):** ${bad.join("; ")}`] : []),
    ...failures(outcomes),
    ...backgroundLine(outcomes),
  ];
}
