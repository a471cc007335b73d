// The runtime's sections of the report (1–4): orders/s, request/reply, activation and memory per actor,
// failover and rebalance; each adds its verdicts to the targets table.

import { DEFAULT_FAILURE_DETECTION_MS } from "../../supervisors/node-config.ts";
import type { BenchRun, Outcome } from "./bench-run.ts";
import { TARGETS } from "./bench-targets.ts";
import type { FailoverResult } from "./failover-scenario.ts";
import { packageVersion } from "./machine-info.ts";
import { backgroundLine, failures, found, type Verdict, warningLines } from "./report-format.ts";
import { livenessLines } from "./report-liveness.ts";
import type { ActivationResult, OrdersResult, OrdersRound, RequestsResult } from "./results.ts";
import { formatBytes, formatCount, formatMicros, formatMs, formatPercent, formatRatio, median } from "./stats.ts";

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
  "raw-durable": "raw nats.js durable path (intake stream → one durable consumer: decode, count, ack)",
  entry: "node: intake stream → entry point → counting handler (no actor)",
  "actor-none": "node: intake → entry point → actor's node (here in-process) → actor, persistence `none`",
  "actor-snapshot": "node: the same, persistence `snapshot`",
};

export function ordersSection(run: BenchRun, verdicts: Verdict[]): string[] {
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
    "The actor side is a real node (`startNode`, supervisors/node.ts, 64 shards) running the bench family, with IMAPfetcher `sync` bound to `routeToActor`. A published order is captured by the node's JetStream intake stream as it is sent; the entry point reads it through a durable consumer, validates it and hands it to the node that runs the actor's shard (here this one: in-process, `KeyedOrders.apply` → `ShardRunner.apply`), which gives it to the actor (started by its first order) in its key's turn; the entry point acks it once the actor's state after it is saved. JetStream is crossed once. Every key's actor is live before the timed rounds (activation is scenario 3).",
    "The **raw durable** baseline is that same path in bare nats.js with its defaults, without entry point, actors or KV: the subject captured by a work-queue stream, one durable consumer that decodes, counts and acks each order. It is the fair yardstick for what the runtime adds on top of its durable design (one JetStream crossing per order); the plain raw subscriber is the one the targets name.",
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
  // Its target row goes after the orders/s ones.
  const livenessVerdicts: Verdict[] = [];
  lines.push(...livenessLines(run.orders, ORDER_LABELS, run.config.orders.warmup, livenessVerdicts));

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
  verdicts.push(...livenessVerdicts);
  return lines;
}

const REQUEST_LABELS: Record<RequestsResult["variant"], string> = {
  raw: "raw nats.js responder",
  entry: "node: entry point → handler that answers (no actor)",
  actor: "entry point → actor",
  moleculer: "Moleculer: `broker.call` → action (its own client)",
};

