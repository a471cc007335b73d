// A supervisor node: one process that connects to NATS (or runs an embedded nats-server), hosts the
// actor families and the contract's entry points, answers the debug subjects, and shuts down cleanly.
import { hostname } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { ActorHost } from "../runtime/actor-host.ts";
import { type Cluster, openCluster } from "../runtime/cluster/cluster.ts";
import { FamilySupervisor, RESTART_BACKOFF } from "../runtime/cluster/family-supervisor.ts";
import { type MembershipTiming, membershipTiming } from "../runtime/cluster/membership.ts";
import { connectToNats, isConnectionUp } from "../runtime/connection.ts";
import { DeadLetters } from "../runtime/dead-letters.ts";
import { DebugResponder } from "../runtime/debug-responder.ts";
import { type EmbeddedNats, startEmbeddedNats } from "../runtime/embedded-nats-server.ts";
import { entryPointEndpoint } from "../runtime/entry-point-endpoint.ts";
import { RuntimeMetrics } from "../runtime/metrics.ts";
import { type RunningMetricsServer, startMetricsServer } from "../runtime/metrics-server.ts";
import { authMethod, type NatsEndpoint, redactUrl, usesTls } from "../runtime/nats-endpoint.ts";
import { ServiceDiscovery } from "../runtime/service-discovery.ts";
import { SnapshotStore } from "../runtime/snapshot-store.ts";
import { Subjects } from "../runtime/subjects.ts";
import { VERSION } from "../runtime/version.ts";
import { startContractEntryPoints } from "./contract-entry-points.ts";
import type { NodeConfig } from "./node-config.ts";
import type { ServiceFactory, ServiceSet } from "./services.ts";

export interface RunningNode {
  readonly id: string;
  readonly nc: NatsConnection;
  /** The NATS the node uses (the embedded server's when it runs one), with its credentials. */
  readonly nats: NatsEndpoint;
  readonly subjects: Subjects;
  readonly host: ActorHost;
  readonly supervisors: ReadonlyMap<string, FamilySupervisor>;
  readonly deadLetters: DeadLetters;
  /** The node's Prometheus metrics (its own registry). */
  readonly metrics: RuntimeMetrics;
  /** Where CALIOPEN_METRICS serves them, or null. */
  readonly metricsUrl: string | null;
  /** Stops taking orders, lets running work finish within the grace period, then stops everything. */
  shutdown(reason: string): Promise<void>;
  /**
   * Resolves with the reason if NATS is lost for good without a shutdown (e.g. the server refuses our
   * credential after a reconnect): the node can no longer do anything and its process should exit.
   */
  readonly lost: Promise<string>;
}

/** The name every node answers NATS service discovery under (`nats micro info caliopen`). */
export const SERVICE_NAME = "caliopen";

export interface NodeTuning {
  /** Heartbeat and failure-detection timing (tests shorten it). */
  membership?: MembershipTiming;
}

