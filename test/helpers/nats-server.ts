// A real nats-server with JetStream on a free loopback port, private to one test file.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type EmbeddedNats, type EmbeddedNatsOptions, startEmbeddedNats } from "../../runtime/embedded-nats-server.ts";
import { type NatsEndpoint, natsConnectOptions, natsEndpointEnv } from "../../runtime/nats-endpoint.ts";
import { freePort } from "../../scripts/local-servers/free-port.ts";

export interface TestNats {
  url: string;
  /** The URL and the credential the server requires (it admits no anonymous client). */
  endpoint: NatsEndpoint;
  /** NATS_URL, NATS_NKEY, … for a child process that connects to it. */
  env: Record<string, string>;
  server: EmbeddedNats;
  dir: string;
  /** The server's HTTP monitoring endpoint (connz, subsz, jsz). */
  monitorUrl: string;
  /** Every subscription on the server: subject and queue group, per connection name. */
  subscriptions(): Promise<ServerSubscription[]>;
  /** A client connection of the test's own (closed by stop()). */
  connect(): Promise<NatsConnection>;
  stop(): Promise<void>;
}

export interface ServerSubscription {
  connection: string;
  subject: string;
  queue: string | null;
}

/** `security` replaces the generated nkey (see EmbeddedNatsOptions): for tests of roles and TLS. */
export async function startTestNats(options: { security?: EmbeddedNatsOptions["security"] } = {}): Promise<TestNats> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-test-nats-"));
  const monitorPort = await freePort();
  const server = await startEmbeddedNats({
    dataDir: dir,
    port: 0,
    extraArgs: ["-m", String(monitorPort)],
    ...(options.security !== undefined && { security: options.security }),
  });
  const monitorUrl = `http://127.0.0.1:${monitorPort}`;
  const clients: NatsConnection[] = [];
  return {
    url: server.url,
    endpoint: server.endpoint,
    env: natsEndpointEnv(server.endpoint),
    server,
    dir,
    monitorUrl,
    async subscriptions() {
      const response = await fetch(`${monitorUrl}/connz?subs=detail&limit=1024`);
      const body = (await response.json()) as {
        connections: { name?: string; subscriptions_list_detail?: { subject: string; qgroup?: string }[] }[];
      };
      return body.connections.flatMap((connection) =>
        (connection.subscriptions_list_detail ?? []).map((sub) => ({ connection: connection.name ?? "", subject: sub.subject, queue: sub.qgroup ?? null })),
      );
    },
    async connect() {
      const nc = await connect(await natsConnectOptions(server.endpoint));
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
