// `npm run bench`: runs every scenario in its own process against its own fresh nats-server, then
// writes BENCHMARKS.md and prints the same report. BENCH_QUICK=1 for a small smoke run;
// BENCH_ONLY=orders,requests,activation to run a subset while working on one of them.
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { benchConfig } from "./bench-config.ts";
import { startBenchServer, type BenchServer } from "./bench-server.ts";
import { runChild } from "./child-protocol.ts";
import { cleanupAll, installSignalCleanup } from "./cleanup.ts";
import { startBackgroundMeter } from "./cpu-meter.ts";
import { interpret } from "./interpretation.ts";
import { machineInfo } from "./machine-info.ts";
import { renderReport, type BenchRun, type Outcome } from "./report.ts";
import type { FailoverResult, FailoverTask } from "./failover-scenario.ts";
import type { ActivationResult, ActivationTask, DispatchResult, DispatchTask, OrdersResult, OrdersTask, OrdersVariant, RequestsResult, RequestsTask, RequestsVariant } from "./results.ts";

const REPORT_PATH = fileURLToPath(new URL("../../BENCHMARKS.md", import.meta.url));
const SCENARIO_TIMEOUT_MS = 300_000;

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
async function scenario<R>(label: string, script: string, task: (server: BenchServer | null) => object, options: { nats: boolean; exposeGc?: boolean }): Promise<Outcome<R>> {
  await waitForQuiet();
  progress(`${label}…`);
  const started = Date.now();
  const background = startBackgroundMeter();
  const server = options.nats ? await startBenchServer() : null;
  let outcome: { label: string; ok: true; value: R } | { label: string; ok: false; error: string };
  try {
    const value = await runChild<R>(script, task(server), { timeoutMs: SCENARIO_TIMEOUT_MS, exposeGc: options.exposeGc ?? false });
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
  const only = new Set((process.env.BENCH_ONLY ?? "orders,requests,activation,failover").split(",").map((name) => name.trim()));
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
      const task = (server: BenchServer | null): OrdersTask => ({ url: needServer(server).url, serverPid: needServer(server).pid, variant, ...sizes, count });
      orders.push(await scenario<OrdersResult>(`orders/s, ${variant}`, "orders-scenario.ts", task, { nats: true }));
    }
    const task = (server: BenchServer | null): DispatchTask => ({ url: needServer(server).url, ...config.dispatch });
    dispatch = await scenario<DispatchResult>("per-order cost by layer", "dispatch-scenario.ts", task, { nats: true });
  }

  const requests: Outcome<RequestsResult>[] = [];
  if (only.has("requests")) {
    for (const variant of ["raw", "actor"] as RequestsVariant[]) {
      const task = (server: BenchServer | null): RequestsTask => ({ url: needServer(server).url, serverPid: needServer(server).pid, variant, ...config.requests });
      requests.push(await scenario<RequestsResult>(`request/reply, ${variant}`, "requests-scenario.ts", task, { nats: true }));
    }
  }

  const activation: Outcome<ActivationResult>[] = [];
  if (only.has("activation")) {
    const { small, large, snapshot, window } = config.activation;
    const populations: Omit<ActivationTask, "url" | "window">[] = [
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
      const task = (server: BenchServer | null): ActivationTask => ({ ...population, url: server?.url ?? null, window });
      activation.push(await scenario<ActivationResult>(label, "activation-scenario.ts", task, { nats: population.mode !== "machines" && population.mode !== "snapshots", exposeGc: true }));
    }
  }

  let failover: Outcome<FailoverResult> | null = null;
  if (only.has("failover")) {
    const task = (server: BenchServer | null): FailoverTask => ({ natsUrl: needServer(server).url, ...config.failover });
    failover = await scenario<FailoverResult>(`failover and rebalance, ${config.failover.actors} actors × ${config.failover.runs} runs`, "failover-scenario.ts", task, { nats: true });
  }

  const run: BenchRun = { machine, config, durationMs: Date.now() - started, backgroundCores: background(), orders, dispatch, requests, activation, failover };
  const report = renderReport(run, interpret);
  await writeFile(REPORT_PATH, report);
  process.stdout.write(report);
  progress(`report written to ${REPORT_PATH}`);
  return [...orders, ...(dispatch === null ? [] : [dispatch]), ...requests, ...activation, ...(failover === null ? [] : [failover])].every((outcome) => outcome.ok) ? 0 : 1;
}

main()
  .then((code) => (process.exitCode = code))
  .catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanupAll());
