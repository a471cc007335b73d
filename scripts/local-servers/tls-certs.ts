// A private certificate authority for tests, made with the openssl command: a server certificate for
// the loopback address (nats-server client and route ports, the test mail servers) and a client
// certificate (mutual TLS); and certificates a client must refuse: a self-signed one, and one of the CA
// that names only `mail.provider.test` (valid for that name, not for the loopback address).
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The only name `namedCert` is valid for (tests resolve it to the loopback address themselves). */
export const PROVIDER_NAME = "mail.provider.test";

export interface TestCertificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** Another CA's client certificate: well formed, but not one the servers trust. */
  strangerCert: string;
  strangerKey: string;
  /** A self-signed server certificate for 127.0.0.1 and localhost. */
  selfSignedCert: string;
  selfSignedKey: string;
  /** A server certificate of the CA naming only `mail.provider.test` (PROVIDER_NAME). */
  namedCert: string;
  namedKey: string;
  /** The CA certificate's PEM text. */
  caPem(): Promise<string>;
  remove(): Promise<void>;
}

export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-test-tls-"));
  const path = (name: string) => join(dir, name);
  await authority(dir, "ca", "caliopen test CA");
  await authority(dir, "stranger-ca", "someone else's CA");
  await writeFile(path("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  await writeFile(path("client.ext"), "extendedKeyUsage=clientAuth\n");
  // Route connections present the server certificate as a client too, hence both usages above.
  await issue(dir, "ca", "server", "127.0.0.1", "server.ext");
  await issue(dir, "ca", "client", "caliopen node", "client.ext");
  await issue(dir, "stranger-ca", "stranger", "caliopen node", "client.ext");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=127.0.0.1",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout",
    path("self-signed-key.pem"),
    "-out",
    path("self-signed.pem"),
  ]);
  await writeFile(path("named.ext"), `subjectAltName=DNS:${PROVIDER_NAME}\nextendedKeyUsage=serverAuth\n`);
  await issue(dir, "ca", "named", PROVIDER_NAME, "named.ext");
  return {
    dir,
    ca: path("ca.pem"),
    serverCert: path("server.pem"),
    serverKey: path("server-key.pem"),
    clientCert: path("client.pem"),
    clientKey: path("client-key.pem"),
    strangerCert: path("stranger.pem"),
    strangerKey: path("stranger-key.pem"),
    selfSignedCert: path("self-signed.pem"),
    selfSignedKey: path("self-signed-key.pem"),
    namedCert: path("named.pem"),
    namedKey: path("named-key.pem"),
    caPem: () => readFile(path("ca.pem"), "utf8"),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

async function authority(dir: string, name: string, subject: string): Promise<void> {
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${subject}`,
    "-keyout",
    join(dir, `${name}-key.pem`),
    "-out",
    join(dir, `${name}.pem`),
  ]);
}

async function issue(dir: string, ca: string, name: string, commonName: string, extensions: string): Promise<void> {
  const key = join(dir, `${name}-key.pem`);
  const request = join(dir, `${name}.csr`);
  await run("openssl", [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-subj",
    `/CN=${commonName}`,
    "-keyout",
    key,
    "-out",
    request,
  ]);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    request,
    "-CA",
    join(dir, `${ca}.pem`),
    "-CAkey",
    join(dir, `${ca}-key.pem`),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    join(dir, extensions),
    "-out",
    join(dir, `${name}.pem`),
  ]);
}
