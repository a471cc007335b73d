// A supervisor node process for the cold-start benchmark: the identities worker alone (one poller
// per remote identity, on the store), with the bridges' orders the pollers emit (add_worker, sync)
// taken and counted instead of run: what is timed is the node getting its pollers scheduled, not the
// bridges. It prints `ready {json}` once startNode resolved (its shards resumed, orders taken), then
// the outcome of its poller check, then its actors' states whenever asked on stdin.
import { createInterface } from "node:readline";
import { pollerFamily } from "../../actors/identities/poller.ts";
import { openStore } from "../../actors/store/store.ts";
import { createLogger } from "../../runtime/logger.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { identitiesWorkerOrders } from "../../supervisors/identities-worker.ts";
import { startNode } from "../../supervisors/node.ts";
import { nodeConfigFromEnv } from "../../supervisors/node-config.ts";
import { PollerCheck } from "../../supervisors/poller-check.ts";

const began = performance.now();
const config = nodeConfigFromEnv();
const checkEveryMs = Number(process.env.BENCH_POLLER_CHECK_EVERY_MS ?? 6 * 60 * 60_000);
const logger = createLogger({ level: process.env.LOG_LEVEL ?? "warn" });
const bridgeOrders = { add_worker: 0, sync: 0 };
const counted = (order: keyof typeof bridgeOrders) => async () => {
  bridgeOrders[order] += 1;
  return undefined;
};

const node = await startNode(
  config,
  async (deps) => {
    const store = await openStore({ nc: deps.nc, subjects: new Subjects(""), secrets: null });
    return {
      families: [pollerFamily(store)],
      bindings: (context) => ({
        identitiesWorker: identitiesWorkerOrders(context, store),
        imap_worker: { add_worker: counted("add_worker"), reload_worker: counted("add_worker"), remove_worker: counted("add_worker") },
        IMAPfetcher: { sync: counted("sync") },
      }),
      async start(context) {
        const check = new PollerCheck(store, context, logger, checkEveryMs);
        const checkBegan = performance.now();
        void check.checkIfClaimed().then(
          (missing) => process.stdout.write(`check ${JSON.stringify({ missing, ms: performance.now() - checkBegan })}\n`),
          (err: Error) => process.stdout.write(`check ${JSON.stringify({ error: err.message })}\n`),
        );
      },
    };
  },
  logger,
);

function states(): Record<string, number> {
  const counts: Record<string, number> = { resting: 0, passivated: 0, running: 0, crashed: 0 };
  for (const cell of node.host.list()) {
    const state = cell.resting ? "resting" : cell.passivated ? "passivated" : cell.status === "crashed" ? "crashed" : "running";
    counts[state] = (counts[state] ?? 0) + 1;
  }
  return counts;
}

/** After full collections (the process runs with --expose-gc), so that garbage is not counted as held. */
const memory = () => {
  globalThis.gc?.();
  globalThis.gc?.();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
};

// No memory here: a forced full GC of a heap of 100,000 actors stalls the loop long enough for the node
// to miss its heartbeat, which would move shards while the other nodes start. Memory is read on "states".
process.stdout.write(`ready ${JSON.stringify({ startMs: performance.now() - began, actors: states() })}\n`);
createInterface({ input: process.stdin }).on("line", () =>
  process.stdout.write(`states ${JSON.stringify({ actors: states(), bridgeOrders, memory: memory() })}\n`),
);
process.on("SIGTERM", () => void node.shutdown("SIGTERM").then(() => process.exit(0)));
