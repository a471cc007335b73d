// Moleculer, the same-stack peer (Node.js services on NATS), for the request scenario: a ServiceBroker on
// the scenario's nats-server through Moleculer's NATS transporter, which drives the `nats` v2 client
// (it require()s "nats" and uses the v2 API; the runtime's @nats-io v3 packages are not used by it).
// Defaults otherwise, as the peer comparison ran it: JSON serializer, RoundRobin balancer (the caller
// picks the node and publishes to MOL.REQ.<node>), requestTimeout 0 (no timer per call), logging off.
import { type Context, ServiceBroker } from "moleculer";
import type { ConnectionOptions } from "nats";
import { isJsonObject } from "../../runtime/json.ts";
import { type NatsEndpoint, natsConnectOptions, usesTls } from "../../runtime/nats-endpoint.ts";
import { failure, ok, type Reply } from "../../runtime/reply.ts";
import { DELIVER_ORDER, KEY_FIELD } from "./bench-payloads.ts";
import { registerCleanup } from "./cleanup.ts";

/** The responder's service and action: `outboundIMAP.deliver`, named after the contract's subject and order. */
export const MOLECULER_SERVICE = DELIVER_ORDER.subject;
export const MOLECULER_ACTION = `${MOLECULER_SERVICE}.${DELIVER_ORDER.order}`;

/**
 * The v2 client's connect options for the endpoint: the runtime's own (natsConnectOptions: servers and
 * credentials, read and checked as for every connection). The Moleculer row runs on the plain server
 * only: the v2 client did not connect with the TLS servers' certificates, so they are refused clearly.
 */
async function natsV2Options(endpoint: NatsEndpoint, name: string): Promise<ConnectionOptions> {
  if (usesTls(endpoint)) throw new Error("the Moleculer broker runs on the plain bench server only (no TLS)");
  // Like bench-connection.ts: never reconnect (Moleculer's own default would be -1, for ever).
  return { ...(await natsConnectOptions(endpoint)), name, maxReconnectAttempts: 0 };
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
