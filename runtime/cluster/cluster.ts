// The pieces that spread keyed actors over the live nodes, assembled in two steps: `openCluster` joins
// the membership and opens the buckets (what supervisors need to be built); `run` then starts running
// shards with those supervisors, takes keyed orders and requests on the node's inboxes, and waits for
// the first reconciliation.
import { Kvm } from "@nats-io/kv";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ActorInput } from "../actor-family.ts";
import type { ActorHost } from "../actor-host.ts";
import { isConnectionUp } from "../connection.ts";
import type { DeadLetters } from "../dead-letters.ts";
import { decodeJson, encodeJson, isJsonObject } from "../json.ts";
import type { NatsEndpoint } from "../nats-endpoint.ts";
import { Requester } from "../requester.ts";
import { StartupError } from "../startup-error.ts";
import { isSafeReplySubject, type Subjects } from "../subjects.ts";
import { ActorRegistry } from "./actor-registry.ts";
import { ClusterPlacement } from "./cluster-placement.ts";
import { ClusterTasks } from "./cluster-tasks.ts";
import type { ActorDirectory, FamilySupervisor } from "./family-supervisor.ts";
import { HeartbeatThread } from "./heartbeat-thread.ts";
import { KeyedOrders } from "./keyed-orders.ts";
import { drainLegacyOrders } from "./legacy-order-stream.ts";
import { DEFAULT_TIMING, MEMBERSHIP_BUCKET, Membership, type MembershipTiming } from "./membership.ts";
import { shardOf } from "./rendezvous.ts";
import { ShardAssignments } from "./shard-assignments.ts";
import { ShardCoordinator } from "./shard-coordinator.ts";
import { ShardRunner } from "./shard-runner.ts";

export interface ClusterOptions {
  nc: NatsConnection;
  /** A connection of its own for watching heartbeats, so that they never wait behind order traffic. */
  control: NatsConnection;
  /** Where the heartbeat thread connects (its own connection, on its own thread). */
  endpoint: NatsEndpoint;
  subjects: Subjects;
  nodeId: string;
  host: ActorHost;
  deadLetters: DeadLetters;
  replicas: number;
  shards: number;
  logger: Logger;
  info: Record<string, unknown>;
  timing?: MembershipTiming;
}

export interface Cluster {
  readonly placement: ClusterPlacement;
  readonly directory: ActorDirectory;
  readonly keyed: KeyedOrders;
  readonly membership: Membership;
  /** Work one node does for the whole cluster, claimed per period. */
  readonly tasks: ClusterTasks;
  /** The keys of every actor of a kind that exists, on whatever node (see ActorRegistry.keysOf). */
  registeredKeys(kind: string): Promise<Set<string>>;
  /** Starts running shards with these supervisors; resolves after the first reconciliation. */
  run(supervisors: ReadonlyMap<string, FamilySupervisor>): Promise<void>;
  /** Hands every shard to the other live nodes (graceful leave); resolves when none is left or at the deadline. */
  leave(deadline: number): Promise<void>;
  /** Stops shards and membership (actors are stopped by the host). */
  stop(): Promise<void>;
  describe(): Record<string, unknown>;
}

