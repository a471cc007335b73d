import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { RuntimeMetrics } from "./metrics.ts";
import { explainConnectError, type NatsEndpoint, natsConnectOptions } from "./nats-endpoint.ts";
import { StartupError } from "./startup-error.ts";
import "./nats-settled-requests.ts";
import "./nats-write-coalescing.ts";

export type { NatsConnection };

export interface ConnectionOptions {
  endpoint: NatsEndpoint;
  name: string;
  logger: Logger;
  /** How long to wait for the first connection before giving up. */
  connectTimeoutMs?: number;
  /** Counts the connection's losses and recoveries, labelled `connection` (a fixed name: "orders", "control"). */
  metrics?: { metrics: RuntimeMetrics; connection: string };
}

/**
 * Connects to NATS and keeps reconnecting for as long as the process lives: a NATS restart or a
 * failover inside a cluster must not kill the node. A refused credential is not retried for ever:
 * nats.js gives up when a server refuses it twice in a row, and the connection closes.
 */
export async function connectToNats(options: ConnectionOptions): Promise<NatsConnection> {
  const settings = await natsConnectOptions(options.endpoint);
  let nc: NatsConnection;
  try {
    nc = await connect({
      ...settings,
      name: options.name,
      timeout: options.connectTimeoutMs ?? 5_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      reconnectJitter: 200,
      pingInterval: 10_000,
      // Async stack traces cost a stack capture per request/publish-ack; measured 20-50 % of publish CPU.
      noAsyncTraces: true,
    });
  } catch (err) {
    throw new StartupError(explainConnectError(options.endpoint, err));
  }
  void watchStatus(nc, options.logger, options.metrics);
  return nc;
}

const down = new WeakSet<NatsConnection>();

/** True while the connection is open and not between a disconnect and a reconnect. */
export function isConnectionUp(nc: NatsConnection): boolean {
  return !nc.isClosed() && !down.has(nc);
}

async function watchStatus(nc: NatsConnection, logger: Logger, counted?: ConnectionOptions["metrics"]): Promise<void> {
  for await (const status of nc.status()) {
    switch (status.type) {
      case "disconnect":
        down.add(nc);
        counted?.metrics.natsDisconnected(counted.connection);
        logger.warn({ server: status.server }, "NATS connection lost, reconnecting");
        break;
      case "reconnect":
        down.delete(nc);
        counted?.metrics.natsReconnected(counted.connection);
        logger.info({ server: status.server }, "NATS connection restored");
        break;
      case "error":
        logger.error({ err: String(status.error) }, "NATS connection error");
        break;
      default:
        break;
    }
  }
}
