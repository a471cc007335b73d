// Section 1's liveness figures: whether a node whose event loop the orders scenario saturates would be
// declared dead by another node, or would fence itself off; adds its verdict to the targets table.
import { membershipTiming } from "../../runtime/cluster/membership.ts";
import type { Outcome } from "./bench-run.ts";
import type { Verdict } from "./report-format.ts";
import type { LivenessPhase, OrdersPhase, OrdersResult } from "./results.ts";
import { formatCount, formatMs } from "./stats.ts";

const PHASE_LABELS: Record<OrdersPhase, string> = {
  "warm-up": "warm-up (untimed)",
  backlog: "backlog rounds",
  paced: "paced rounds",
};

const times = (count: number) => `${formatCount(count)} time${count === 1 ? "" : "s"}`;

export function livenessLines(orders: Outcome<OrdersResult>[], labels: Record<OrdersResult["variant"], string>, warmup: number, verdicts: Verdict[]): string[] {
  const watched = orders.flatMap((outcome) =>
    outcome.ok && outcome.value.liveness !== null ? [{ variant: outcome.value.variant, liveness: outcome.value.liveness }] : [],
  );
  const target = "A node saturated by the orders backlog is never declared dead nor fenced (its heartbeats watched by another process)";
  if (watched.length === 0) {
    verdicts.push({ target, measured: "n/a", met: null });
    return [];
  }
  const phases: LivenessPhase[] = watched.flatMap(({ liveness }) => liveness.phases);
  const windows = [...new Set(watched.map(({ liveness }) => liveness.windowMs))];
  const window = windows.map((ms) => `${ms} ms`).join(" / ");
  const longestGap = Math.max(...phases.map((phase) => phase.longestGapMs));
  const declaredDead = phases.reduce((total, phase) => total + phase.declaredDead, 0);
  const fenced = phases.reduce((total, phase) => total + phase.fenced, 0);
  const loopMax = Math.max(...phases.map((phase) => phase.nodeLoopMaxMs));
  const fences = [...new Set(watched.map(({ liveness }) => membershipTiming(liveness.windowMs).fenceAfterMs))].map((ms) => `${ms} ms`).join(" / ");
  const observerLoopMax = Math.max(...watched.map(({ liveness }) => liveness.observerLoopMaxMs));
  verdicts.push({
    target,
    measured: `longest heartbeat gap ${formatMs(longestGap)} (window ${window}); declared dead ${times(declaredDead)}, fenced ${times(fenced)}; event loop up to ${formatMs(loopMax)} late`,
    met: declaredDead === 0 && fenced === 0,
  });
  const row = (variant: OrdersResult["variant"], phase: LivenessPhase) =>
    `| ${labels[variant]} | ${PHASE_LABELS[phase.phase]} | ${(phase.ms / 1000).toFixed(1)} s | ${formatCount(phase.heartbeats)} | ${formatMs(phase.longestGapMs)} | ${formatCount(phase.declaredDead)} | ${formatCount(phase.fenced)} | ${formatMs(phase.nodeLoopMaxMs)} |`;
  const lines = [
    "",
    "### Liveness of the saturated node",
    "",
    `During the actor rows above, another process (scripts/bench/heartbeat-observer.ts), whose event loop stays idle, watches the cluster's heartbeat bucket as a second node's membership does and times the measured node's heartbeats by its own monotonic clock. Each gap between two heartbeats (or since the last one, when the scenario ends) is held to the runtime's own rule (\`silentTooLong\`, runtime/cluster/membership.ts): a gap that reaches the failure-detection window (${window}, the node's \`CALIOPEN_FAILURE_DETECTION_MS\`) is a time another node would have declared it dead and taken its shards over. The node writes a heartbeat every eighth of the window, and fences itself off when it could not renew one for 60 % of it (${fences}; *fenced*: "own heartbeat not renewed" in its log). *Event loop, worst delay*: perf_hooks \`monitorEventLoopDelay\` in the node's process over the phase; in backlog rounds it is the time the loop is blocked while the publisher runs, its process start included, which varies from run to run. The warm-up publishes its ${formatCount(warmup)} orders (starting every actor) from the node's own process.`,
    "",
    "| Consumer | phase | length | heartbeats seen | longest gap | declared dead | fenced | node's event loop, worst delay |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
    ...watched.flatMap(({ variant, liveness }) => liveness.phases.map((phase) => row(variant, phase))),
    "",
    `Longest heartbeat gap seen by another process: ${formatMs(longestGap)} (window ${window}), declared dead ${times(declaredDead)}, fenced ${times(fenced)}, event loop worst delay ${formatMs(loopMax)} (the node fences itself at ${fences}; the observer's own event loop was at most ${formatMs(observerLoopMax)} late).`,
  ];
  if (declaredDead > 0) {
    lines.push(
      "",
      `**⚠ Another node would have declared this node dead ${times(declaredDead)}** while it was only busy: its heartbeats stopped reaching the bucket for the whole window, and a second node would have taken its shards over.`,
    );
  }
  return lines;
}
