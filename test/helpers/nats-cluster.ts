// Three nats-servers with JetStream, clustered on loopback, secured as a production deployment would
// be: TLS on the client and route ports (mutual: clients show a certificate of the deployment's CA),
// and one nkey user per role with the permissions `caliopen nats-config` prints.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type EmbeddedNats, startEmbeddedNats } from "../../runtime/embedded-nats-server.ts";
import { type NatsEndpoint, natsConnectOptions, natsEndpointEnv } from "../../runtime/nats-endpoint.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { freePort } from "../../scripts/local-servers/free-port.ts";
import { makeTestCertificates, type TestCertificates } from "../../scripts/local-servers/tls-certs.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { authorizationBlock, type NatsRole, ROLES } from "../../supervisors/nats-roles.ts";
import { ensureRoleCredentials, roleEndpoint } from "../../supervisors/role-credentials.ts";

export interface TestNatsCluster {
  /** All three client URLs, comma-separated (what NATS_URL takes). */
  url: string;
  /** The node role's endpoint: every URL, the role's nkey, the CA and a client certificate. */
  endpoint: NatsEndpoint;
  /** NATS_URL, NATS_NKEY, NATS_CA, … of the node role, for a child process. */
  env: Record<string, string>;
  /** The endpoint of another role. */
  as(role: NatsRole): NatsEndpoint;
  certificates: TestCertificates;
  servers: EmbeddedNats[];
  stop(): Promise<void>;
}

export async function startTestNatsCluster(size = 3): Promise<TestNatsCluster> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-test-cluster-"));
  const certificates = await makeTestCertificates();
  const subjects = new Subjects("");
  const roles = await ensureRoleCredentials(join(dir, "credentials"), ROLES);
  const routePorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const tls = (verify: boolean) =>
    `tls {\n  cert_file: ${JSON.stringify(certificates.serverCert)}\n  key_file: ${JSON.stringify(certificates.serverKey)}\n  ca_file: ${JSON.stringify(certificates.ca)}\n  verify: ${verify}\n  timeout: 2\n}\n`;
  const config = (i: number) =>
    [
      `server_name: n${i}`,
      authorizationBlock(roles, subjects),
      tls(true),
      `cluster {`,
      `  name: caliopen-test`,
      `  listen: "127.0.0.1:${routePorts[i]}"`,
      `  routes: [${routePorts.map((port) => `"nats-route://127.0.0.1:${port}"`).join(", ")}]`,
      ...tls(true)
        .split("\n")
        .map((line) => `  ${line}`),
      `}`,
    ].join("\n");
  const client = { ca: certificates.ca, cert: certificates.clientCert, key: certificates.clientKey };
  const servers = await Promise.all(
    routePorts.map((_, i) => startEmbeddedNats({ dataDir: join(dir, `n${i}`), port: 0, security: { config: config(i), client, tls: true } })),
  );
  const url = servers.map((server) => server.url).join(",");
  const as = (role: NatsRole) => roleEndpoint(roles.find((credential) => credential.role === role)!, subjects, { url, ...client });
  const endpoint = as("node");
  // JetStream is usable once the cluster has elected its meta leader.
  const nc = await connect(await natsConnectOptions(endpoint));
  await waitFor(
    "JetStream cluster ready",
    async () => {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.getAccountInfo();
      return info !== undefined;
    },
    20_000,
    200,
  );
  await nc.close();
  return {
    url,
    endpoint,
    env: natsEndpointEnv(endpoint),
    as,
    certificates,
    servers,
    async stop() {
      await Promise.all(servers.map((server) => server.stop()));
      await rm(dir, { recursive: true, force: true });
      await certificates.remove();
    },
  };
}
