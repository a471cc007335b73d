// Section 8 of the report: the request and orders scenarios against servers secured three ways (plain,
// mutual TLS, TLS with the node role), as figures and as ratios between them.
import type { BenchRun } from "./bench-run.ts";
import { BENCH_SECURITIES, type BenchSecurity } from "./bench-security.ts";
import { keyFigures, type OrdersFigures, type RequestFigures } from "./figures.ts";
import type { IoCounters } from "./io-meter.ts";
import { backgroundLine, failures, warningLines } from "./report-format.ts";
import { formatBytes, formatCount, formatMicros, formatMs, formatRatio } from "./stats.ts";

const SECURITY_LABELS: Record<BenchSecurity, string> = {
  plain: "plain: nkey, no TLS",
  tls: "TLS (mutual) + nkey",
  "tls-role": "**TLS (mutual) + node role**",
};

/** The ratios section 8 shows: TLS itself, TLS with the node role (the figure), and the role's share. */
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
export function tlsSection(run: BenchRun): string[] {
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
