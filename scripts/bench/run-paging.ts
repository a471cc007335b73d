// `npx tsx scripts/bench/run-paging.ts [calls] [sizes, e.g. 10,100000]`: the paging scenario alone, against a bench nats-server
// of its own, printing its report section and verdicts.
import { startBenchServer } from "./bench-server.ts";
import { runChild } from "./child-protocol.ts";
import { installSignalCleanup } from "./cleanup.ts";
import { startBackgroundMeter } from "./cpu-meter.ts";
import type { PagingResult, PagingTask } from "./paging-results.ts";
import { backgroundLine } from "./report-format.ts";
import { pagingSection, pagingVerdicts } from "./report-paging.ts";

const DEFAULT_SIZES = [10, 100_000];
const TIMEOUT_MS = 30 * 60_000;

installSignalCleanup();
const calls = Number(process.argv[2] ?? 200);
const sizes = process.argv[3]?.split(",").map(Number) ?? DEFAULT_SIZES;
const server = await startBenchServer();
try {
  const task: PagingTask = { endpoint: server.endpoint, serverPid: server.pid, sizes, calls };
  const background = startBackgroundMeter();
  const value = await runChild<PagingResult>("paging-scenario.ts", task, { timeoutMs: TIMEOUT_MS });
  const outcome = { label: "paging", ok: true as const, value, backgroundCores: background() };
  const lines = [
    ...pagingSection(outcome),
    ...backgroundLine([outcome]),
    "",
    ...pagingVerdicts(outcome).map((v) => `- ${v.met ? "✅" : "❌"} ${v.target}: ${v.measured}`),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  process.stdout.write(`\nBENCH_PAGING_JSON ${JSON.stringify(value)}\n`);
} finally {
  await server.stop();
}
