// How a bench nats-server is secured, for section 8 to compare in one run:
//   plain               what every other scenario runs on: the embedded server's default, one nkey
//                       user allowed everything, no TLS (runtime/embedded-nats-server.ts)
//   tls                 the same nkey, plus TLS on the client port with clients verified against the
//                       CA (mutual TLS): what TLS itself costs
//   tls-role            TLS, and the node role's nkey and subject permissions (supervisors/nats-roles.ts)
//                       as `caliopen nats-config` prints them: a production deployment, as the test
//                       cluster (test/helpers/nats-cluster.ts) runs it
import { join } from "node:path";
import { ensureEmbeddedCredentials } from "../../runtime/embedded-nats-credentials.ts";
import type { EmbeddedNatsOptions } from "../../runtime/embedded-nats-server.ts";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { authorizationBlock } from "../../supervisors/nats-roles.ts";
import { ensureRoleCredentials, roleEndpoint } from "../../supervisors/role-credentials.ts";
import { makeTestCertificates, type TestCertificates } from "../local-servers/tls-certs.ts";

export const BENCH_SECURITIES = ["plain", "tls", "tls-role"] as const;
export type BenchSecurity = (typeof BENCH_SECURITIES)[number];

export interface ServerSecurity {
  /** What startEmbeddedNats needs; undefined for its default (plain). */
  options: EmbeddedNatsOptions["security"];
  /** A client's endpoint on the started server, given the server's. */
  endpoint(server: NatsEndpoint): NatsEndpoint;
  /** Deletes the certificates (the credentials live in the server's data directory). */
  remove(): Promise<void>;
}

/** The configuration of a server secured as `security` says, with its credentials under `dir`. */
export async function serverSecurity(security: BenchSecurity, dir: string): Promise<ServerSecurity> {
  if (security === "plain") return { options: undefined, endpoint: (server) => server, remove: async () => undefined };
  const certificates = await makeTestCertificates();
  const files = { ca: certificates.ca, cert: certificates.clientCert, key: certificates.clientKey };
  const remove = () => certificates.remove();
  if (security === "tls") {
    // The embedded server's own kind of user, with TLS added: only TLS differs from plain.
    const own = await ensureEmbeddedCredentials(dir);
    const config = `authorization {\n  users = [\n    { nkey: ${JSON.stringify(own.publicKey)} }\n  ]\n}\n${tlsBlock(certificates)}`;
    return { options: { config, client: { nkey: own.seedFile, ...files }, tls: true }, endpoint: (server) => server, remove };
  }
  const subjects = new Subjects("");
  const [node] = await ensureRoleCredentials(join(dir, "credentials"), ["node"]);
  if (node === undefined) throw new Error("no node credential was made");
  const authorization = authorizationBlock([node], subjects);
  return {
    options: { config: `${authorization}${tlsBlock(certificates)}`, client: { nkey: node.seedFile, ...files }, tls: true },
    endpoint: (server) => roleEndpoint(node, subjects, server),
    remove,
  };
}

/** TLS on the client port; `verify` makes every client show a certificate of the CA. */
function tlsBlock(certificates: TestCertificates): string {
  return [
    "tls {",
    `  cert_file: ${JSON.stringify(certificates.serverCert)}`,
    `  key_file: ${JSON.stringify(certificates.serverKey)}`,
    `  ca_file: ${JSON.stringify(certificates.ca)}`,
    "  verify: true",
    "  timeout: 2",
    "}",
    "",
  ].join("\n");
}
