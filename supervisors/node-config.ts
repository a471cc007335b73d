// Node configuration, from environment variables (documented in the README).

import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { DEFAULT_MAX_CONCURRENT_ORDERS } from "../runtime/entry-point.ts";
import { type LogFormat, logFormatFromEnv, logLevelFromEnv } from "../runtime/logger.ts";
import { type NatsEndpoint, natsEndpointFromEnv } from "../runtime/nats-endpoint.ts";
import { StartupError } from "../runtime/startup-error.ts";
import { listenSetting } from "./env-settings.ts";

/**
 * How long a silent node takes to be declared dead. Measured: failover after kill -9 is this plus
 * about 0.3 s for 1,000 actors, and a node whose event loop is saturated (the orders backlog bench)
 * still renews its heartbeat within 60 % of it.
 */
export const DEFAULT_FAILURE_DETECTION_MS = 1_200;

export interface NodeConfig {
  /** Join this NATS (NATS_URL and its credentials); undefined runs an embedded nats-server. */
  nats: NatsEndpoint | undefined;
  /** Port of the embedded nats-server (0 = any free port). */
  natsPort: number;
  dataDir: string;
  namespace: string;
  nodeId: string;
  /** How long a graceful shutdown lets running work finish. */
  shutdownGraceMs: number;
  /** Replicas of the KV buckets and streams this node creates (3 on a 3-server NATS cluster). */
  replicas: number;
  logLevel: string;
  /** LOG_FORMAT; undefined: pretty on a terminal, JSON otherwise. */
  logFormat?: LogFormat;
  /** How many shards keyed actors are spread over; the same on every node of a deployment. */
  shards: number;
  /** A node unseen for this long is taken for dead and its actors move (it fences itself sooner). */
  failureDetectionMs: number;
  /** An actor idle this long drops its XState actor and keeps only its snapshot until its next message (0: never). */
  passivateAfterMs: number;
  /** Order handlers running at once per entry point (default DEFAULT_MAX_CONCURRENT_ORDERS). */
  maxConcurrentOrders?: number;
  /** Where Prometheus scrapes this node's /metrics without a token (CALIOPEN_METRICS); null or left out: no listener of its own. */
  metrics?: { host: string; port: number } | null;
}

export function defaultNodeId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(2).toString("hex")}`;
}

export function nodeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): NodeConfig {
  return {
    nats: natsEndpointFromEnv(env),
    natsPort: integer(env, "CALIOPEN_NATS_PORT", 4222, 0, 65535),
    dataDir: resolve(nonEmpty(env.CALIOPEN_DATA_DIR) ?? "data"),
    namespace: nonEmpty(env.CALIOPEN_NAMESPACE) ?? "",
    nodeId: nonEmpty(env.CALIOPEN_NODE_ID) ?? defaultNodeId(),
    shutdownGraceMs: integer(env, "CALIOPEN_SHUTDOWN_GRACE_MS", 10_000, 0, 3_600_000),
    replicas: integer(env, "CALIOPEN_REPLICAS", 1, 1, 5),
    logLevel: logLevelFromEnv(env),
    logFormat: logFormatFromEnv(env),
    shards: integer(env, "CALIOPEN_SHARDS", 64, 1, 4096),
    failureDetectionMs: integer(env, "CALIOPEN_FAILURE_DETECTION_MS", DEFAULT_FAILURE_DETECTION_MS, 200, 600_000),
    passivateAfterMs: integer(env, "CALIOPEN_PASSIVATE_AFTER_MS", 60_000, 0, 86_400_000),
    maxConcurrentOrders: integer(env, "CALIOPEN_MAX_CONCURRENT_ORDERS", DEFAULT_MAX_CONCURRENT_ORDERS, 1, 10_000),
    metrics: listenSetting(env, "CALIOPEN_METRICS", "off"),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = nonEmpty(env[name]);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new StartupError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}
