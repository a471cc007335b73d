// Moleculer, the same-stack peer (Node.js services on NATS), for the request scenario: a ServiceBroker on
// the scenario's nats-server through Moleculer's NATS transporter, which drives the `nats` v2 client
// (it require()s "nats" and uses the v2 API; the runtime's @nats-io v3 packages are not used by it).
// Defaults otherwise, as the peer comparison ran it: JSON serializer, RoundRobin balancer (the caller
// picks the node and publishes to MOL.REQ.<node>), requestTimeout 0 (no timer per call), logging off.
import { readFile } from "node:fs/promises";
import { type Context, ServiceBroker } from "moleculer";
import { type ConnectionOptions, credsAuthenticator, nkeyAuthenticator } from "nats";
import { isJsonObject } from "../../runtime/json.ts";
import { authMethod, type NatsEndpoint, nkeyPublicKey, servers, usesTls } from "../../runtime/nats-endpoint.ts";
import { failure, ok, type Reply } from "../../runtime/reply.ts";
import { DELIVER_ORDER, KEY_FIELD } from "./bench-payloads.ts";
import { registerCleanup } from "./cleanup.ts";

/** The responder's service and action: `outboundIMAP.deliver`, named after the contract's subject and order. */
export const MOLECULER_SERVICE = DELIVER_ORDER.subject;
export const MOLECULER_ACTION = `${MOLECULER_SERVICE}.${DELIVER_ORDER.order}`;

/**
 * The v2 client's connect options for the endpoint, signed in as every bench connection is
 * (runtime/nats-endpoint.ts natsConnectOptions builds the same for v3): the embedded server admits
 * one user nkey, which the v2 client takes as `authenticator: nkeyAuthenticator(seed)`.
 */
async function natsV2Options(endpoint: NatsEndpoint, name: string): Promise<ConnectionOptions> {
  // Like bench-connection.ts: never reconnect (Moleculer's own default would be -1, for ever).
  const options: ConnectionOptions = { servers: servers(endpoint).map((server) => server.replace(/^tls:\/\//, "nats://")), name, maxReconnectAttempts: 0 };
  switch (authMethod(endpoint)) {
    case "nkey": {
      const path = endpoint.nkey as string;
      const text = await readFile(path, "utf8");
      nkeyPublicKey(text, `NATS_NKEY ${path}`); // refuses a file without a valid user seed
      const seed = /\bSU[A-Z2-7]{50,}\b/.exec(text)?.[0] ?? "";
      options.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
      break;
    }
    case "creds":
      options.authenticator = credsAuthenticator(new Uint8Array(await readFile(endpoint.creds as string)));
      break;
    case "user":
      options.user = endpoint.user as string;
      options.pass = endpoint.password as string;
      break;
    case "token":
      options.token = (endpoint.token ?? endpoint.user) as string;
      break;
    case "none":
      break;
  }
  if (endpoint.inboxPrefix !== undefined) options.inboxPrefix = endpoint.inboxPrefix;
  if (usesTls(endpoint)) {
    options.tls = {
      ...(endpoint.ca !== undefined && { caFile: endpoint.ca }),
      ...(endpoint.cert !== undefined && { certFile: endpoint.cert }),
      ...(endpoint.key !== undefined && { keyFile: endpoint.key }),
    };
  }
  return options;
}

/** The action answers what the raw responder and the actor answer: `{"message_id":…,"remote_id":…,"error":false,"message":"delivered"}`. */
function deliver(ctx: Context<unknown>): Reply {
  const params = ctx.params;
  if (!isJsonObject(params)) return failure("not a JSON object");
  return ok("delivered", { message_id: params.message_id, remote_id: params[KEY_FIELD] });
}

export interface MoleculerNode {
  broker: ServiceBroker;
  /** Stops the broker once, whoever asks first (the scenario, or cleanup on error or signal). */
  stop(): Promise<void>;
}

/**
 * A started broker on the endpoint; `role` names its node and connection. The responder's broker has
 * service `outboundIMAP` with action `deliver`; the client's has none.
 */
export async function startMoleculerBroker(endpoint: NatsEndpoint, role: "responder" | "client"): Promise<MoleculerNode> {
  const broker = new ServiceBroker({
    nodeID: `bench-${role}-${process.pid}`,
    logger: false,
    // The bench's own signal handling (cleanup.ts) stops it; Moleculer's would exit the process first.
    skipProcessEventRegistration: true,
    transporter: { type: "NATS", options: await natsV2Options(endpoint, `bench moleculer ${role}`) },
  });
  if (role === "responder") broker.createService({ name: MOLECULER_SERVICE, actions: { [DELIVER_ORDER.order]: deliver } });
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      unregister();
      await broker.stop();
    })());
  const unregister = registerCleanup(stop);
  await broker.start();
  return { broker, stop };
}
