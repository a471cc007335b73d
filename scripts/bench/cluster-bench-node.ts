// A supervisor node process for the failover benchmark: bench actors keyed by remote_id, added by
// add_worker on imap_worker and fed `sync` on IMAPfetcher, with snapshots on (what failover carries over).

import { routeToActor } from "../../runtime/cluster/actor-router.ts";
import { createLogger } from "../../runtime/logger.ts";
import { startNode } from "../../supervisors/node.ts";
import { nodeConfigFromEnv } from "../../supervisors/node-config.ts";
import { workerLifecycle } from "../../supervisors/services.ts";
import { BENCH_KIND, benchFamily } from "./bench-family.ts";

const node = await startNode(
  nodeConfigFromEnv(),
  {
    families: [benchFamily({ persistence: "snapshot" })],
    bindings: (context) => ({
      imap_worker: workerLifecycle(BENCH_KIND, context),
      IMAPfetcher: { sync: routeToActor(context, { kind: BENCH_KIND, keyField: "remote_id" }) },
    }),
  },
  createLogger({ level: process.env.LOG_LEVEL ?? "warn" }),
);
process.stdout.write("ready\n");
process.on("SIGTERM", () => void node.shutdown("SIGTERM").then(() => process.exit(0)));