export async function openCluster(options: ClusterOptions): Promise<Cluster> {
  const { nc, subjects, nodeId, host, logger, replicas } = options;
  const kvm = new Kvm(nc);
  const nodesKv = await new Kvm(options.control).create(subjects.resource(MEMBERSHIP_BUCKET), { history: 1, replicas, ttl: 10 * 60 * 1_000 });
  const shardsKv = await kvm.create(subjects.resource("caliopen_shards"), { history: 1, replicas });
  const registryKv = await kvm.create(subjects.resource("caliopen_actor_registry"), { history: 1, replicas });
  const tasksKv = await kvm.create(subjects.resource("caliopen_cluster_tasks"), { history: 1, replicas });
  await checkShardCount(shardsKv, options.shards);

  const timing = options.timing ?? DEFAULT_TIMING;
  const heartbeats = new HeartbeatThread(
    {
      endpoint: options.endpoint,
      connectionName: `caliopen-node ${nodeId} heartbeat`,
      bucket: subjects.resource(MEMBERSHIP_BUCKET),
      nodeId,
      info: options.info,
      heartbeatMs: timing.heartbeatMs,
      fenceAfterMs: timing.fenceAfterMs,
      mainStallLimitMs: timing.mainStallLimitMs,
    },
    logger.child({ part: "heartbeat" }),
    host.metrics,
  );
  const membership = new Membership(nodesKv, nodeId, heartbeats, logger.child({ part: "membership" }), timing, () => isConnectionUp(nc));
  const assignments = new ShardAssignments(shardsKv, options.shards, logger);
  const registry = new ActorRegistry(registryKv, nc, subjects.resource("caliopen_actor_registry"));
  let runner: ShardRunner | null = null;
  let coordinator: ShardCoordinator | null = null;
  const inboxes: Subscription[] = [];
  let stopped = false;
  const requester = new Requester(nc);
  const keyed = new KeyedOrders(assignments, host, () => runner, requester, subjects, nodeId, options.shards);
  const placement = new ClusterPlacement(assignments, () => runner, options.shards);
  const directory: ActorDirectory = {
    add: (kind, key, input) => registry.add(shardOf(kind, key, options.shards), { kind, key, input }),
    remove: (kind, key) => registry.remove(shardOf(kind, key, options.shards), kind, key),
  };
  const registered = ({ kind, key, ...input }: ActorInput) => ({ kind, key, input });
  host.recordRestsIn({
    rest: (input, wakeAt) => registry.rest(shardOf(input.kind, input.key, options.shards), registered(input), wakeAt),
    wake: (input) => registry.wake(shardOf(input.kind, input.key, options.shards), input.kind, input.key),
  });
  await assignments.start();
  await membership.start();
  const metrics = host.metrics;
  membership.on((event) => {
    if (event.type === "fenced") metrics.nodeFenced();
  });
  metrics.countClusterWith(() => (stopped ? null : { liveNodes: membership.liveNodes().length, ownedShards: runner?.owned().length ?? 0 }));

  return {
    placement,
    directory,
    keyed,
    membership,
    tasks: new ClusterTasks(tasksKv, nodeId),
    registeredKeys: (kind) => registry.keysOf(kind),
    async run(supervisors) {
      const activateOnOrder = new Set([...supervisors.values()].filter((s) => s.family.startsOnFirstMessage === true).map((s) => s.kind));
      runner = new ShardRunner({
        host,
        supervisors,
        registry,
        deadLetters: options.deadLetters,
        subjects,
        shards: options.shards,
        logger,
        activateOnOrder,
      });
      const answering = (answer: (data: Uint8Array) => Promise<unknown>) => (err: Error | null, msg: Msg) => {
        if (err !== null) return;
        if (!msg.reply || !isSafeReplySubject(msg.reply)) {
          logger.warn({ subject: msg.subject, replyLength: msg.reply?.length ?? 0 }, "node inbox: message without a usable reply subject dropped");
          return;
        }
        void answer(msg.data).then((reply) => msg.respond(encodeJson(reply)));
      };
      inboxes.push(nc.subscribe(KeyedOrders.inboxSubject(subjects, nodeId), { callback: answering((data) => keyed.answerInbox(data)) }));
      inboxes.push(nc.subscribe(KeyedOrders.applySubject(subjects, nodeId), { callback: answering((data) => keyed.answerApply(data)) }));
      coordinator = new ShardCoordinator(membership, assignments, runner, logger.child({ part: "shards" }), metrics);
      coordinator.start();
      await coordinator.idle();
      // In the background: only a cluster upgraded with orders still queued by its earlier version has any.
      void drainLegacyOrders(
        { nc, subjects, deadLetters: options.deadLetters, logger, apply: (order) => keyed.apply(order.op, order.kind, order.key, order) },
        () => stopped,
      ).catch((err: Error) => logger.warn({ err: err.message }, "applying the earlier version's keyed orders stopped: the next start goes on"));
    },
    async leave(deadline) {
      if (coordinator === null) return;
      await membership.leave();
      coordinator.poke();
      while (Date.now() < deadline && coordinator.ownedShards().length > 0 && membership.liveNodes().length > 0) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        coordinator.poke();
      }
      await coordinator.idle();
    },
    async stop() {
      stopped = true;
      await coordinator?.close();
      for (const inbox of inboxes) inbox.unsubscribe();
      await runner?.stopAll();
      requester.close();
      assignments.stop();
      await membership.stop();
    },
    describe() {
      return {
        shards: options.shards,
        ownedShards: runner?.owned().length ?? 0,
        liveNodes: membership.liveNodes(),
        healthy: membership.healthy,
      };
    },
  };
}

/** Every node of a deployment must hash keys to the same shards. */
async function checkShardCount(kv: Awaited<ReturnType<Kvm["create"]>>, shards: number): Promise<void> {
  // The first node writes the count; a node racing it reads the winner's.
  await kv.create("config", encodeJson({ shards })).catch(() => undefined);
  const entry = await kv.get("config");
  if (entry === null) throw new StartupError("cannot read the deployment's shard count from NATS");
  const decoded = decodeJson(entry.value);
  const stored = decoded.ok && isJsonObject(decoded.value) ? Number(decoded.value.shards) : NaN;
  if (stored !== shards) throw new StartupError(`this deployment uses ${stored} shards but this node was configured with ${shards} (CALIOPEN_SHARDS)`);
}
