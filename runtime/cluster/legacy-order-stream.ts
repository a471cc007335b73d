// Nodes of earlier versions queued keyed orders in a JetStream work-queue stream before their actors
// applied them. A cluster upgraded while that stream still holds some must not lose them: a node that
// finds the stream applies what is left in it, one order after the other (in the order they were
// queued), each through today's path, and deletes the stream once it is empty.
import { AckPolicy, type Consumer, DeliverPolicy, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { DeadLetters } from "../dead-letters.ts";
import { decodeJson } from "../json.ts";
import type { Subjects } from "../subjects.ts";
import { type KeyedOrder, readKeyedOrder, WRAPPED_ORDER_LIMITS } from "./keyed-order.ts";

export function legacyOrderStreamName(subjects: Subjects): string {
  return subjects.resource("caliopen_actor_orders");
}

const DRAIN_CONSUMER = "upgrade-drain";
// Longer than an apply's whole budget: a node that dies while applying one gives it to the next.
const ACK_WAIT_MS = 60_000;
const BATCH = 64;

export interface LegacyDrainDeps {
  nc: NatsConnection;
  subjects: Subjects;
  deadLetters: DeadLetters;
  logger: Logger;
  /** Resolves once the order is applied (throws when it could not be, for now). */
  apply(order: KeyedOrder): Promise<void>;
}

/** Resolves once the stream is gone (or was never there); `stopped` ends it early. */
export async function drainLegacyOrders(deps: LegacyDrainDeps, stopped: () => boolean): Promise<void> {
  const jsm = await jetstreamManager(deps.nc);
  const stream = legacyOrderStreamName(deps.subjects);
  const info = await jsm.streams.info(stream).catch(() => null);
  if (info === null) return;
  deps.logger.warn({ stream, orders: info.state.messages }, "a stream of keyed orders left by an earlier version: applying what it holds");
  await jsm.consumers
    .add(stream, { durable_name: DRAIN_CONSUMER, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: ACK_WAIT_MS * 1_000_000 })
    .catch(() => undefined);
  const consumer = await jetstream(deps.nc).consumers.get(stream, DRAIN_CONSUMER);
  while (!stopped() && !deps.nc.isClosed()) {
    let taken = 0;
    try {
      taken = await applyBatch(consumer, deps);
    } catch (err) {
      // Another node emptied and deleted it first: nothing is left to apply.
      if ((await jsm.streams.info(stream).catch(() => null)) === null) return;
      throw err;
    }
    if (taken === 0 && (await isEmpty(jsm, stream))) break;
  }
  if (stopped()) return;
  await jsm.streams.delete(stream).catch(() => undefined);
  deps.logger.info({ stream }, "the earlier version's stream of keyed orders is applied and deleted");
}

/** Applies the next batch, one order after the other; resolves with how many were taken. */
async function applyBatch(consumer: Consumer, deps: LegacyDrainDeps): Promise<number> {
  const batch = await consumer.fetch({ max_messages: BATCH, expires: 2_000 });
  let taken = 0;
  for await (const msg of batch) {
    taken += 1;
    const decoded = decodeJson(msg.data, WRAPPED_ORDER_LIMITS);
    const order = decoded.ok ? readKeyedOrder(decoded.value) : decoded.error;
    if (typeof order === "string") {
      deps.deadLetters.record(msg.subject, `malformed keyed order: ${order}`, msg.data);
      msg.ack();
      continue;
    }
    try {
      await deps.apply(order);
      msg.ack();
    } catch (err) {
      deps.logger.warn({ kind: order.kind, key: order.key, err: (err as Error).message }, "a keyed order left by an earlier version could not be applied yet");
      msg.nak(5_000);
    }
  }
  return taken;
}

async function isEmpty(jsm: JetStreamManager, stream: string): Promise<boolean> {
  const info = await jsm.streams.info(stream).catch(() => null);
  return info === null || info.state.messages === 0;
}
