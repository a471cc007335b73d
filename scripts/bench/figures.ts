// The handful of numbers the interpretation reasons with, pulled out of a run (NaN when not measured).
import type { BenchRun, Outcome } from "./report.ts";
import type { ActivationResult, OrdersResult, OrdersRound, RequestsResult } from "./results.ts";
import { median } from "./stats.ts";

export interface OrdersFigures {
  perSecond: number;
  /** Consumer CPU µs per order in backlog rounds. */
  cpuPerOrder: number;
  pacedPerSecond: number;
  kvWrites: number;
  settledMs: number;
  lostUpdates: number;
  warnings: Record<string, number>;
}

export interface KeyFigures {
  orders: Partial<Record<OrdersResult["variant"], OrdersFigures>>;
  /** In-process µs per order of each layer, by position in the dispatch table. */
  layers: { decodeValidate: number; can: number; xstateSend: number; deliverLocal: number; jsPublish: number; jsPublishWall: number; jsPublishUntraced: number; jsPublishUntracedWall: number };
  requests: Partial<Record<RequestsResult["variant"], { p50: number; p99: number; perSecond: number; responderCpu: number; clientCpu: number; warnings: Record<string, number> }>>;
  activation: (population: { mode: ActivationResult["mode"]; persistence?: "none" | "snapshot"; count: number }) => ActivationResult | undefined;
}

const values = <T>(outcomes: Outcome<T>[]): T[] => outcomes.flatMap((outcome) => (outcome.ok ? [outcome.value] : []));
const med = (rounds: OrdersRound[], pick: (round: OrdersRound) => number | null) => median(rounds.map(pick).filter((value): value is number => value !== null));
const sum = (rounds: OrdersRound[], pick: (round: OrdersRound) => number | null) => rounds.reduce((total, round) => total + (pick(round) ?? 0), 0);

export function keyFigures(run: BenchRun): KeyFigures {
  const orders: KeyFigures["orders"] = {};
  for (const value of values(run.orders)) {
    const all = [...value.backlog, ...value.paced];
    orders[value.variant] = {
      perSecond: med(value.backlog, (round) => round.perSecond),
      cpuPerOrder: med(value.backlog, (round) => (round.consumerCpuMs * 1000) / value.count),
      pacedPerSecond: med(value.paced, (round) => round.perSecond),
      kvWrites: med(value.backlog, (round) => round.kvWrites),
      settledMs: med(value.backlog, (round) => round.settledMs),
      lostUpdates: sum(all, (round) => round.lostUpdates),
      warnings: value.warnings,
    };
  }
  const steps = run.dispatch?.ok ? run.dispatch.value.steps : [];
  const step = (index: number) => steps[index]?.microsPerEvent ?? Number.NaN;
  const wall = (index: number) => steps[index]?.wallMicrosPerEvent ?? Number.NaN;
  const requests: KeyFigures["requests"] = {};
  for (const value of values(run.requests)) {
    requests[value.variant] = {
      p50: value.sequential.p50,
      p99: value.sequential.p99,
      perSecond: median(value.concurrent.map((round) => round.perSecond)),
      responderCpu: value.responderCpuMicrosPerRequest,
      clientCpu: median(value.concurrent.map((round) => round.clientCpuMicrosPerRequest)),
      warnings: value.warnings,
    };
  }
  const activations = values(run.activation);
  return {
    orders,
    // Same order as the layers in dispatch-scenario.ts.
    layers: {
      decodeValidate: step(0),
      can: step(1),
      xstateSend: step(2),
      deliverLocal: step(3),
      jsPublish: step(4),
      jsPublishWall: wall(4),
      jsPublishUntraced: step(5),
      jsPublishUntracedWall: wall(5),
    },
    requests,
    activation: (wanted) =>
      activations.find((value) => value.mode === wanted.mode && value.count === wanted.count && (wanted.persistence === undefined || value.persistence === wanted.persistence)),
  };
}
