// Composes BENCHMARKS.md (also printed to stdout) from one bench run: each scenario group's part (its rows
// of the targets table, its section, its reading), then the whole report under the run's header.
import type { BenchRun } from "./bench-run.ts";
import { mark, type Verdict } from "./report-format.ts";
import { imapSection, pushSection, smtpSection } from "./report-mail.ts";
import { notifySection } from "./report-notify.ts";
import { activationSection, failoverSection, ordersSection, requestsSection } from "./report-runtime.ts";
import { scaleSection } from "./report-scale.ts";
import { tlsSection } from "./report-tls.ts";
import { formatBytes } from "./stats.ts";

// The run's shape and the targets live below the sections, which read them; importers keep finding them here.
export type { BenchRun, Outcome, SecuredOutcome } from "./bench-run.ts";
export { IMPORT_HEAP_BOUND, TARGETS } from "./bench-targets.ts";

/** The scenario groups the report is made of, in the order they appear; BENCH_ONLY names them. */
export const PART_NAMES = ["orders", "requests", "activation", "failover", "imap", "smtp", "push", "tls", "scale", "notify"] as const;
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
    scale: (verdicts) => scaleSection(run, verdicts),
    notify: (verdicts) => notifySection(run, verdicts),
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
