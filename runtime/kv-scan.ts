// Reads the current entries of a KV bucket under a key filter in one pass: an ordered push consumer
// delivering the last message of each key, as nats.js's kv.keys() does for keys alone. Listing keys and
// then getting each one costs a JetStream request per key, which a node taking over tens of thousands
// of actors cannot pay at every start.
import { DeliverPolicy, type JetStreamClient } from "@nats-io/jetstream";

export interface ScannedEntry {
  key: string;
  value: Uint8Array;
  revision: number;
}

const KV_OPERATION_HEADER = "KV-Operation";

/** A scan that receives nothing for this long has stalled (the server is gone or frozen): it fails rather than hang its caller. */
export const SCAN_STALL_MS = 30_000;

export class ScanStalled extends Error {}

/**
 * Calls `onEntry` for every live (not deleted or purged) entry of `bucket` whose key matches `filter`.
 * Fails with ScanStalled when no entry comes for `stallMs` (noticed within twice that).
 */
export async function scanLatest(
  js: JetStreamClient,
  bucket: string,
  filter: string,
  onEntry: (entry: ScannedEntry) => void,
  stallMs = SCAN_STALL_MS,
): Promise<void> {
  const prefix = `$KV.${bucket}.`;
  const consumer = await js.consumers.getPushConsumer(`KV_${bucket}`, {
    // One subject, not a list: lists need nats-server 2.10.
    filter_subjects: `${prefix}${filter}`,
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  const info = await consumer.info(true);
  if (info.num_pending === 0) return;
  let failure: Error | null = null;
  let received = 0;
  let receivedAtLastLook = -1;
  // Looked at per period, not re-armed per entry: a scan may deliver a hundred thousand of them.
  const stall = setInterval(() => {
    if (received === receivedAtLastLook) {
      failure = new ScanStalled(`reading ${bucket} stalled: nothing came for ${stallMs} ms`);
      messages.stop();
    }
    receivedAtLastLook = received;
  }, stallMs);
  const messages = await consumer.consume({
    callback: (msg) => {
      received += 1;
      try {
        const operation = msg.headers?.get(KV_OPERATION_HEADER);
        if (operation !== "DEL" && operation !== "PURGE") onEntry({ key: msg.subject.slice(prefix.length), value: msg.data, revision: msg.seq });
      } catch (err) {
        failure = err as Error;
        messages.stop();
        return;
      }
      if (msg.info.pending === 0) messages.stop();
    },
  });
  try {
    await messages.closed();
  } finally {
    clearInterval(stall);
  }
  if (failure !== null) throw failure;
}
