// Section 9 of the report: a platform's worth of accounts. Its cold-start part is here; the paging and
// live-accounts parts render themselves (report-paging.ts, report-live-accounts.ts).
import type { BenchRun } from "./bench-run.ts";
import { backgroundLine, failureText, mib, seconds, type Verdict } from "./report-format.ts";
import { liveAccountsSection, liveAccountsVerdicts } from "./report-live-accounts.ts";
import { pagingSection, pagingVerdicts } from "./report-paging.ts";
import type { ColdStartNode, ColdStartResult, NodeStates } from "./scale-results.ts";
import { formatCount } from "./stats.ts";

/** The issue's aims for a cold start: ready within this, with this many identities stored. */
export const COLD_START_TARGET = { readyMs: 10_000, identities: 100_000 };

const restored = (node: ColdStartNode) => (node.actors.running ?? 0) + (node.actors.passivated ?? 0) + (node.actors.crashed ?? 0);
/** Its start, then its memory 2 s later, after full collections (with what it held then). */
const nodeRow = (label: string, node: ColdStartNode, after: NodeStates) => {
  const held = after.actors.resting ?? 0;
  return `| ${label} | ${seconds(node.startMs)} | ${seconds(node.spawnToReadyMs)} | ${formatCount(node.actors.resting ?? 0)} | ${formatCount(restored(node))} | ${mib(after.memory.heapUsed)} | ${mib(after.memory.rss)} | ${held > 0 ? `${(after.memory.heapUsed / held / 1024).toFixed(2)} KiB` : "—"} |`;
};

export function scaleSection(run: BenchRun, verdicts: Verdict[]): string[] {
  const { paging, live } = run.scale;
  verdicts.push(...pagingVerdicts(paging), ...liveAccountsVerdicts(live));
  return [
    ...coldStartSection(run, verdicts),
    "",
    ...pagingSection(paging),
    ...(paging === null ? [] : backgroundLine([paging])),
    "",
    // It says the background load itself.
    ...liveAccountsSection(live),
  ];
}

function coldStartSection(run: BenchRun, verdicts: Verdict[]): string[] {
  const outcome = run.scale.coldStart;
  const lines = ["## 9. A platform's worth of accounts", "", "### Cold start"];
  if (outcome === null) return [...lines, "", "Not run."];
  if (!outcome.ok) {
    verdicts.push({
      target: `Cold start, ${formatCount(COLD_START_TARGET.identities)} identities: a node ready ≤ ${seconds(COLD_START_TARGET.readyMs)}`,
      measured: "failed",
      met: false,
    });
    return [...lines, "", failureText(outcome.error)];
  }
  const r: ColdStartResult = outcome.value;
  const slowestTrio = Math.max(...r.threeNodes.nodes.map((node) => node.startMs));
  const checks = r.threeNodes.checks.filter((check) => check.missing !== null).length;
  const size = `${formatCount(r.identities)} identities`;
  verdicts.push(
    {
      target: `Cold start, ${formatCount(COLD_START_TARGET.identities)} identities stored: a node ready (taking orders, its pollers scheduled) ≤ ${seconds(COLD_START_TARGET.readyMs)}`,
      measured: `one node ${seconds(r.oneNode.node.startMs)}, three together ${seconds(slowestTrio)} (${size})`,
      met: r.identities >= COLD_START_TARGET.identities && Math.max(r.oneNode.node.startMs, slowestTrio) <= COLD_START_TARGET.readyMs,
    },
    {
      target: "Three nodes starting together make one pass over the identities in total",
      measured: `${checks} pass(es)`,
      met: checks === 1,
    },
  );
  const afterTrio = r.threeNodes.after.map((states) => states.actors.resting ?? 0);
  return [
    ...lines,
    "",
    `${size} stored (remote IMAP accounts polled every 15 minutes, ${seconds(r.seedMs)} to store). Each node process runs the identities worker alone (scripts/bench/cold-start-node.ts): one poller actor per identity; the bridges' orders the pollers emit are taken and counted, not run. *Ready* is startNode resolved: the node is connected, joined, has resumed the shards it owns and takes orders — its pollers' next ticks armed.`,
    "",
    "1. **First start after an upgrade** (no poller exists yet): the node's check (supervisors/poller-check.ts), claimed once for the cluster, reads the identities and the registry's poller keys in one pass each and gives every identity its poller, 32 at a time, each applied by its shard's owner.",
    `   It gave ${formatCount(r.firstStart.check.missing ?? 0)} pollers in ${seconds(r.firstStart.check.ms ?? Number.NaN)} (${formatCount((r.firstStart.check.missing ?? 0) / ((r.firstStart.check.ms ?? Number.NaN) / 1000))}/s). The pollers then passivate and are recorded as resting until their next tick (runtime/resting-index.ts): ${formatCount(r.firstStart.recordedResting)} of them were when the node stopped.`,
    "2. **One node restarts** with every poller resting, then **three start together** after the check's period ran out (its claim dropped): they race for the check.",
    "",
    "| Node | startNode | from spawn (Node + tsx loading) | pollers placed resting | pollers restored | heap 2 s later (after GC) | RSS | heap per resting poller (whole heap) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    nodeRow("one node", r.oneNode.node, r.oneNode.after),
    ...r.threeNodes.nodes.map((node, i) => nodeRow(`three together: ${node.id}`, node, r.threeNodes.after[i] ?? r.oneNode.after)),
    "",
    `After the three settled (2 s later) they held ${afterTrio.map(formatCount).join(" + ")} = ${formatCount(afterTrio.reduce((a, b) => a + b, 0))} resting pollers. Passes over the identities: ${r.threeNodes.checks.map((check) => (check.missing === null ? "skipped (claimed by another node)" : `${formatCount(check.missing)} missing found in ${seconds(check.ms ?? Number.NaN)}`)).join("; ")}. The single node's check: ${r.oneNode.check.missing === null ? "skipped (this period's check was done)" : `ran, ${formatCount(r.oneNode.check.missing)} missing`}.`,
    "",
    "What a start costs: per shard it owns, one ordered consumer reads the shard's registry entries (no request per actor); a resting poller costs a cell, a subscription and a timer — no snapshot read, no fencing write, no XState actor — until its tick. A poller restored instead is one whose registry entry says it was awake when its node stopped.",
    ...backgroundLine([outcome]),
  ];
}
