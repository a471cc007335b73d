// `npm run bench`: runs every scenario in its own process against its own fresh nats-server, then
// writes BENCHMARKS.md and prints the same report. BENCH_QUICK=1 for a small smoke run;
// BENCH_ONLY=orders,requests,activation,failover,imap,smtp,push,tls,scale,notify to run a subset while working on one of
// them: the report keeps the other groups' parts from BENCHMARKS.json, where every run saves its parts.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { benchConfig } from "./bench-config.ts";
import { BENCH_SECURITIES, type BenchSecurity } from "./bench-security.ts";
import { type BenchServer, startBenchServer } from "./bench-server.ts";
import { runChild } from "./child-protocol.ts";
import { cleanupAll, installSignalCleanup } from "./cleanup.ts";
import { startBackgroundMeter } from "./cpu-meter.ts";
import type { FailoverResult, FailoverTask } from "./failover-scenario.ts";
import { interpretParts, interpretRun } from "./interpretation.ts";
import { type LiveAccountsResult, type LiveAccountsTask, liveAccountsConfig } from "./live-accounts-results.ts";
import { machineInfo } from "./machine-info.ts";
import type { NotifyResult, NotifyTask } from "./notify-results.ts";
import type { PagingResult, PagingTask } from "./paging-results.ts";
import { type BenchRun, composeReport, type Outcome, PART_NAMES, type PartName, type ReportPart, renderParts, type SecuredOutcome } from "./report.ts";
import type {
  ActivationResult,
  ActivationTask,
  DispatchResult,
  DispatchTask,
  ImapResult,
  ImapTask,
  OrdersResult,
  OrdersTask,
  OrdersVariant,
  PushResult,
  PushTask,
  RequestsResult,
  RequestsTask,
  RequestsVariant,
  SmtpResult,
  SmtpTask,
} from "./results.ts";
import type { ColdStartResult, ColdStartTask } from "./scale-results.ts";

const REPORT_PATH = fileURLToPath(new URL("../../BENCHMARKS.md", import.meta.url));
/** Every part of the report as last measured, so that a partial run keeps the parts it did not re-run. */
const PARTS_PATH = fileURLToPath(new URL("../../BENCHMARKS.json", import.meta.url));
const SCENARIO_TIMEOUT_MS = 300_000;
/** The full IMAP scenario fills a mailbox, runs mbsync twice and imports 10,000 messages. */
const MAIL_TIMEOUT_MS = 1_200_000;
/** The cold start's longest phase: giving 100,000 identities their pollers, then their passivation. */
const COLD_START_PHASE_MS = 600_000;
/** Live accounts: setup, ramp, steady stream, failover, join and drain, with room for a slow machine. */
const LIVE_ACCOUNTS_TIMEOUT_MS = 40 * 60_000;

const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);

const QUIET_CORES = 0.15;
const QUIET_WAIT_MS = 60_000;

/** On a shared machine, waits (up to a minute) for a second in which other processes stay almost idle. */
async function waitForQuiet(): Promise<void> {
  const deadline = Date.now() + QUIET_WAIT_MS;
  for (;;) {
    const meter = startBackgroundMeter();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const busy = meter();
    if (busy < QUIET_CORES) return;
    if (Date.now() > deadline) {
      progress(`other processes still keep ${busy.toFixed(2)} cores busy: running anyway`);
      return;
    }
    progress(`waiting for other processes to quiet down (${busy.toFixed(2)} cores busy)…`);
  }
}

