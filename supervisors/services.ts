// Which code answers which order of the contract. A node subscribes every subject of the contract;
// an order that no service of this node runs (a node built with some services only, as tests and
// benchmarks build them) is refused with an error that says so (a reply for a request, a dead letter for a
// published order) — never a timeout, never a silent drop.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ContractBindings } from "../contract/contract-bindings.ts";
import type { OrderFields, OrderName, SubjectSpec } from "../contract/contract-table.ts";
import type { ActorFamily } from "../runtime/actor-family.ts";
import type { ActorHost } from "../runtime/actor-host.ts";
import { type Admission, admitOrRefuse, type RouterDeps } from "../runtime/cluster/actor-router.ts";
import type { Cluster } from "../runtime/cluster/cluster.ts";
import type { FamilySupervisor } from "../runtime/cluster/family-supervisor.ts";
import type { RuntimeMetrics } from "../runtime/metrics.ts";
import type { OrderContext, OrderHandler } from "../runtime/orders.ts";
import type { Reply } from "../runtime/reply.ts";
import type { Subjects } from "../runtime/subjects.ts";

export interface ServiceContext extends RouterDeps {
  host: ActorHost;
  supervisors: ReadonlyMap<string, FamilySupervisor>;
  cluster: Pick<Cluster, "tasks" | "registeredKeys" | "membership">;
}

/** The services a node runs: the actor families it supervises and the handlers of contract orders. */
export interface ServiceSet {
  families: ActorFamily[];
  bindings(context: ServiceContext): ContractBindings;
  /** Runs once the node takes orders (e.g. serve an HTTP API, rebuild schedules from the store). */
  start?(context: ServiceContext): Promise<void>;
  /** Runs when the node stops, before its NATS connection closes. */
  stop?(): Promise<void>;
}

/** What services need to open their own resources (a store, a server) before the node runs them. */
export interface ServiceDeps {
  nc: NatsConnection;
  subjects: Subjects;
  replicas: number;
  nodeId: string;
  logger: Logger;
  /** The node's metrics: services add their own to its registry, and the API serves them. */
  metrics: RuntimeMetrics;
}

/** Services that are built once the node is connected. */
export type ServiceFactory = (deps: ServiceDeps) => Promise<ServiceSet>;

export class ServiceUnavailable extends Error {
  override readonly name = "ServiceUnavailable";
}

export function notAvailable(spec: SubjectSpec, order: string): OrderHandler {
  return () => {
    throw new ServiceUnavailable(`${spec.service} (${spec.handler}) does not run on this node, so "${order}" on ${spec.subject} cannot be handled`);
  };
}

/**
 * add_worker / reload_worker / remove_worker for a family keyed by remote_id: queued for the node that
 * owns the key, which starts, reloads or removes the actor, once `admit` (if any) let the order through.
 */
export function workerLifecycle(kind: string, context: ServiceContext, admit?: Admission<WorkerOrder>): Record<WorkerLifecycleOrder, WorkerHandler> {
  const supervisor = context.supervisors.get(kind);
  const refuse: WorkerHandler = (payload, context) => {
    throw new ServiceUnavailable(`${kind} worker actors do not run on this node: ${context.order} for remote_id "${payload.remote_id}" refused`);
  };
  if (supervisor === undefined) return { add_worker: refuse, reload_worker: refuse, remove_worker: refuse };
  const input = (payload: WorkerOrder) => ({ remote_id: payload.remote_id, user_id: payload.user_id });
  const id = (order: OrderContext) => (order.deliveryId === undefined ? {} : { id: order.deliveryId });
  const admitted =
    (handle: WorkerHandler): WorkerHandler =>
    async (payload, order) => {
      await admitOrRefuse(admit, payload, order);
      return handle(payload, order);
    };
  return {
    add_worker: admitted(async (payload, order) => void (await context.keyed.apply("start", kind, payload.remote_id, { input: input(payload), ...id(order) }))),
    reload_worker: admitted(
      async (payload, order) => void (await context.keyed.apply("reload", kind, payload.remote_id, { input: input(payload), ...id(order) })),
    ),
    remove_worker: admitted(async (payload, order) => void (await context.keyed.apply("remove", kind, payload.remote_id, id(order)))),
  };
}

/** add_worker, reload_worker, remove_worker: the same payload on imap_worker and twitter_worker. */
type WorkerLifecycleOrder = OrderName<"imap_worker">;
type WorkerOrder = OrderFields<"imap_worker", "add_worker">;
type WorkerHandler = (payload: WorkerOrder, context: OrderContext) => Promise<Reply | undefined>;
