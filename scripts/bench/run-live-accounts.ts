// `npx tsx scripts/bench/run-live-accounts.ts`: the live-accounts scenario alone, on a nats-server of its own,
// printing its report section and verdicts. BENCH_QUICK=1 runs 200 accounts, BENCH_LIVE_ACCOUNTS=<n> any
// number; BENCH_LIVE_RAMP_PER_SECOND the pace of add_identity (20/s); BENCH_LIVE_FAILURE_DETECTION_MS the
// nodes' failure detection (their default otherwise); BENCH_LIVE_JSON=<file> keeps the raw result.
import { writeFile } from "node:fs/promises";
import type { Outcome } from "./bench-run.ts";
import { startBenchServer } from "./bench-server.ts";
import { runChild } from "./child-protocol.ts";
import { cleanupAll, installSignalCleanup } from "./cleanup.ts";
import { startBackgroundMeter } from "./cpu-meter.ts";
import { type LiveAccountsResult, type LiveAccountsTask, liveAccountsConfig } from "./live-accounts-results.ts";
import { liveAccountsSection, liveAccountsVerdicts } from "./report-live-accounts.ts";

/** Setup, ramp, steady stream, failover, join and drain, with room for a slow machine. */
const TIMEOUT_MS = 40 * 60_000;

installSignalCleanup();
const config = liveAccountsConfig();
const label = `live accounts, ${config.accounts}`;
process.stderr.write(`bench: ${label}…\n`);
const background = startBackgroundMeter();
const server = await startBenchServer();
let outcome: Outcome<LiveAccountsResult>;
try {
  const task: LiveAccountsTask = { ...config, endpoint: server.endpoint, serverPid: server.pid };
  const value = await runChild<LiveAccountsResult>("live-accounts-scenario.ts", task, { timeoutMs: TIMEOUT_MS });
  outcome = { label, ok: true, value, backgroundCores: background() };
  const keep = process.env.BENCH_LIVE_JSON;
  if (keep !== undefined && keep !== "") await writeFile(keep, JSON.stringify(value, null, 2));
} catch (err) {
  outcome = { label, ok: false, error: (err as Error).message, backgroundCores: background() };
} finally {
  await server.stop();
}
process.stdout.write(`${liveAccountsSection(outcome).join("\n")}\n\n`);
for (const verdict of liveAccountsVerdicts(outcome)) process.stdout.write(`- ${verdict.met ? "✅" : "❌"} ${verdict.target}: ${verdict.measured}\n`);
await cleanupAll();
process.exit(outcome.ok ? 0 : 1);
