// What the issue aims at: the figures the report's verdicts and the interpretation hold each run to.

export const TARGETS = {
  ordersRatio: 0.5,
  requestP50Ratio: 1.5,
  /** Loaded requests/s through an actor over Moleculer's (the same-stack peer), measured in the same run. */
  requestsVsMoleculerRatio: 1,
  bytesPerActor: 6 * 1024,
  /** The aim for a first IMAP import: at most this many times mbsync's time for the same mailbox. */
  imapRatio: 1.5,
  /** The aim for two nodes importing two mailboxes at once: at most this share of one node's time for both. */
  imapTwoNodesRatio: 0.6,
  /** heapUsed + external of the importing node at its peak, over the idle node's (the parts: IMPORT_HEAP_BOUND). */
  importHeapMiB: 0,
  /** What the node still holds once the import is over (settled by full GCs) over the idle node's: what growing with the mailbox would show. */
  importGrowthMiB: 16,
  /** The aim: a mail arriving by SMTP reaches the user's open notification stream within this long. */
  notifyMs: 1_000,
};

/**
 * What the design lets a node hold during a fullfetch, whatever the mailbox's size, each part in MiB:
 * the worker's messages in flight (two import batches) at up to 1 MiB each; the inbound actor's parsers
 * (actors/inbound/inbound-processor.ts BATCH_PARSERS: 16 raws of a batch at a time), each raw read back and
 * parsed (decoded parts and strings, about twice the raw); V8's young generation, where the garbage of
 * all this waits for a scavenge (3 × a 16 MiB semi-space on 64 bits); the node's bounded caches and slack.
 */
export const IMPORT_HEAP_BOUND = { inFlightRaws: 64 * 1, parsers: 16 * 1 * 2, youngGeneration: 3 * 16, cachesAndSlack: 16 };
TARGETS.importHeapMiB = Object.values(IMPORT_HEAP_BOUND).reduce((sum, part) => sum + part, 0);
