// A real supervisor node in this process, on a test nats-server.

import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllowedDestinations } from "../../actors/network/allowed-destinations.ts";
import type { DestinationSettings, Resolver } from "../../actors/network/destination-policy.ts";
import { NO_OAUTH2_PROVIDERS } from "../../actors/oauth2/oauth2-providers.ts";
import { createLogger, type Logger, silentLogger } from "../../runtime/logger.ts";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { SecretBox } from "../../runtime/secret-box.ts";
import type { CaliopenConfig } from "../../supervisors/caliopen-config.ts";
import { type NodeTuning, type RunningNode, startNode } from "../../supervisors/node.ts";
import type { NodeConfig } from "../../supervisors/node-config.ts";
import { DEFAULT_POLLER_CHECK_EVERY_MS } from "../../supervisors/poller-check.ts";
import type { ServiceFactory, ServiceSet } from "../../supervisors/services.ts";

/** Failure detection shortened so that tests of failover run quickly. */
export const FAST_DETECTION_MS = 1_000;

export async function startTestNode(
  nats: NatsEndpoint,
  services: ServiceSet | ServiceFactory,
  overrides: Partial<NodeConfig> = {},
  tuning: NodeTuning = {},
  /** Where the node logs (by default nowhere, or stderr with TEST_LOG_LEVEL). */
  log?: Logger,
): Promise<RunningNode> {
  const config: NodeConfig = {
    nats,
    natsPort: 0,
    dataDir: await mkdtemp(join(tmpdir(), "caliopen-test-node-")),
    namespace: "",
    nodeId: "test-node",
    shutdownGraceMs: 2_000,
    replicas: 1,
    logLevel: "silent",
    shards: 8,
    failureDetectionMs: FAST_DETECTION_MS,
    passivateAfterMs: 60_000,
    ...overrides,
  };
  // TEST_LOG_LEVEL=debug shows a test node's log on stderr, to find out why a test fails.
  const level = process.env.TEST_LOG_LEVEL;
  const logger = log ?? (level === undefined ? silentLogger() : createLogger({ level, name: config.nodeId, destination: process.stderr }));
  return startNode(config, services, logger, tuning);
}

/**
 * Caliopen service settings for tests: a fresh secret key, the API on a free loopback port, and the
 * default destination policy (public addresses only): a test admits the peers it starts with
 * `testDestinations`.
 */
export function testCaliopenConfig(overrides: Partial<CaliopenConfig> = {}): CaliopenConfig {
  return {
    secrets: new SecretBox(randomBytes(32)),
    api: { host: "127.0.0.1", port: 0 },
    deliverTimeoutMs: 2_000,
    mail: { host: "platform.test", relay: { host: "127.0.0.1", port: 1 }, smtp: null },
    imap: { retry: { initialMs: 200, maxMs: 2_000, factor: 2, jitter: 0 } },
    twitter: {},
    keys: { discovery: { hkp: null, wkd: false, dns: null, timeoutMs: 2_000 }, publishing: { hkp: null, wkd: null } },
    destinations: { allow: [], ca: [] },
    oauth2Providers: NO_OAUTH2_PROVIDERS,
    pollerCheckEveryMs: DEFAULT_POLLER_CHECK_EVERY_MS,
    ...overrides,
  };
}

/**
 * What a test node may reach: exactly the loopback peers the test started, each `host:port` as in
 * CALIOPEN_ALLOWED_DESTINATIONS (with `+cleartext` or `+unverified-tls` where a test wants that
 * exception), and the CAs given (the test CA's PEM) trusted besides Node's. `resolve` stands in for DNS.
 */
export function testDestinations(peers: string[], ca: string[] = [], resolve?: Resolver): DestinationSettings {
  return { allow: parseAllowedDestinations(peers.join(",")), ca, ...(resolve !== undefined && { resolve }) };
}
