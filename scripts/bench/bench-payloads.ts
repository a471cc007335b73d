// The orders both sides of every comparison receive: real contract orders (IMAPfetcher `sync`,
// outboundIMAP `deliver`), byte for byte the same for the raw subscriber and the entry point.
import { orderSpec, subjectSpec } from "../../contract/contract-table.ts";
import type { OrderMode } from "../../runtime/orders.ts";
import type { PayloadSchema } from "../../runtime/payload-schema.ts";

export interface BenchOrder {
  subject: string;
  queue: string;
  order: string;
  mode: OrderMode;
  schema: PayloadSchema;
}

function fromContract(subject: string, order: string): BenchOrder {
  const spec = subjectSpec(subject);
  const orderDef = orderSpec(subject, order);
  if (spec === undefined || orderDef === undefined) throw new Error(`the contract has no ${subject} ${order} order`);
  return { subject, queue: spec.queue, order, mode: orderDef.mode, schema: orderDef.payload };
}

/** Published, fire-and-forget: the throughput scenario. */
export const SYNC_ORDER = fromContract("IMAPfetcher", "sync");
/** Request/reply: the latency scenario. */
export const DELIVER_ORDER = fromContract("outboundIMAP", "deliver");

export const KEY_FIELD = "remote_id";

export function benchKey(index: number): string {
  return `r-${index}`;
}

const encoder = new TextEncoder();

/** One encoded order per key, e.g. {"order":"sync","remote_id":"r-123","user_id":"u-456"}. */
export function encodedOrders(order: BenchOrder, keys: number): Uint8Array[] {
  return Array.from({ length: keys }, (_, index) => {
    const body: Record<string, string> = { order: order.order };
    if ("message_id" in order.schema) body.message_id = `m-${index}`;
    body[KEY_FIELD] = benchKey(index);
    body.user_id = "u-456";
    return encoder.encode(JSON.stringify(body));
  });
}
