// Bench connections never reconnect: if the server goes away mid-run the figure is void, so fail fast.
// They sign in and secure themselves as a node would (runtime/nats-endpoint.ts), with nats.js defaults otherwise.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type NatsEndpoint, natsConnectOptions } from "../../runtime/nats-endpoint.ts";

export async function connectBench(endpoint: NatsEndpoint, name: string): Promise<NatsConnection> {
  return connect({ ...(await natsConnectOptions(endpoint)), name, maxReconnectAttempts: 0 });
}