/** Runs one scenario process against a nats-server of its own; a failure is recorded, not thrown. */
async function scenario<R>(
  label: string,
  script: string,
  task: (server: BenchServer | null) => object,
  options: { nats: boolean; exposeGc?: boolean; timeoutMs?: number; security?: BenchSecurity },
): Promise<Outcome<R>> {
  await waitForQuiet();
  progress(`${label}…`);
  const started = Date.now();
  const background = startBackgroundMeter();
  const server = options.nats ? await startBenchServer(options.security) : null;
  let outcome: { label: string; ok: true; value: R } | { label: string; ok: false; error: string };
  try {
    const value = await runChild<R>(script, task(server), { timeoutMs: options.timeoutMs ?? SCENARIO_TIMEOUT_MS, exposeGc: options.exposeGc ?? false });
    progress(`${label}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    outcome = { label, ok: true, value };
  } catch (err) {
    const error = (err as Error).message;
    progress(`${label}: FAILED: ${error}`);
    outcome = { label, ok: false, error };
  } finally {
    await server?.stop();
  }
  // Measured once the scenario's processes (and server) have exited, so their CPU counts as ours.
  return { ...outcome, backgroundCores: background() };
}

const needServer = (server: BenchServer | null): BenchServer => {
  if (server === null) throw new Error("this scenario needs a nats-server");
  return server;
};

async function main(): Promise<number> {
  installSignalCleanup();
  const config = benchConfig();
  const only = new Set(
    (process.env.BENCH_ONLY ?? PART_NAMES.join(","))
      .split(",")
      .map((name) => name.trim())
      .filter((name) => name !== ""),
  );
  const unknown = [...only].filter((name) => !(PART_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: unknown scenario(s) ${unknown.join(", ")}; known: ${PART_NAMES.join(", ")}`);
  const started = Date.now();
  const background = startBackgroundMeter();
  const machine = machineInfo();
  progress(`${config.quick ? "quick" : "full"} run on ${machine.cpuCount} cpus, node ${machine.node}, nats-server ${machine.natsServer}`);

  const orders: Outcome<OrdersResult>[] = [];
  let dispatch: Outcome<DispatchResult> | null = null;
  if (only.has("orders")) {
    for (const variant of ["raw", "raw-durable", "entry", "actor-none", "actor-snapshot"] as OrdersVariant[]) {
      const { durableCount, ...sizes } = config.orders;
      // Everything that goes through JetStream is two orders of magnitude slower: fewer orders per round.
      const count = variant === "raw" ? sizes.count : durableCount;
      const task = (server: BenchServer | null): OrdersTask => ({
        endpoint: needServer(server).endpoint,
        serverPid: needServer(server).pid,
        variant,
        ...sizes,
        count,
        observeLiveness: variant === "actor-none" || variant === "actor-snapshot",
      });
      orders.push(await scenario<OrdersResult>(`orders/s, ${variant}`, "orders-scenario.ts", task, { nats: true }));
    }
    const task = (server: BenchServer | null): DispatchTask => ({ endpoint: needServer(server).endpoint, ...config.dispatch });
    dispatch = await scenario<DispatchResult>("per-order cost by layer", "dispatch-scenario.ts", task, { nats: true });
  }

  const requests: Outcome<RequestsResult>[] = [];
  if (only.has("requests")) {
    for (const variant of ["raw", "entry", "actor", "moleculer"] as RequestsVariant[]) {
      const task = (server: BenchServer | null): RequestsTask => ({
        endpoint: needServer(server).endpoint,
        serverPid: needServer(server).pid,
        variant,
        ...config.requests,
      });
      requests.push(await scenario<RequestsResult>(`request/reply, ${variant}`, "requests-scenario.ts", task, { nats: true }));
    }
  }

  const activation: Outcome<ActivationResult>[] = [];
  if (only.has("activation")) {
    const { small, large, snapshot, window } = config.activation;
    const populations: Omit<ActivationTask, "endpoint" | "window">[] = [
      { mode: "subscriptions", persistence: "none", count: small },
      { mode: "machines", persistence: "none", count: small },
      { mode: "actors", persistence: "none", count: small },
      { mode: "subscriptions", persistence: "none", count: large },
      { mode: "machines", persistence: "none", count: large },
      { mode: "actors", persistence: "none", count: large },
      { mode: "passivated", persistence: "none", count: large },
      { mode: "snapshots", persistence: "none", count: large },
      { mode: "actors", persistence: "snapshot", count: snapshot },
    ];
    for (const population of populations) {
      const label = `activation, ${population.mode} ${population.mode === "actors" ? `(${population.persistence}) ` : ""}× ${population.count}`;
      const task = (server: BenchServer | null): ActivationTask => ({ ...population, endpoint: server?.endpoint ?? null, window });
      activation.push(
        await scenario<ActivationResult>(label, "activation-scenario.ts", task, {
          nats: population.mode !== "machines" && population.mode !== "snapshots",
          exposeGc: true,
        }),
      );
    }
  }

  let failover: Outcome<FailoverResult> | null = null;
  if (only.has("failover")) {
    const task = (server: BenchServer | null): FailoverTask => ({ endpoint: needServer(server).endpoint, ...config.failover });
    failover = await scenario<FailoverResult>(
      `failover and rebalance, ${config.failover.actors} actors × ${config.failover.runs} runs`,
      "failover-scenario.ts",
      task,
      { nats: true },
    );
  }

  const { mail } = config;
  let imap: Outcome<ImapResult> | null = null;
  if (only.has("imap")) {
    const task = (server: BenchServer | null): ImapTask => ({
      endpoint: needServer(server).endpoint,
      serverPid: needServer(server).pid,
      messages: mail.imapMessages,
      appendSample: mail.appendSample,
    });
    imap = await scenario<ImapResult>(`IMAP fullfetch vs mbsync, ${mail.imapMessages} messages`, "imap-scenario.ts", task, {
      nats: true,
      exposeGc: true,
      timeoutMs: MAIL_TIMEOUT_MS,
    });
  }
  let smtp: Outcome<SmtpResult> | null = null;
  if (only.has("smtp")) {
    const task = (server: BenchServer | null): SmtpTask => ({
      endpoint: needServer(server).endpoint,
      serverPid: needServer(server).pid,
      messages: mail.smtpMessages,
      sessions: mail.smtpSessions,
      size: mail.smtpSize,
    });
    smtp = await scenario<SmtpResult>(`inbound SMTP vs a bare smtp-server, ${mail.smtpMessages} messages`, "smtp-scenario.ts", task, {
      nats: true,
      timeoutMs: MAIL_TIMEOUT_MS,
    });
  }
  let push: Outcome<PushResult> | null = null;
  if (only.has("push")) {
    const task = (server: BenchServer | null): PushTask => ({
      endpoint: needServer(server).endpoint,
      serverPid: needServer(server).pid,
      appends: mail.pushAppends,
      spacingMs: mail.pushSpacingMs,
    });
    push = await scenario<PushResult>(`push latency vs a raw IDLE client, ${mail.pushAppends} APPENDs`, "push-scenario.ts", task, {
      nats: true,
      timeoutMs: MAIL_TIMEOUT_MS,
    });
  }

  // Each scenario against every kind of server in a row, so that a change of load on the machine moves
  // the figures of all of them rather than one.
  const tls: SecuredOutcome[] = [];
  if (only.has("tls")) {
    for (const variant of ["raw", "actor"] as RequestsVariant[]) {
      for (const security of BENCH_SECURITIES) {
        const task = (server: BenchServer | null): RequestsTask => ({
          endpoint: needServer(server).endpoint,
          serverPid: needServer(server).pid,
          variant,
          ...config.tls.requests,
        });
        tls.push({
          security,
          kind: "requests",
          outcome: await scenario<RequestsResult>(`request/reply, ${variant}, ${security}`, "requests-scenario.ts", task, { nats: true, security }),
        });
      }
    }
    for (const variant of ["raw", "actor-none"] as OrdersVariant[]) {
      const { durableCount, ...sizes } = config.tls.orders;
      const count = variant === "raw" ? sizes.count : durableCount;
      for (const security of BENCH_SECURITIES) {
        const task = (server: BenchServer | null): OrdersTask => ({
          endpoint: needServer(server).endpoint,
          serverPid: needServer(server).pid,
          variant,
          ...sizes,
          count,
        });
        tls.push({
          security,
          kind: "orders",
          outcome: await scenario<OrdersResult>(`orders/s, ${variant}, ${security}`, "orders-scenario.ts", task, { nats: true, security }),
        });
      }
    }
  }

  let notify: Outcome<NotifyResult> | null = null;
  if (only.has("notify")) {
    const task = (server: BenchServer | null): NotifyTask => ({
      endpoint: needServer(server).endpoint,
      mails: mail.pushAppends,
      spacingMs: mail.pushSpacingMs,
    });
    notify = await scenario<NotifyResult>(`notification latency, ${mail.pushAppends} mails over SMTP`, "notify-scenario.ts", task, { nats: true });
  }

  let coldStart: Outcome<ColdStartResult> | null = null;
  let paging: Outcome<PagingResult> | null = null;
  let live: Outcome<LiveAccountsResult> | null = null;
  if (only.has("scale")) {
    const task = (server: BenchServer | null): ColdStartTask => ({
      endpoint: needServer(server).endpoint,
      identities: config.scale.identities,
      timeoutMs: COLD_START_PHASE_MS,
    });
    coldStart = await scenario<ColdStartResult>(`cold start, ${config.scale.identities} identities`, "cold-start-scenario.ts", task, {
      nats: true,
      timeoutMs: MAIL_TIMEOUT_MS,
    });
    const pagingTask = (server: BenchServer | null): PagingTask => ({
      endpoint: needServer(server).endpoint,
      serverPid: needServer(server).pid,
      sizes: config.scale.pagingSizes,
      calls: config.scale.pagingCalls,
    });
    paging = await scenario<PagingResult>(`pages at ${config.scale.pagingSizes.join(" and ")} messages`, "paging-scenario.ts", pagingTask, {
      nats: true,
      timeoutMs: MAIL_TIMEOUT_MS,
    });
    const liveTask = (server: BenchServer | null): LiveAccountsTask => ({
      ...liveAccountsConfig(),
      endpoint: needServer(server).endpoint,
      serverPid: needServer(server).pid,
    });
    live = await scenario<LiveAccountsResult>(`live accounts, ${liveAccountsConfig().accounts}`, "live-accounts-scenario.ts", liveTask, {
      nats: true,
      timeoutMs: LIVE_ACCOUNTS_TIMEOUT_MS,
    });
  }

  const run: BenchRun = {
    machine,
    config,
    durationMs: Date.now() - started,
    backgroundCores: background(),
    orders,
    dispatch,
    requests,
    activation,
    failover,
    imap,
    smtp,
    push,
    tls,
    scale: { coldStart, paging, live },
    notify,
  };
  const fresh = renderParts(run, only as Set<PartName>, interpretParts);
  const parts = [...(await previousParts()).filter((part) => !only.has(part.name)), ...fresh];
  const command = `${config.quick ? "BENCH_QUICK=1 " : ""}${process.env.BENCH_ONLY === undefined ? "" : `BENCH_ONLY=${[...only].join(",")} `}npm run bench`;
  const report = composeReport(run, parts, interpretRun(run), command);
  await writeFile(REPORT_PATH, report);
  await writeFile(
    PARTS_PATH,
    `${JSON.stringify({ note: "The parts of BENCHMARKS.md as last measured, written by scripts/bench/run-benchmarks.ts.", parts }, null, 1)}\n`,
  );
  process.stdout.write(report);
  progress(`report written to ${REPORT_PATH}`);
  const outcomes = [
    ...orders,
    ...(dispatch === null ? [] : [dispatch]),
    ...requests,
    ...activation,
    ...[failover, imap, smtp, push].filter((outcome) => outcome !== null),
    ...tls.map((entry) => entry.outcome),
    ...[coldStart, paging, live].filter((outcome) => outcome !== null),
  ];
  return outcomes.every((outcome) => outcome.ok) ? 0 : 1;
}

/** The parts saved by the previous run (none when there is no BENCHMARKS.json yet). */
async function previousParts(): Promise<ReportPart[]> {
  let text: string;
  try {
    text = await readFile(PARTS_PATH, "utf8");
  } catch {
    return [];
  }
  const saved = JSON.parse(text) as { parts?: ReportPart[] };
  return (saved.parts ?? []).filter((part) => (PART_NAMES as readonly string[]).includes(part.name));
}

main()
  .then((code) => (process.exitCode = code))
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
