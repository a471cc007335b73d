// A supervisor node as its own process, running the cluster test services. Started by the multi-process
// tests with NATS_URL, CALIOPEN_NODE_ID and CALIOPEN_SHARDS; prints "ready" once it runs.
import { createLogger } from "../../runtime/logger.ts";
import { startNode } from "../../supervisors/node.ts";
import { nodeConfigFromEnv } from "../../supervisors/node-config.ts";
import { clusterTestServices } from "./cluster-services.ts";

const config = nodeConfigFromEnv();
const logger = createLogger({ level: process.env.LOG_LEVEL ?? "warn" });
const node = await startNode(config, clusterTestServices(), logger);
process.stdout.write("ready\n");
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  node.shutdown("SIGTERM").then(() => process.exit(0), () => process.exit(1));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
