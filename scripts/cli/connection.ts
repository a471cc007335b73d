// The CLI's own NATS connection: the same settings as a node (NATS_URL, NATS_CREDS, NATS_NKEY, …, or
// --nats), plus the credential of a node's embedded nats-server on this machine when none is given, so
// that `npx caliopen …` next to `npm start` needs no setup. It fails fast with one readable line (a node
// keeps retrying for ever; an operator at a prompt wants to know now).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type ConnectionOptions, PermissionViolationError } from "@nats-io/nats-core";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { embeddedSeedFile } from "../../runtime/embedded-nats-credentials.ts";
import { authMethod, explainConnectError, type NatsEndpoint, natsConnectOptions, natsEndpointFromEnv } from "../../runtime/nats-endpoint.ts";
import { dataDirFromEnv } from "../../supervisors/secret-keys.ts";
import { CliError, messageOf } from "./errors.ts";

const CONNECT_TIMEOUT_MS = 5_000;

/** Where the CLI connects: `--nats`, else NATS_URL, else the embedded server of a node on this machine. */
export function cliEndpoint(natsOption: string | undefined, env: NodeJS.ProcessEnv): NatsEndpoint {
  const url = natsOption ?? (env.NATS_URL?.trim() || `nats://127.0.0.1:${env.CALIOPEN_NATS_PORT?.trim() || 4222}`);
  let endpoint: NatsEndpoint;
  try {
    endpoint = natsEndpointFromEnv(env, url) as NatsEndpoint;
  } catch (error) {
    throw new CliError(messageOf(error));
  }
  if (authMethod(endpoint) !== "none") return endpoint;
  const local = localSeedFile(env);
  return existsSync(local) ? { ...endpoint, nkey: local } : endpoint;
}

/** The nkey a node's embedded nats-server made, under the same data directory a node would use. */
function localSeedFile(env: NodeJS.ProcessEnv): string {
  return embeddedSeedFile(join(dataDirFromEnv(env), "nats"));
}

export async function openNats(endpoint: NatsEndpoint): Promise<NatsConnection> {
  let options: ConnectionOptions;
  try {
    options = await natsConnectOptions(endpoint);
  } catch (error) {
    throw new CliError(messageOf(error));
  }
  try {
    return await connect({ ...options, name: "caliopen-cli", timeout: CONNECT_TIMEOUT_MS, reconnectTimeWait: 500 });
  } catch (error) {
    const hint =
      authMethod(endpoint) === "none" && /authorization/i.test(messageOf(error))
        ? " — for a node's embedded server, run the CLI in the node's directory or set CALIOPEN_DATA_DIR (its key is <data dir>/nats/caliopen.nk)"
        : "";
    throw new CliError(`${explainConnectError(endpoint, error)}${hint}`);
  }
}

/**
 * Publishes and makes sure the server took it: a publish the account may not make is refused by the
 * server after the fact, which nats.js reports only as a status event.
 */
export async function publishConfirmed(nc: NatsConnection, subject: string, data: Uint8Array): Promise<void> {
  const refusals: Error[] = [];
  const status = nc.status();
  void (async () => {
    for await (const event of status) {
      if (event.type === "error" && event.error instanceof PermissionViolationError && event.error.subject === subject) refusals.push(event.error);
    }
  })();
  nc.publish(subject, data);
  // The server answers the flush's PING after it has dealt with the publish, refusal included.
  await nc.flush();
  await new Promise((resolve) => setImmediate(resolve));
  const [refusal] = refusals;
  if (refusal !== undefined) throw new CliError(`the server refused to publish on ${subject}: ${refusal.message}`);
}