export function requestsSection(run: BenchRun, verdicts: Verdict[]): string[] {
  const { sequential, concurrent, inFlight, rounds, keys } = run.config.requests;
  const raw = found(run.requests, (value) => value.variant === "raw");
  const actor = found(run.requests, (value) => value.variant === "actor");
  const moleculer = found(run.requests, (value) => value.variant === "moleculer");
  const entry = found(run.requests, (value) => value.variant === "entry");
  const throughput = (value: RequestsResult) => median(value.concurrent.map((round) => round.perSecond));
  const loadedP50 = (value: RequestsResult) => median(value.concurrent.map((round) => round.latency.p50));
  const loadedP99 = (value: RequestsResult) => median(value.concurrent.map((round) => round.latency.p99));
  const clientCpu = (value: RequestsResult) => median(value.concurrent.map((round) => round.clientCpuMicrosPerRequest));
  const lines = [
    "## 2. Request/reply: actor vs a raw responder and Moleculer",
    "",
    `\`outboundIMAP\` \`deliver\` requests (\`{"order":"deliver","message_id":…,"remote_id":"r-<0..${keys - 1}>","user_id":"u-456"}\`). The client is another Node process publishing with a reply subject into one shared inbox subscription (scripts/bench/inbox-client.ts), identical for the raw and actor rows; it checks every reply is \`{"error":false,…}\`.`,
    `The raw responder decodes the JSON and replies; the **entry point** row is a real node whose \`deliver\` handler answers at once (the entry point's decode, validation against the contract and handler plumbing, no routing and no actor); the actor path runs on a real node: entry point (mode \`request\`: decode, validate against the contract) → \`routeToActor\` → \`KeyedOrders.forward\` (the owning node is this one, so it hands the request to the actor in-process) → actor (persistence \`none\`, started beforehand by one \`sync\` per key) → \`ports.reply(event.replyTo, …)\`. Sequential: ${formatCount(sequential)} requests one at a time. Loaded: ${formatCount(concurrent)} requests with ${inFlight} in flight, median of ${rounds} round(s).`,
    `**Moleculer** (${packageVersion("moleculer")}, the same-stack peer: Node.js services on NATS) runs in the same run against the same kind of nats-server, signed in with the same nkey: the responder is a \`ServiceBroker\` in the scenario process with service \`outboundIMAP\` and action \`deliver\`, which answers the same \`{"error":false,…}\` reply; the client, another Node process, is a second broker calling it with \`broker.call("outboundIMAP.deliver", order)\` over Moleculer's NATS transporter (the \`nats\` ${packageVersion("nats")} v2 client it requires), the same orders decoded once into params, the same warm-up, sequential requests and loaded rounds (scripts/bench/moleculer-broker.ts, moleculer-load.ts). Its client differs by necessity: a Moleculer action answers only a Moleculer caller, which wraps each order and reply in its own envelope (JSON packets with id, meta, headers, sender… on \`MOL.REQ.<node>\` and \`MOL.RES.<node>\`, the caller choosing the node) and decodes the reply before the call resolves. Moleculer's defaults otherwise (JSON serializer, round-robin balancer, no request timeout), logging off.`,
    "",
    "| Responder | seq p50 | seq p99 | loaded req/s | loaded p50 | loaded p99 | responder CPU / req | nats-server CPU / req | client CPU / req (loaded) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const value of [raw, entry, actor, moleculer]) {
    if (value === undefined) continue;
    lines.push(
      `| ${REQUEST_LABELS[value.variant]} | ${formatMs(value.sequential.p50)} | ${formatMs(value.sequential.p99)} | ${formatCount(throughput(value))} | ${formatMs(loadedP50(value))} | ${formatMs(loadedP99(value))} | ${formatMicros(value.responderCpuMicrosPerRequest)} | ${formatMicros(value.serverCpuMicrosPerRequest)} | ${formatMicros(clientCpu(value))} |`,
    );
  }
  for (const [label, under] of [
    ["raw", raw],
    ["Moleculer", moleculer],
  ] as const) {
    if (actor === undefined || under === undefined) continue;
    lines.push(
      `| **actor ÷ ${label}** | ${formatRatio(actor.sequential.p50 / under.sequential.p50)} | ${formatRatio(actor.sequential.p99 / under.sequential.p99)} | ${formatRatio(throughput(actor) / throughput(under))} | ${formatRatio(loadedP50(actor) / loadedP50(under))} | ${formatRatio(loadedP99(actor) / loadedP99(under))} | ${formatRatio(actor.responderCpuMicrosPerRequest / under.responderCpuMicrosPerRequest)} | ${formatRatio(actor.serverCpuMicrosPerRequest / under.serverCpuMicrosPerRequest)} | ${formatRatio(clientCpu(actor) / clientCpu(under))} |`,
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
  const peerRatio = actor !== undefined && moleculer !== undefined ? throughput(actor) / throughput(moleculer) : Number.NaN;
  verdicts.push({
    target: `Requests/s through an actor (${inFlight} in flight) ≥ Moleculer's, same run`,
    measured:
      Number.isFinite(peerRatio) && actor !== undefined && moleculer !== undefined
        ? `${formatRatio(peerRatio)} (${formatCount(throughput(actor))} vs ${formatCount(throughput(moleculer))}/s)`
        : "n/a",
    met: Number.isFinite(peerRatio) ? peerRatio >= TARGETS.requestsVsMoleculerRatio : null,
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

export function activationSection(run: BenchRun, verdicts: Verdict[]): string[] {
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

/** Scale-out: failover after kill -9, rebalance when a node joins, orders lost or applied twice. */
export function failoverSection(outcome: Outcome<FailoverResult> | null, verdicts: Verdict[]): string[] {
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
    target: `Failover after kill -9: median ≤ 1.5 s, ${actors} actors`,
    measured: `median ${(middle(failover) / 1000).toFixed(2)} s, max ${(Math.max(...failover) / 1000).toFixed(2)} s`,
    met: middle(failover) <= 1_500,
  });
  verdicts.push({
    target: "Orders lost during failover and rebalance = 0",
    measured: `${lost} lost, ${duplicated} applied twice`,
    met: lost === 0 && duplicated === 0,
  });
  return [
    ...lines,
    `${actors} actors (persistence \`snapshot\`) over ${nodes} node processes (scripts/bench/cluster-bench-node.ts, default failure detection) on one nats-server. Each run: kill -9 the node running the most actors and send one \`sync\` per actor at once; **failover** is the time from the kill until the debug subject shows every actor running on a survivor. Then start a new node and send one \`sync\` per actor; **rebalance** is the time from its \`ready\` until placement stops changing (last change, with the new node holding a share). After each run the intake stream drains and every actor's saved \`syncs\` is compared with the orders sent.`,
    "",
    "| run | failover | rebalance | orders lost | applied twice |",
    "|---:|---:|---:|---:|---:|",
    ...runs.map((r, i) => `| ${i + 1} | ${ms([r.failoverMs])[0]} | ${ms([r.rebalanceMs])[0]} | ${r.lost} | ${r.duplicated} |`),
    `| median | ${(middle(failover) / 1000).toFixed(2)} s | ${(middle(rebalance) / 1000).toFixed(2)} s | | |`,
    `| max | ${(Math.max(...failover) / 1000).toFixed(2)} s | ${(Math.max(...rebalance) / 1000).toFixed(2)} s | ${lost} (total) | ${duplicated} (total) |`,
    "",
    `The failover budget: the failure-detection window (${DEFAULT_FAILURE_DETECTION_MS / 1000} s, \`CALIOPEN_FAILURE_DETECTION_MS\`'s default: survivors take a node for dead after that long without seeing its heartbeat) plus the takeover (claim the shards by compare-and-swap, rewrite and restore each actor's snapshot: a few hundred ms for 1,000 actors). An order the dead node's actors had been handed is handed again by its sender to the shard's new owner (at once when the dead node's inbox is gone, after 5 s when its answer never came); one the dead node's entry point had taken comes back after the intake's ack wait (10 s), which the drain above includes.`,
  ];
}