export async function startNode(config: NodeConfig, serviceSource: ServiceSet | ServiceFactory, logger: Logger, tuning: NodeTuning = {}): Promise<RunningNode> {
  const startedAt = new Date();
  const log = logger.child({ node: config.nodeId });
  const metrics = new RuntimeMetrics();
  metrics.includeProcessMetrics();
  let embedded: EmbeddedNats | null = null;
  if (config.nats === undefined) {
    embedded = await startEmbeddedNats({ dataDir: `${config.dataDir}/nats`, port: config.natsPort });
    log.info({ url: embedded.url, serverPid: embedded.pid, nkey: embedded.endpoint.nkey }, "embedded nats-server started");
  }
  const nats = embedded?.endpoint ?? (config.nats as NatsEndpoint);
  const natsUrl = redactUrl(nats.url);
  let nc: NatsConnection;
  let control: NatsConnection;
  try {
    nc = await connectToNats({ endpoint: nats, name: `caliopen-node ${config.nodeId}`, logger: log, metrics: { metrics, connection: "orders" } });
    control = await connectToNats({
      endpoint: nats,
      name: `caliopen-node ${config.nodeId} control`,
      logger: log,
      metrics: { metrics, connection: "control" },
    }).catch(async (err: unknown) => {
      await nc.close();
      throw err;
    });
  } catch (err) {
    await embedded?.stop();
    throw err;
  }

  let metricsServer: RunningMetricsServer | null = null;
  let openedCluster: Cluster | null = null;
  try {
    const subjects = new Subjects(config.namespace);
    const services =
      typeof serviceSource === "function"
        ? await serviceSource({ nc, subjects, replicas: config.replicas, nodeId: config.nodeId, logger: log, metrics })
        : serviceSource;
    const snapshots = await SnapshotStore.open(nc, subjects.resource("caliopen_actor_snapshots"), config.replicas);
    const deadLetters = await DeadLetters.open(nc, subjects, config.nodeId, log, config.replicas);
    const host = new ActorHost({ nc, subjects, nodeId: config.nodeId, logger: log, snapshots, deadLetters, metrics });
    const cluster = await openCluster({
      nc,
      control,
      endpoint: nats,
      subjects,
      nodeId: config.nodeId,
      host,
      deadLetters,
      replicas: config.replicas,
      shards: config.shards,
      logger: log,
      info: { host: hostname(), pid: process.pid, version: VERSION },
      timing: tuning.membership ?? membershipTiming(config.failureDetectionMs),
    });
    openedCluster = cluster;
    const supervisors = new Map<string, FamilySupervisor>();
    for (const family of services.families) {
      supervisors.set(family.kind, new FamilySupervisor(host, family, cluster.placement, log, RESTART_BACKOFF, cluster.directory));
    }
    await cluster.run(supervisors);

    const serviceContext = { keyed: cluster.keyed, host, supervisors, cluster };
    const bindings = services.bindings(serviceContext);
    const entryPoints = await startContractEntryPoints(
      {
        nc,
        subjects,
        deadLetters,
        logger: log,
        replicas: config.replicas,
        metrics,
        ...(config.maxConcurrentOrders !== undefined && { maxConcurrentOrders: config.maxConcurrentOrders }),
      },
      bindings,
    );
    await services.start?.(serviceContext);
    // NATS micro discovery (`nats micro ls`): an id of its own per process, since CALIOPEN_NODE_ID is
    // free text (not always one subject token) and may name a restarted node, a new instance.
    const discovery = new ServiceDiscovery(
      nc,
      {
        name: SERVICE_NAME,
        version: VERSION,
        description: "Caliopen messaging backend node",
        metadata: { node: config.nodeId, host: hostname(), ...(config.namespace !== "" && { namespace: config.namespace }) },
      },
      entryPoints.map((entry) => entryPointEndpoint(entry, subjects)),
      log,
    );
    if (config.metrics != null) {
      metricsServer = await startMetricsServer(metrics, config.metrics);
      log.info({ url: metricsServer.url }, "metrics listening");
    }

    const describeNode = () => {
      const server = nc.info;
      return {
        node: config.nodeId,
        host: hostname(),
        pid: process.pid,
        startedAt: startedAt.toISOString(),
        version: VERSION,
        serviceId: discovery.id,
        namespace: config.namespace,
        actors: host.count(),
        kinds: host.kinds(),
        cluster: cluster.describe(),
        nats: {
          url: natsUrl,
          auth: authMethod(nats),
          tls: usesTls(nats),
          server: nc.getServer(),
          serverName: server?.server_name ?? null,
          serverVersion: server?.version ?? null,
          embedded: embedded !== null,
        },
        entryPoints: entryPoints.map((entry) => entry.snapshotStats()),
        deadLettered: deadLetters.countsBySubject(),
        memory: { rss: process.memoryUsage().rss, heapUsed: process.memoryUsage().heapUsed },
      };
    };
    const debug = new DebugResponder(nc, subjects, host, config.nodeId, describeNode, log);
    debug.start();
    discovery.start();
    const passivation =
      config.passivateAfterMs > 0 ? setInterval(() => host.passivateIdle(config.passivateAfterMs), Math.min(config.passivateAfterMs, 30_000)) : null;
    passivation?.unref();
    await nc.flush();
    log.info({ nats: natsUrl, auth: authMethod(nats), tls: usesTls(nats), namespace: config.namespace || undefined, version: VERSION }, "node started");

    let stopping: Promise<void> | null = null;
    const shutdown = (reason: string) =>
      (stopping ??= (async () => {
        log.info({ reason, graceMs: config.shutdownGraceMs }, "node stopping: no longer taking orders");
        if (passivation !== null) clearInterval(passivation);
        // No longer an instance of the service once it takes no orders.
        discovery.stop();
        await Promise.all(entryPoints.map((entry) => entry.stopTaking().catch(() => undefined)));
        await services.stop?.().catch((err: Error) => log.warn({ err: err.message }, "a service did not stop cleanly"));
        const finished = await settleWithin(config.shutdownGraceMs, async () => {
          await Promise.all(entryPoints.map((entry) => entry.settled()));
          while (host.anyBusy()) await new Promise((resolve) => setTimeout(resolve, 50));
        });
        if (!finished) log.warn({ graceMs: config.shutdownGraceMs }, "grace period over: stopping with work still running");
        // Hand this node's shards to the other nodes before going (nothing to do when it is alone).
        await cluster.leave(Date.now() + config.shutdownGraceMs + 5_000);
        for (const supervisor of supervisors.values()) supervisor.close();
        await cluster.stop();
        await host.stopAll();
        debug.stop();
        await Promise.all([nc, control].map((connection) => closeConnection(connection, config.shutdownGraceMs)));
        await embedded?.stop();
        await metricsServer?.close();
        log.info("node stopped");
      })());

    const lost = new Promise<string>((resolve) => {
      for (const connection of [nc, control]) {
        void connection.closed().then(async (err) => {
          if (stopping !== null) return;
          const reason = err instanceof Error ? err.message : "the connection was closed";
          log.error({ err: reason }, "NATS connection closed for good");
          // The other connection would otherwise go on trying to reconnect on its own.
          await Promise.all([nc, control].map((other) => other.close().catch(() => undefined)));
          await embedded?.stop();
          await metricsServer?.close();
          resolve(reason);
        });
      }
    });
    const metricsUrl = metricsServer?.url ?? null;
    return { id: config.nodeId, nc, nats, subjects, host, supervisors, deadLetters, metrics, metricsUrl, shutdown, lost };
  } catch (err) {
    await metricsServer?.close();
    // Its heartbeat thread would otherwise go on beating for a node that never started.
    await openedCluster?.stop().catch(() => undefined);
    await nc.close().catch(() => undefined);
    await control.close().catch(() => undefined);
    await embedded?.stop();
    throw err;
  }
}

/** Drains a connection that is up (pending publishes reach the server); one that is not is just closed. */
async function closeConnection(connection: NatsConnection, withinMs: number): Promise<void> {
  if (connection.isClosed()) return;
  const drained = isConnectionUp(connection) && (await settleWithin(withinMs, () => connection.drain().catch(() => undefined)));
  if (!drained) await connection.close().catch(() => undefined);
}

async function settleWithin(ms: number, work: () => Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const done = work().then(() => true as const);
  const result = await Promise.race([done, timeout]);
  clearTimeout(timer);
  return result;
}
