// Three nats-servers with JetStream, clustered on loopback, as a production deployment would run.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startEmbeddedNats, type EmbeddedNats } from "../../runtime/embedded-nats-server.ts";
import { freePort } from "./nats-server.ts";
import { waitFor } from "./wait.ts";

export interface TestNatsCluster {
  /** All three client URLs, comma-separated (what NATS_URL takes). */
  url: string;
  servers: EmbeddedNats[];
  stop(): Promise<void>;
}

export async function startTestNatsCluster(size = 3): Promise<TestNatsCluster> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-test-cluster-"));
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = routePorts.map((port) => `nats-route://127.0.0.1:${port}`).join(",");
  const servers = await Promise.all(
    routePorts.map((routePort, i) =>
      startEmbeddedNats({
        dataDir: join(dir, `n${i}`),
        port: 0,
        extraArgs: ["--server_name", `n${i}`, "--cluster_name", "caliopen-test", "--cluster", `nats://127.0.0.1:${routePort}`, "--routes", routes],
      }),
    ),
  );
  const url = servers.map((server) => server.url).join(",");
  // JetStream is usable once the cluster has elected its meta leader.
  const nc = await connect({ servers: url.split(",") });
  await waitFor("JetStream cluster ready", async () => {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.getAccountInfo();
    return info !== undefined;
  }, 20_000, 200);
  await nc.close();
  return {
    url,
    servers,
    async stop() {
      await Promise.all(servers.map((server) => server.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
