// How the inbound actor carries out one queued order: a `process_inbound` (one raw) or an import batch
// (its raws side by side, a bounded number at once), each raw imported by its processor (mail or DMs)
// with what the actor remembers of the user. The store's failures are reported as such, to be tried
// again after a pause; any other failure is that raw's error reply.
import { failure, ok, type Reply } from "../../runtime/reply.ts";
import { type InboundEmailOptions, importInboundEmail } from "../mail/inbound-email.ts";
import type { InboundCache } from "../messages/inbound-cache.ts";
import { importFailure } from "../messages/inbound-import.ts";
import type { Message } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { importInboundTwitter } from "../twitter/inbound-twitter.ts";
import { isStoreFailure } from "./store-failure.ts";

export const ANSWERED = "import.answered";
export const STORE_FAILED = "import.storeFailed";

export type Processor = "email" | "twitter";

/** One `process_inbound` order, as the queue keeps it. */
export interface PendingImport {
  /** Unique within the actor: tells the replies of a batch apart. */
  seq: number;
  processor: Processor;
  /** The raw message's id (a batch's first). */
  message_id: string;
  /** A batch (`import_batch`): all of its raws, in the order asked. */
  raw_ids?: string[];
  remote_id: string;
  replyTo?: string;
  /** Tries that failed on the store so far. */
  attempts: number;
}

/** What an import of the batch reports: its reply, or the store's failure. */
export type ImportOutcome =
  | { type: typeof ANSWERED; payload: { seq: number; reply: Reply; raws: number; failed: number } }
  | { type: typeof STORE_FAILED; payload: { seq: number; error: string } };

export interface ImportDeps {
  store: Store;
  mail: Pick<InboundEmailOptions, "maxAddressesPerHeader">;
  cache: InboundCache;
  userId: string;
  /** Told of each message stored for the first time, with the identity that received it. */
  onImported?: (message: Message, identityId: string) => void;
}

/**
 * Raws of an import batch imported at once: enough to keep the store's writes pipelined, few enough that
 * a batch naming large raws (anyone on the bus may send one) holds a bounded number of parsers.
 */
const BATCH_PARSERS = 16;

/** Imports one queued order (a `process_inbound`, or a batch's raws side by side); never throws. */
export async function importPending(deps: ImportDeps, pending: PendingImport): Promise<ImportOutcome> {
  if (pending.raw_ids !== undefined) return importAll(deps, pending, pending.raw_ids);
  const outcome = await importRaw(deps, pending, pending.message_id);
  if ("error" in outcome) return { type: STORE_FAILED, payload: { seq: pending.seq, error: outcome.error } };
  return { type: ANSWERED, payload: { seq: pending.seq, reply: outcome.reply, raws: 1, failed: outcome.reply.error ? 1 : 0 } };
}

/**
 * A batch's raws side by side (their store writes in flight together), at most BATCH_PARSERS at once
 * (each raw streams through its own parser), answered once all are.
 */
async function importAll(deps: ImportDeps, pending: PendingImport, rawIds: string[]): Promise<ImportOutcome> {
  const outcomes: ({ reply: Reply } | { error: string })[] = new Array(rawIds.length);
  let next = 0;
  const lane = async () => {
    for (let index = next++; index < rawIds.length; index = next++) outcomes[index] = await importRaw(deps, pending, rawIds[index] as string);
  };
  await Promise.all(Array.from({ length: Math.min(BATCH_PARSERS, rawIds.length) }, lane));
  const storeFailure = outcomes.find((outcome): outcome is { error: string } => "error" in outcome);
  if (storeFailure !== undefined) return { type: STORE_FAILED, payload: { seq: pending.seq, error: storeFailure.error } };
  const results = outcomes.map((outcome) => ("reply" in outcome ? outcome.reply : failure("not imported")));
  const reply = ok(`${results.length} raw message(s) answered`, { results });
  return { type: ANSWERED, payload: { seq: pending.seq, reply, raws: results.length, failed: results.filter((result) => result.error).length } };
}

/** One raw's reply, or the store's failure (to be tried again). */
async function importRaw(deps: ImportDeps, pending: PendingImport, rawId: string): Promise<{ reply: Reply } | { error: string }> {
  const { store, cache } = deps;
  const order = { message_id: rawId, remote_id: pending.remote_id, user_id: deps.userId };
  const observe = deps.onImported;
  const onImported = observe === undefined ? undefined : (message: Message) => observe(message, pending.remote_id);
  try {
    const reply =
      pending.processor === "email"
        ? await importInboundEmail(store, order, { ...deps.mail, cache, onImported })
        : await importInboundTwitter(store, order, { cache, onImported });
    return { reply };
  } catch (err) {
    // What memory says of this identity is not trusted for the next try.
    cache.forgetIdentity(pending.remote_id);
    if (isStoreFailure(err)) return { error: importFailure(order, err).message };
    return { reply: importFailure(order, err) };
  }
}
