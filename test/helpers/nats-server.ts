// A real nats-server with JetStream on a free loopback port, private to one test file.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startEmbeddedNats, type EmbeddedNats } from "../../runtime/embedded-nats-server.ts";

export interface TestNats {
  url: string;
  server: EmbeddedNats;
  dir: string;
  /** A client connection of the test's own (closed by stop()). */
  connect(): Promise<NatsConnection>;
  stop(): Promise<void>;
}

export async function startTestNats(): Promise<TestNats> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-test-nats-"));
  const server = await startEmbeddedNats({ dataDir: dir, port: 0 });
  const clients: NatsConnection[] = [];
  return {
    url: server.url,
    server,
    dir,
    async connect() {
      const nc = await connect({ servers: server.url });
      clients.push(nc);
      return nc;
    },
    async stop() {
      await Promise.all(clients.map((nc) => nc.close().catch(() => undefined)));
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
