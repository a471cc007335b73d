// A supervisor node as its own process. Started by the multi-process tests with NATS_URL,
// CALIOPEN_NODE_ID and CALIOPEN_SHARDS; prints "ready" once it runs. It runs the cluster test services
// (counter actors), or with CALIOPEN_TEST_SERVICES=caliopen the real Caliopen services, configured from
// the environment as `npm start` is (the test gives every node the same secret key).
import { createLogger } from "../../runtime/logger.ts";
import { caliopenConfigFromEnv } from "../../supervisors/caliopen-config.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import { startNode } from "../../supervisors/node.ts";
import { nodeConfigFromEnv } from "../../supervisors/node-config.ts";
import { clusterTestServices } from "./cluster-services.ts";

const config = nodeConfigFromEnv();
const logger = createLogger({ level: process.env.LOG_LEVEL ?? "warn" });
const services =
  process.env.CALIOPEN_TEST_SERVICES === "caliopen" ? caliopenServices(caliopenConfigFromEnv(process.env, config.dataDir, logger)) : clusterTestServices();
const node = await startNode(config, services, logger);
process.stdout.write("ready\n");
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  node.shutdown("SIGTERM").then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
