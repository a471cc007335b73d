// Runs the cold-start scenario alone (BENCH_IDENTITIES, default 10,000) and prints its figures: for
// working on it without a whole `npm run bench`.
import { startBenchServer } from "./bench-server.ts";
import { runChild } from "./child-protocol.ts";
import { cleanupAll, installSignalCleanup } from "./cleanup.ts";
import type { ColdStartResult, ColdStartTask } from "./scale-results.ts";

installSignalCleanup();
const server = await startBenchServer();
try {
  const task: ColdStartTask = { endpoint: server.endpoint, identities: Number(process.env.BENCH_IDENTITIES ?? 10_000), timeoutMs: 600_000 };
  const result = await runChild<ColdStartResult>("cold-start-scenario.ts", task, { timeoutMs: 1_800_000 });
  process.stdout.write(`${JSON.stringify(result, null, 1)}\n`);
} finally {
  await server.stop();
  await cleanupAll();
}
