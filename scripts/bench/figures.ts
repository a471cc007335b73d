// The handful of numbers the interpretation reasons with, pulled out of a run (NaN when not measured).

import type { BenchRun, Outcome } from "./bench-run.ts";
import type { BenchSecurity } from "./bench-security.ts";
import type { IoCounters } from "./io-meter.ts";
import type { ActivationResult, ImapPairRun, OrdersResult, OrdersRound, OrdersVariant, RequestsResult, RequestsVariant } from "./results.ts";
import { median } from "./stats.ts";

export interface OrdersFigures {
  perSecond: number;
  /** Consumer CPU µs per order in backlog rounds. */
  cpuPerOrder: number;
  /** nats-server and publisher CPU µs per order in backlog rounds. */
  serverCpuPerOrder: number;
  publisherCpuPerOrder: number;
  /** I/O per order of the consumer process in backlog rounds. */
  consumerIo: IoCounters;
  pacedPerSecond: number;
  kvWrites: number;
  settledMs: number;
  lostUpdates: number;
  warnings: Record<string, number>;
}

export interface RequestFigures {
  /** Sequential. */
  p50: number;
  p99: number;
  /** Loaded: medians over rounds. */
  perSecond: number;
  loadedP50: number;
  /** CPU µs per request. */
  responderCpu: number;
  serverCpu: number;
  clientCpu: number;
  responderIo: IoCounters;
  badReplies: number;
  warnings: Record<string, number>;
}

/** Section 8: the same scenarios against servers secured in different ways. */
export type SecuredFigures = Partial<
  Record<BenchSecurity, { requests: Partial<Record<RequestsVariant, RequestFigures>>; orders: Partial<Record<OrdersVariant, OrdersFigures>> }>
>;

export interface KeyFigures {
  orders: Partial<Record<OrdersResult["variant"], OrdersFigures>>;
  /** In-process µs per order of each layer, by position in the dispatch table. */
  layers: {
    decodeValidate: number;
    can: number;
    xstateSend: number;
    tellLocal: number;
    jsPublish: number;
    jsPublishWall: number;
    jsPublishUntraced: number;
    jsPublishUntracedWall: number;
  };
  requests: Partial<Record<RequestsResult["variant"], RequestFigures>>;
  tls: SecuredFigures;
  activation: (population: { mode: ActivationResult["mode"]; persistence?: "none" | "snapshot"; count: number }) => ActivationResult | undefined;
}

const values = <T>(outcomes: Outcome<T>[]): T[] => outcomes.flatMap((outcome) => (outcome.ok ? [outcome.value] : []));
const med = (rounds: OrdersRound[], pick: (round: OrdersRound) => number | null) => median(rounds.map(pick).filter((value): value is number => value !== null));
const sum = (rounds: OrdersRound[], pick: (round: OrdersRound) => number | null) => rounds.reduce((total, round) => total + (pick(round) ?? 0), 0);

function ordersFigures(value: OrdersResult): OrdersFigures {
  const perOrder = (pick: (round: OrdersRound) => number) => med(value.backlog, (round) => pick(round) / value.count);
  return {
    perSecond: med(value.backlog, (round) => round.perSecond),
    cpuPerOrder: perOrder((round) => round.consumerCpuMs * 1000),
    serverCpuPerOrder: perOrder((round) => round.serverCpuMs * 1000),
    publisherCpuPerOrder: perOrder((round) => round.publisherCpuMs * 1000),
    consumerIo: { bytes: perOrder((round) => round.consumerIo.bytes), syscalls: perOrder((round) => round.consumerIo.syscalls) },
    pacedPerSecond: med(value.paced, (round) => round.perSecond),
    kvWrites: med(value.backlog, (round) => round.kvWrites),
    settledMs: med(value.backlog, (round) => round.settledMs),
    lostUpdates: sum([...value.backlog, ...value.paced], (round) => round.lostUpdates),
    warnings: value.warnings,
  };
}

function requestFigures(value: RequestsResult): RequestFigures {
  return {
    p50: value.sequential.p50,
    p99: value.sequential.p99,
    perSecond: median(value.concurrent.map((round) => round.perSecond)),
    loadedP50: median(value.concurrent.map((round) => round.latency.p50)),
    responderCpu: value.responderCpuMicrosPerRequest,
    serverCpu: value.serverCpuMicrosPerRequest,
    clientCpu: median(value.concurrent.map((round) => round.clientCpuMicrosPerRequest)),
    responderIo: value.responderIoPerRequest,
    badReplies: value.badReplies,
    warnings: value.warnings,
  };
}

function securedFigures(run: BenchRun): SecuredFigures {
  const figures: SecuredFigures = {};
  for (const secured of run.tls) {
    if (!secured.outcome.ok) continue;
    const entry = figures[secured.security] ?? { requests: {}, orders: {} };
    figures[secured.security] = entry;
    if (secured.kind === "requests") entry.requests[secured.outcome.value.variant] = requestFigures(secured.outcome.value);
    else entry.orders[secured.outcome.value.variant] = ordersFigures(secured.outcome.value);
  }
  return figures;
}

export function keyFigures(run: BenchRun): KeyFigures {
  const orders: KeyFigures["orders"] = {};
  for (const value of values(run.orders)) orders[value.variant] = ordersFigures(value);
  const steps = run.dispatch?.ok ? run.dispatch.value.steps : [];
  const step = (index: number) => steps[index]?.microsPerEvent ?? Number.NaN;
  const wall = (index: number) => steps[index]?.wallMicrosPerEvent ?? Number.NaN;
  const requests: KeyFigures["requests"] = {};
  for (const value of values(run.requests)) requests[value.variant] = requestFigures(value);
  const activations = values(run.activation);
  return {
    orders,
    // Same order as the layers in dispatch-scenario.ts.
    layers: {
      decodeValidate: step(0),
      can: step(1),
      xstateSend: step(2),
      tellLocal: step(3),
      jsPublish: step(4),
      jsPublishWall: wall(4),
      jsPublishUntraced: step(5),
      jsPublishUntracedWall: wall(5),
    },
    requests,
    tls: securedFigures(run),
    activation: (wanted) =>
      activations.find(
        (value) => value.mode === wanted.mode && value.count === wanted.count && (wanted.persistence === undefined || value.persistence === wanted.persistence),
      ),
  };
}

/** The fastest of several rounds of an import: the one least disturbed by the rest of the machine. */
export const fastestRun = (runs: ImapPairRun[]): ImapPairRun | undefined =>
  runs.reduce<ImapPairRun | undefined>((best, run) => (best === undefined || run.ms < best.ms ? run : best), undefined);
