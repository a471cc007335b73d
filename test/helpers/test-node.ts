// A real supervisor node in this process, on a test nats-server.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../runtime/logger.ts";
import { startNode, type RunningNode } from "../../supervisors/node.ts";
import type { NodeConfig } from "../../supervisors/node-config.ts";
import type { ServiceSet } from "../../supervisors/services.ts";

export async function startTestNode(natsUrl: string, services: ServiceSet, overrides: Partial<NodeConfig> = {}): Promise<RunningNode> {
  const config: NodeConfig = {
    natsUrl,
    natsPort: 0,
    dataDir: await mkdtemp(join(tmpdir(), "caliopen-test-node-")),
    namespace: "",
    nodeId: "test-node",
    shutdownGraceMs: 2_000,
    replicas: 1,
    logLevel: "silent",
    ...overrides,
  };
  return startNode(config, services, silentLogger());
}
