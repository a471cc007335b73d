// Reads the current entries of a KV bucket under a key filter in one pass: an ordered push consumer
// delivering the last message of each key, as nats.js's kv.keys() does for keys alone. Each key is read
// once, with its value at some moment of the scan. Listing keys and
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

/** A tail that reaches no entry at its end (none matches the filter) ends once nothing came for this long (what is stored comes at once)... */
const TAIL_QUIET_MS = 20;
/** ...or this long at most. */
const TAIL_MAX_MS = 1_000;

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
  const stream = await js.streams.get(`KV_${bucket}`);
  const lastAtStart = (await stream.info(true)).state.last_seq;
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
  const seen = new Set<string>();
  // The server's pending count is not to be trusted while keys are replaced under the scan (nats-server
  // 2.9): it may reach zero before a replaced key's new value is delivered, or never reach zero at all.
  // So the scan's first part ends at a pending count of zero or at the first entry written after it
  // began (all older ones were delivered by then); if the bucket was written meanwhile, what follows is
  // read up to the stream's last entry at that moment (or until nothing more comes), which brings the
  // new values of keys replaced before they were delivered.
  let tail: "no" | "reading" | "done" = "no";
  /** Where the tail ends: the stream's last entry when the first part was read. */
  let tailEnd = Number.POSITIVE_INFINITY;
  let quiet: NodeJS.Timeout | undefined;
  let tailLimit: NodeJS.Timeout | undefined;
  let lastRead = 0;
  const endTail = () => {
    if (tail === "done") return;
    tail = "done";
    clearTimeout(quiet);
    clearTimeout(tailLimit);
    messages.stop();
  };
  const firstPartRead = async (lastSeen: number) => {
    tail = "reading";
    const lastNow = (await stream.info().catch(() => null))?.state.last_seq ?? Number.POSITIVE_INFINITY;
    if (Math.max(lastSeen, lastRead) >= lastNow) return endTail();
    tailEnd = lastNow;
    clearTimeout(quiet);
    quiet = setTimeout(endTail, TAIL_QUIET_MS);
    tailLimit = setTimeout(endTail, TAIL_MAX_MS);
  };
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
        const key = msg.subject.slice(prefix.length);
        // Once per key: a key changed after it was read is not read again.
        if (operation !== "DEL" && operation !== "PURGE" && !seen.has(key)) {
          seen.add(key);
          onEntry({ key, value: msg.data, revision: msg.seq });
        }
      } catch (err) {
        failure = err as Error;
        messages.stop();
        return;
      }
      lastRead = msg.seq;
      if (tail === "reading") {
        if (msg.seq >= tailEnd) return endTail();
        // Silence counts once the tail's end is known (firstPartRead arms it).
        if (tailLimit === undefined) return;
        clearTimeout(quiet);
        quiet = setTimeout(endTail, TAIL_QUIET_MS);
      } else if (tail === "no" && (msg.info.pending === 0 || msg.seq > lastAtStart)) void firstPartRead(msg.seq);
    },
  });
  try {
    await messages.closed();
  } finally {
    clearInterval(stall);
    clearTimeout(quiet);
    clearTimeout(tailLimit);
  }
  if (failure !== null) throw failure;
}
