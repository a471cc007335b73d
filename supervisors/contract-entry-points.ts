// The contract's subjects as entry points, each order bound to the service that handles it (or refused
// when no service of this node runs it). Publish-only subjects are read from the durable intake stream, which captures
// them as they are sent; subjects with requests from core NATS, where the requester's inbox travels
// with the message.
import type { Consumer } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { boundHandler, type ContractBindings } from "../contract/contract-bindings.ts";
import { CONTRACT, isPublishOnly, type OrderSpec } from "../contract/contract-table.ts";
import { isConnectionUp } from "../runtime/connection.ts";
import type { DeadLetters } from "../runtime/dead-letters.ts";
import { DurableIntake } from "../runtime/durable-intake.ts";
import { DEFAULT_MAX_CONCURRENT_ORDERS, EntryPoint } from "../runtime/entry-point.ts";
import { type ConsumerLag, RuntimeMetrics } from "../runtime/metrics.ts";
import type { OrderRoute } from "../runtime/orders.ts";
import type { Subjects } from "../runtime/subjects.ts";
import { notAvailable } from "./services.ts";

export interface EntryPointDeps {
  nc: NatsConnection;
  subjects: Subjects;
  deadLetters: DeadLetters;
  logger: Logger;
  replicas: number;
  /** Handlers running at once per entry point (CALIOPEN_MAX_CONCURRENT_ORDERS). */
  maxConcurrentOrders?: number;
  /** The node's metrics: order counters, and the intake consumers' backlog read on a scrape. */
  metrics?: RuntimeMetrics;
}

/** Creates one entry point per contract subject and starts taking orders on all of them. */
export async function startContractEntryPoints(deps: EntryPointDeps, bindings: ContractBindings): Promise<EntryPoint[]> {
  const durable = CONTRACT.filter(isPublishOnly);
  const intake = await DurableIntake.open(
    deps.nc,
    deps.subjects,
    durable.map((spec) => spec.subject),
    deps.replicas,
  );
  const metrics = deps.metrics ?? new RuntimeMetrics();
  const consumers: { subject: string; consumer: Consumer }[] = [];
  const entryPoints: EntryPoint[] = [];
  for (const spec of CONTRACT) {
    const orders: Record<string, OrderRoute> = {};
    for (const [order, orderSpec] of Object.entries(spec.orders) as [string, OrderSpec][]) {
      orders[order] = { mode: orderSpec.mode, schema: orderSpec.payload, handle: boundHandler(bindings, spec.subject, order) ?? notAvailable(spec, order) };
    }
    const limits = { maxConcurrent: deps.maxConcurrentOrders ?? DEFAULT_MAX_CONCURRENT_ORDERS };
    const entry = new EntryPoint({ subject: spec.subject, queue: spec.queue, orders }, deps.nc, deps.subjects, deps.deadLetters, deps.logger, limits, metrics);
    if (isPublishOnly(spec)) {
      const consumer = await intake.consumer(spec.subject, spec.queue);
      consumers.push({ subject: spec.subject, consumer });
      await entry.startDurable(consumer);
    } else entry.start();
    entryPoints.push(entry);
  }
  // While the connection is down, JetStream cannot answer: the scrape leaves the backlog out at once.
  metrics.readLagWith(async () => (isConnectionUp(deps.nc) ? intakeLag(consumers) : []));
  return entryPoints;
}

/** Each intake consumer's backlog; one that cannot be read now is left out of this scrape. */
async function intakeLag(consumers: readonly { subject: string; consumer: Consumer }[]): Promise<ConsumerLag[]> {
  const read = await Promise.allSettled(
    consumers.map(async ({ subject, consumer }) => {
      const info = await consumer.info();
      return { subject, pending: info.num_pending, ackPending: info.num_ack_pending };
    }),
  );
  return read.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
}
