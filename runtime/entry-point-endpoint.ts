// An entry point as a service endpoint for discovery (ADR-32): its subject on the wire, its queue group,
// what it takes, and its counts. Every order the entry point took is a request, published ones read
// from the intake included (and each redelivery of one again): they are the endpoint's work, and
// counting them is what shows a node busy with published orders. Its errors are the orders refused
// (malformed, unknown, refused by the handler, an unusable reply subject), failed, or turned away busy.
import type { EntryPoint } from "./entry-point.ts";
import type { ServiceEndpoint } from "./service-discovery.ts";
import type { Subjects } from "./subjects.ts";

export function entryPointEndpoint(entry: EntryPoint, subjects: Subjects): ServiceEndpoint {
  return {
    name: entry.spec.subject,
    subject: subjects.wire(entry.spec.subject),
    queueGroup: entry.spec.queue,
    metadata: {
      orders: Object.keys(entry.spec.orders).join(","),
      // A durable consumer named after the queue group, or a core NATS queue subscription.
      delivery: entry.durable ? "intake" : "queue",
    },
    stats: () => {
      const stats = entry.snapshotStats();
      return { requests: stats.received, errors: stats.rejected + stats.failed + stats.busy, lastError: stats.lastError, processingMs: stats.processingMs };
    },
  };
}
