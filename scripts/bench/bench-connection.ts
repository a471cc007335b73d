// Bench connections never reconnect: if the server goes away mid-run the figure is void, so fail fast.
import { connect, type NatsConnection } from "@nats-io/transport-node";

export function connectBench(url: string, name: string): Promise<NatsConnection> {
  return connect({ servers: url, name, maxReconnectAttempts: 0 });
}
