// Which failures of an import are the store's (NATS or JetStream unreachable, timing out, refusing a
// write for lack of room): those pass, so the import is tried again later. Anything else (a raw that
// cannot be read as mail, a bug) is answered at once, as an error: trying it again would fail again.

/** Errors the NATS client raises when the server or a JetStream asset cannot serve a request now. */
const NATS_FAILURES = new Set([
  "TimeoutError",
  "NoResponders",
  "RequestError",
  "ClosedConnectionError",
  "DrainingConnectionError",
  "ConnectionError",
  "JetStreamNotEnabled",
  "JetStreamError",
  "JetStreamStatusError",
  "JetStreamApiError",
]);

/** Said by errors that wrap a NATS failure in their message only. */
const UNAVAILABLE =
  /\b(timeout|timed out|no responders|connection (closed|draining)|disconnected|temporarily unavailable|insufficient resources|maximum bytes exceeded)\b/i;

export function isStoreFailure(err: unknown): boolean {
  for (let cause = err, depth = 0; cause instanceof Error && depth < 5; cause = cause.cause, depth++) {
    if (NATS_FAILURES.has(cause.name) || UNAVAILABLE.test(cause.message)) return true;
  }
  return false;
}
